# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The issue's "Bad input" lines, one test each: a plan with negative
quotas, a downgrade while suspended, a partial payment, a portal user
posting another tenant's ids. Each ends in a clear error (or, for the
partial payment, the amount still due) and changes nothing: not the
records, not the sync queue, not the platform."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError

from .common import SaasCase, api, uniq


class TestBadInput(SaasCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Product = cls.env["product.product"]
        cls.fee = Product.create({"name": "Fee", "type": "service", "lst_price": 10.0})
        cls.plan_small.fee_product_id = cls.fee
        cls.plan_big.fee_product_id = Product.create({"name": "Big fee", "type": "service", "lst_price": 50.0})
        cls.today = fields.Date.context_today(cls.env["emboux.tenant"])

    def jobs(self):
        return self.env["emboux.sync.job"].search_count([])

    def suspended_for_non_payment(self):
        tenant = self.new_tenant(self.plan_big)
        dom = self.new_domain(tenant)
        self.flush_queue()
        move = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": tenant.partner_id.id, "emboux_tenant_id": tenant.id,
            "invoice_date": self.today - timedelta(days=60), "invoice_date_due": self.today - timedelta(days=31),
            "invoice_line_ids": [(0, 0, {"product_id": self.fee.id, "quantity": 1, "price_unit": 100.0,
                                         "tax_ids": [(6, 0, [])]})]})
        move.action_post()
        self.env["emboux.tenant"]._cron_emboux_billing_lifecycle()
        self.flush_queue()
        self.assertEqual(tenant.billing_state, "suspended")
        self.assertTrue(api("GET", f"/domains/{dom.name}").json()["suspended"])
        return tenant, dom, move

    def test_plan_with_negative_quotas(self):
        Plan = self.env["emboux.plan"]
        plans = Plan.search_count([])
        tenant = self.new_tenant(self.plan_small)
        self.flush_queue()
        jobs = self.jobs()
        for field in ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox", "storage_mb",
                      "outbound_daily_limit", "outbound_monthly_limit", "included_messages"):
            with self.assertRaisesRegex(UserError, "cannot be negative"):
                Plan.create({"name": "Bad", field: -1})
            with self.assertRaisesRegex(UserError, "cannot be negative"):
                self.plan_small.write({field: -3})
        self.assertEqual(Plan.search_count([]), plans)
        self.assertEqual((self.plan_small.mailboxes_per_domain, self.plan_small.storage_mb), (4, 512))
        self.assertEqual(self.jobs(), jobs, "nothing queued")
        self.assertEqual(self.remote_partner(tenant)["mailboxes_per_domain"], 4)

    def test_downgrade_while_suspended(self):
        tenant, dom, _move = self.suspended_for_non_payment()
        jobs = self.jobs()
        lines = [(ln.product_id, ln.is_canceled) for ln in tenant.contract_id.contract_line_ids]
        with self.assertRaisesRegex(UserError, "cannot move to a smaller plan"):
            tenant.plan_id = self.plan_small
        self.assertEqual(tenant.plan_id, self.plan_big)
        self.assertEqual(tenant.mailboxes_per_domain, self.plan_big.mailboxes_per_domain)
        self.assertEqual([(ln.product_id, ln.is_canceled) for ln in tenant.contract_id.contract_line_ids], lines)
        self.assertEqual(self.jobs(), jobs, "nothing queued")
        self.assertEqual(self.remote_partner(tenant)["mailboxes_per_domain"], self.plan_big.mailboxes_per_domain)
        self.assertEqual(self.remote_outbound(dom)["outbound_tier"], self.plan_big.outbound_tier)
        self.assertEqual(tenant.billing_state, "suspended")

    def test_partial_payment(self):
        tenant, dom, move = self.suspended_for_non_payment()
        self.assertEqual(tenant.overdue_amount, 100.0)
        wizard = self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=move.ids).create({"amount": 40.0})
        wizard._create_payments()
        self.assertEqual(move.payment_state, "partial")
        jobs = self.jobs()
        self.env["emboux.tenant"]._cron_emboux_billing_lifecycle()
        self.flush_queue()
        tenant.invalidate_recordset()
        self.assertEqual(tenant.overdue_amount, 60.0, "what is still due is shown")
        self.assertEqual((tenant.billing_state, tenant.billing_reason), ("suspended", "non_payment"))
        self.assertEqual(dom.state, "suspended")
        self.assertTrue(api("GET", f"/domains/{dom.name}").json()["suspended"])
        self.assertEqual(self.jobs(), jobs, "nothing queued")

    def test_portal_user_posting_another_tenants_ids(self):
        mine, theirs = self.new_tenant(self.plan_small), self.new_tenant(self.plan_small)
        their_dom = self.new_domain(theirs)
        their_box = self.env["emboux.mailbox"].create({"domain_id": their_dom.id, "local_part": "boss",
                                                       "password": "correct horse 12"})
        their_key = self.env["emboux.api.key"].create_with_token({"tenant_id": theirs.id, "name": "theirs"})
        self.flush_queue()
        contact = self.env["res.partner"].create({"name": uniq("Contact "), "parent_id": mine.partner_id.id,
                                                  "email": f"{uniq('c')}@example.com"})
        user = self.env["res.users"].with_context(no_reset_password=True).create({
            "name": contact.name, "login": contact.email, "partner_id": contact.id,
            "group_ids": [(6, 0, [self.env.ref("base.group_portal").id])]})
        env = self.env(user=user)
        jobs = self.jobs()
        attempts = [
            lambda: env["emboux.tenant"].browse(theirs.id).portal_add_domain(f"{uniq('x')}.example.com"),
            lambda: env["emboux.tenant"].browse(theirs.id).portal_create_api_key("stolen"),
            lambda: env["emboux.domain"].browse(their_dom.id).portal_create_mailbox("x", "correct horse 12"),
            lambda: env["emboux.domain"].browse(their_dom.id).portal_create_alias("x", "a@example.com"),
            lambda: env["emboux.domain"].browse(their_dom.id).portal_check_ownership(),
            lambda: env["emboux.mailbox"].browse(their_box.id).portal_set_password("stolen horse 12"),
            lambda: env["emboux.mailbox"].browse(their_box.id).portal_set_catch_all(True),
            lambda: env["emboux.mailbox"].browse(their_box.id).portal_delete(),
            lambda: env["emboux.api.key"].browse(their_key["id"]).portal_revoke(),
        ]
        for attempt in attempts:
            with self.assertRaises(AccessError):
                attempt()
        self.assertTrue(their_box.exists() and not their_box.catch_all)
        self.assertTrue(self.env["emboux.api.key"].browse(their_key["id"]).exists().active)
        self.assertEqual(self.env["emboux.domain"].search_count([("tenant_id", "=", theirs.id)]), 1)
        self.assertEqual(self.jobs(), jobs, "nothing queued")
        r = api("GET", f"/users/{their_box.email}")
        self.assertEqual(r.status_code, 200, r.text)
