# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The mailbox password never lands in Odoo's tables; record rules keep
companies apart; access groups."""

from odoo.exceptions import AccessError

from .common import EmbouxCase, maildb, uniq


class TestSecurity(EmbouxCase):

    def _tables_containing(self, needle):
        """Every (table, column) of Odoo's database holding `needle`."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("""SELECT c.table_name, c.column_name FROM information_schema.columns c
                      JOIN information_schema.tables t ON t.table_name = c.table_name
                       AND t.table_schema = c.table_schema AND t.table_type = 'BASE TABLE'
                      WHERE c.table_schema = 'public'
                        AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')""")
        found = []
        for table, column in cr.fetchall():
            cr.execute(f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE %s LIMIT 1', (f"%{needle}%",))
            if cr.fetchone():
                found.append((table, column))
        return found

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
