# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The mailbox password and the API tokens never land in Odoo's tables; record rules keep
companies apart; access groups."""

import hashlib

from odoo.exceptions import AccessError

from .common import EmbouxCase, api, maildb, sealed_secrets_holding, tables_containing, uniq


class TestSecurity(EmbouxCase):

    def _tables_containing(self, needle):
        return tables_containing(self.env, needle)

    def test_password_never_in_odoo_tables(self):
        dom = self.new_domain()
        password = "Secret-" + uniq()
        box = self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "pw", "password": password})
        # queued, not yet sent: still nowhere in clear
        self.assertEqual(self._tables_containing(password), [])
        self.assertFalse(box.password)
        self.assertFalse(box.read(["password"])[0]["password"])
        self.flush_queue()
        self.assertEqual(box.sync_state, "synced")
        new_password = "Other-" + uniq()
        box.password = new_password
        self.assertEqual(self._tables_containing(new_password), [])
        self.flush_queue()
        self.assertEqual(self._tables_containing(password), [])
        self.assertEqual(self._tables_containing(new_password), [])
        # and the sealed copy is wiped once sent
        jobs = self.env["emboux.sync.job"].search([("res_model", "=", "emboux.mailbox"), ("res_id", "=", box.id)])
        self.assertTrue(jobs)
        self.assertFalse(any(jobs.mapped("secret_sealed")))
        (stored,), = maildb("SELECT password_hash FROM mailboxes WHERE email = %s", (box.email,))
        self.assertNotIn(new_password, stored)

    def test_api_token_only_hashed(self):
        """The token waits sealed in its create job only, and once the create
        is applied no column of Odoo's database holds it, nor any sealed
        secret: the key is known by its hash, hint and connector id."""
        res = self.env["emboux.api.key"].create_with_token({"tenant_id": self.tenant.id, "name": "Scan"})
        key, token = self.env["emboux.api.key"].browse(res["id"]), res["token"]
        self.addCleanup(api, "DELETE", f"/api-keys/{token}")
        create = self.env["emboux.sync.job"].search([("res_model", "=", key._name), ("res_id", "=", key.id),
                                                     ("kind", "=", "api_key.create")])
        self.assertEqual(self._tables_containing(token), [], "queued: not in clear")
        self.assertEqual(sealed_secrets_holding(self.env, token), create.ids, "sealed in its create job only")
        self.flush_queue()
        self.assertEqual(key.sync_state, "synced", key.sync_error)
        self.assertEqual(self._tables_containing(token), [])
        self.assertEqual(sealed_secrets_holding(self.env, token), [], "the sealed copy is wiped once sent")
        self.assertFalse(create.sudo().secret_sealed)
        # what Odoo keeps: hash, hint, the connector's id
        digest = hashlib.sha256(token.encode()).hexdigest()
        (remote_id,), = maildb("SELECT id FROM api_keys WHERE token_hash = %s", (digest,))
        self.assertEqual((key.token_hash, key.token_hint, key.connector_key_id), (digest, token[:6], remote_id))
        for table, column in (("emboux_api_key", "token_sealed"), ("emboux_tenant", "quota_handle")):
            self.env.cr.execute("SELECT 1 FROM information_schema.columns WHERE table_name = %s "
                                "AND column_name = %s", (table, column))
            self.assertFalse(self.env.cr.fetchone(), f"{table}.{column} is gone")
        # and the token works as the tenant's
        self.assertEqual(api("GET", "/domains/", token=token).status_code, 200)

    def test_record_rules_company_isolation(self):
        company_b = self.env["res.company"].create({"name": "Other agency"})
        user_b = self.env["res.users"].create({
            "name": "Agency B user", "login": uniq("b-user-"), "company_id": company_b.id,
            "company_ids": [(6, 0, [company_b.id])],
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_manager").id])],
        })
        dom = self.new_domain()
        Tenant_b = self.env["emboux.tenant"].with_user(user_b)
        self.assertNotIn(self.tenant, Tenant_b.search([]))
        self.assertFalse(self.env["emboux.domain"].with_user(user_b).search([("id", "=", dom.id)]))
        with self.assertRaises(AccessError):
            self.tenant.with_user(user_b).read(["name"])
        with self.assertRaises(AccessError):
            dom.with_user(user_b).write({"retention_days": 3})
        # its own tenant is visible to it, not to company A's users
        tenant_b = Tenant_b.with_company(company_b).create({
            "name": "B customer", "partner_id": self.env["res.partner"].create({"name": "B"}).id,
            "partner_ref": uniq("tb-")})
        self.assertEqual(tenant_b.company_id, company_b)
        self.assertIn(tenant_b, Tenant_b.search([]))
        user_a = self.env["res.users"].create({
            "name": "Agency A user", "login": uniq("a-user-"),
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_user").id])],
        })
        self.assertNotIn(tenant_b, self.env["emboux.tenant"].with_user(user_a).search([]))

    def test_access_groups(self):
        user = self.env["res.users"].create({
            "name": "Hosting user", "login": uniq("h-user-"),
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_user").id])],
        })
        self.assertTrue(self.env["emboux.domain"].with_user(user).search([]).ids is not None)
        with self.assertRaises(AccessError):
            self.env["emboux.tenant"].with_user(user).create({"name": "x", "partner_id": self.partner.id})
        with self.assertRaises(AccessError):
            self.tenant.with_user(user).write({"mailboxes_per_domain": 99})
        plain = self.env["res.users"].create({"name": "No hosting", "login": uniq("n-user-")})
        with self.assertRaises(AccessError):
            self.env["emboux.domain"].with_user(plain).search([])

    def test_master_token_never_shown_back(self):
        settings = self.env["res.config.settings"].create({})
        self.assertFalse(settings.emboux_master_token)
        self.assertTrue(settings.emboux_master_token_set)
