# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The customer portal's rules and actions, as a portal user: their tenant
only (another tenant's ids: an error, nothing changed), mailboxes within
quota through the sync seam, a domain they add must prove ownership."""

from odoo.exceptions import AccessError, UserError

from .common import SaasCase, api, maildb, uniq


class TestPortal(SaasCase):

    def setUp(self):
        super().setUp()
        self.mine = self.new_tenant(self.plan_small)
        self.theirs = self.new_tenant(self.plan_small)
        self.my_dom = self.new_domain(self.mine)
        self.their_dom = self.new_domain(self.theirs)
        self.their_box = self.env["emboux.mailbox"].create({"domain_id": self.their_dom.id, "local_part": "boss",
                                                            "password": "correct horse 12"})
        self.flush_queue()
        self.user = self.portal_user(self.mine)
        self.as_user = self.env(user=self.user)

    def test_portal_user_sees_only_their_tenant(self):
        self.assertEqual(self.as_user["emboux.tenant"].search([]), self.mine)
        self.assertEqual(self.as_user["emboux.domain"].search([]), self.my_dom)
        self.assertFalse(self.as_user["emboux.mailbox"].search([]))
        with self.assertRaises(AccessError):
            self.as_user["emboux.domain"].browse(self.their_dom.id).read(["name"])

    def test_mailbox_create_within_quota_reset_and_delete(self):
        dom = self.as_user["emboux.domain"].browse(self.my_dom.id)
        box = dom.portal_create_mailbox("info", "correct horse 12")
        self.flush_queue()
        self.assertEqual(box.sync_state, "synced", box.sync_error)
        self.assertEqual(api("GET", f"/users/?domain_id={self.my_dom.remote_id}").status_code, 200)
        for i in range(3):                                   # the Small plan: 4 per domain
            dom.portal_create_mailbox(f"u{i}", "correct horse 12")
        with self.assertRaisesRegex(UserError, "may have 4 mailbox"):
            dom.portal_create_mailbox("five", "correct horse 12")
        self.assertEqual(self.my_dom.mailbox_count, 4)
        self.as_user["emboux.mailbox"].browse(box.id).portal_set_password("another horse 34")
        job = self.pending_jobs(box)
        self.assertTrue(job, "the new password travels through the sync queue")
        self.flush_queue()
        self.as_user["emboux.mailbox"].browse(box.id).portal_delete()
        self.flush_queue()
        self.assertFalse(box.exists())

    def test_other_tenants_ids_refused_nothing_changed(self):
        jobs = self.env["emboux.sync.job"].search_count([])
        with self.assertRaises(AccessError):
            self.as_user["emboux.domain"].browse(self.their_dom.id).portal_create_mailbox("x", "correct horse 12")
        with self.assertRaises(AccessError):
            self.as_user["emboux.mailbox"].browse(self.their_box.id).portal_set_password("stolen horse 12")
        with self.assertRaises(AccessError):
            self.as_user["emboux.mailbox"].browse(self.their_box.id).portal_delete()
        with self.assertRaises(AccessError):
            self.as_user["emboux.tenant"].browse(self.theirs.id).portal_add_domain(f"{uniq('x')}.example.com")
        self.assertTrue(self.their_box.exists())
        self.assertEqual(self.env["emboux.sync.job"].search_count([]), jobs, "nothing queued")

    def test_domain_added_in_the_portal_must_prove_ownership(self):
        name = f"{uniq('p')}.emboux-odoo.test"
        self.addCleanup(api, "DELETE", f"/domains/{name}")
        dom = self.as_user["emboux.tenant"].browse(self.mine.id).portal_add_domain(name)
        self.flush_queue()
        self.assertEqual(dom.ownership, "pending")
        self.assertTrue(dom.ownership_record_name.startswith("_emboux-verification."))
        self.assertTrue(dom.ownership_record_value)
        self.assertEqual(api("GET", f"/domains/{name}").json()["ownership"], "pending")

    def test_api_keys_token_once_revoke_and_isolation(self):
        mine = self.as_user["emboux.tenant"].browse(self.mine.id)
        created = mine.portal_create_api_key("shop")
        token = created["token"]
        self.flush_queue()
        key = self.env["emboux.api.key"].browse(created["id"])
        self.assertEqual(key.sync_state, "synced", key.sync_error)
        self.assertEqual(api("GET", f"/partners/{self.mine.partner_ref}").json()["api_keys"]["active"], 1)
        r = api("GET", "/domains/", token=token)            # the token works as the customer's client token
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual({d["name"] for d in r.json()}, {self.my_dom.name})
        self.assertEqual(self.as_user["emboux.api.key"].search([]), key)
        # another customer's key: an error, nothing changed
        theirs = self.env["emboux.api.key"].create_with_token({"tenant_id": self.theirs.id, "name": "theirs"})
        self.flush_queue()
        with self.assertRaises(AccessError):
            self.as_user["emboux.api.key"].browse(theirs["id"]).portal_revoke()
        with self.assertRaises(AccessError):
            self.as_user["emboux.tenant"].browse(self.theirs.id).portal_create_api_key("stolen")
        self.assertTrue(self.env["emboux.api.key"].browse(theirs["id"]).exists())
        self.as_user["emboux.api.key"].browse(key.id).portal_revoke()
        self.flush_queue()
        r = api("GET", "/domains/", token=token)
        self.assertEqual((r.status_code, r.json()["code"]), (403, "auth_invalid_key"), r.text)

    def test_aliases_and_catch_all(self):
        dom = self.as_user["emboux.domain"].browse(self.my_dom.id)
        box = dom.portal_create_mailbox("desk", "correct horse 12")
        alias = dom.portal_create_alias("sales", "desk@" + self.my_dom.name)
        self.as_user["emboux.mailbox"].browse(box.id).portal_set_catch_all(True)
        self.flush_queue()
        self.assertEqual(alias.source, "sales@" + self.my_dom.name)
        self.assertEqual(api("GET", f"/aliases/{alias.source}").status_code, 200)
        rows = maildb("SELECT destination FROM aliases WHERE source = %s", ("@" + self.my_dom.name,))
        self.assertEqual(rows, [(box.email,)])
        catch_all = self.as_user["emboux.alias"].search([("mailbox_id", "=", box.id)])
        with self.assertRaisesRegex(UserError, "catch-all"):
            catch_all.portal_delete()
        source = alias.source
        self.as_user["emboux.alias"].browse(alias.id).portal_delete()
        self.flush_queue()
        self.assertEqual(api("GET", f"/aliases/{source}").status_code, 404)
        # another customer's domain and alias: an error, nothing changed
        their_alias = self.env["emboux.alias"].create({"domain_id": self.their_dom.id, "source": "info",
                                                       "destinations": self.their_box.email})
        with self.assertRaises(AccessError):
            self.as_user["emboux.domain"].browse(self.their_dom.id).portal_create_alias("x", "a@example.com")
        with self.assertRaises(AccessError):
            self.as_user["emboux.alias"].browse(their_alias.id).portal_delete()
        with self.assertRaises(AccessError):
            self.as_user["emboux.mailbox"].browse(self.their_box.id).portal_set_catch_all(True)
        self.assertTrue(their_alias.exists())
        self.assertFalse(self.their_box.catch_all)
