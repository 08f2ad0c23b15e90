# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The non-payment / over-plan flow, driven by dates in the past (due dates,
the day over-plan was first seen): grace with reminders queued as mail.mail,
suspension visible on the connector, reactivation of exactly the domains the
flow suspended after a registered payment or an upgrade."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError

from .common import SaasCase, api


class TestLifecycle(SaasCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fee = cls.env["product.product"].create({"name": "Plan fee", "type": "service", "lst_price": 10.0})
        cls.plan_small.fee_product_id = cls.fee
        cls.plan_big.fee_product_id = cls.env["product.product"].create(
            {"name": "Big fee", "type": "service", "lst_price": 50.0})
        cls.today = fields.Date.context_today(cls.env["emboux.tenant"])

    def run_flow(self):
        cron = self.env.ref("emboux_saas.cron_emboux_billing_lifecycle")
        self.assertIn("non-payment", cron.name)
        self.assertEqual(cron.code.strip(), "model._cron_emboux_billing_lifecycle()")
        self.env["emboux.tenant"]._cron_emboux_billing_lifecycle()
        self.flush_queue()

    def invoice(self, tenant, days_overdue, amount=100.0):
        move = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": tenant.partner_id.id, "emboux_tenant_id": tenant.id,
            "invoice_date": self.today - timedelta(days=days_overdue + 30),
            "invoice_date_due": self.today - timedelta(days=days_overdue),
            "invoice_line_ids": [(0, 0, {"product_id": self.fee.id, "quantity": 1, "price_unit": amount,
                                         "tax_ids": [(6, 0, [])]})]})
        move.action_post()
        return move

    def pay(self, move, amount=None):
        wizard = self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=move.ids).create({"amount": amount or move.amount_residual})
        wizard._create_payments()

    def remote_suspended(self, dom):
        r = api("GET", f"/domains/{dom.name}")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()["suspended"]

    def reminders(self, tenant):
        return self.env["mail.mail"].search([("model", "=", "emboux.tenant"), ("res_id", "=", tenant.id)])

    def test_non_payment_grace_reminders_suspension_reactivation(self):
        tenant = self.new_tenant(self.plan_big)
        d1, d2, d3 = self.new_domain(tenant), self.new_domain(tenant), self.new_domain(tenant)
        self.flush_queue()
        d3.action_suspend()          # suspended by a person: the flow must not lift it
        self.flush_queue()
        self.run_flow()
        self.assertEqual(tenant.billing_state, "active")
        inv = self.invoice(tenant, days_overdue=8)
        self.run_flow()
        self.assertEqual(tenant.billing_state, "grace")
        self.assertEqual(tenant.billing_reason, "non_payment")
        self.assertEqual(tenant.grace_start, inv.invoice_date_due)
        mails = self.reminders(tenant)
        self.assertEqual(len(mails), 1)
        self.assertIn(tenant.partner_id, mails.recipient_ids)
        self.assertIn("suspended on", mails.subject)
        self.run_flow()
        self.assertEqual(len(self.reminders(tenant)), 1, "the day-7 reminder goes once")
        inv.invoice_date_due = self.today - timedelta(days=16)
        self.run_flow()
        self.assertEqual(len(self.reminders(tenant)), 2, "day 15")
        self.assertFalse(self.remote_suspended(d1))
        inv.invoice_date_due = self.today - timedelta(days=30)
        self.run_flow()
        self.assertEqual(tenant.billing_state, "suspended")
        self.assertEqual((d1 | d2).mapped("state"), ["suspended", "suspended"])
        self.assertTrue(self.remote_suspended(d1) and self.remote_suspended(d2))
        self.assertEqual((d1 | d2 | d3).mapped("billing_suspended"), [True, True, False])
        self.assertTrue(any("suspended" in (m.body or "") and d1.name in (m.body or "")
                            for m in tenant.message_ids), "the suspension is in the chatter")
        # a partial payment changes nothing
        self.pay(inv, amount=40.0)
        self.run_flow()
        self.assertEqual(tenant.billing_state, "suspended")
        self.assertTrue(self.remote_suspended(d1))
        # a downgrade while suspended is refused, nothing changed
        with self.assertRaisesRegex(UserError, "cannot move to a smaller plan"):
            tenant.plan_id = self.plan_small
        self.assertEqual(tenant.plan_id, self.plan_big)
        # paid: exactly the domains the flow suspended come back
        self.pay(inv)
        self.run_flow()
        self.assertEqual(tenant.billing_state, "active")
        self.assertFalse(self.remote_suspended(d1) or self.remote_suspended(d2))
        self.assertTrue(self.remote_suspended(d3), "suspended by a person: stays suspended")
        self.assertEqual(d3.state, "suspended")

    def test_over_plan_suspends_surplus_newest_first(self):
        tenant = self.new_tenant(self.plan_big)
        d1, d2, d3 = self.new_domain(tenant), self.new_domain(tenant), self.new_domain(tenant)
        self.env.cr.execute("UPDATE emboux_domain SET create_date = now() - interval '1 day' * %s WHERE id = %s",
                            (3, d1.id))
        self.env.cr.execute("UPDATE emboux_domain SET create_date = now() - interval '1 day' * %s WHERE id = %s",
                            (2, d2.id))
        self.env.invalidate_all()
        self.flush_queue()
        plan_one = self.plan_small.copy({"name": "One domain", "domains_allowed": 1})
        tenant.plan_id = plan_one                       # a downgrade below usage is allowed...
        self.flush_queue()
        self.assertEqual(tenant.billing_state, "grace")  # ...and starts the grace flow
        self.assertEqual(tenant.billing_reason, "over_plan")
        self.assertEqual(tenant.over_plan_since, self.today)
        tenant.over_plan_since = self.today - timedelta(days=31)
        self.run_flow()
        self.assertEqual(tenant.billing_state, "suspended")
        self.assertEqual([self.remote_suspended(d) for d in (d1, d2, d3)], [False, True, True])
        self.assertEqual((d1 | d2 | d3).mapped("billing_suspended"), [False, True, True])
        tenant.plan_id = self.plan_big                  # an upgrade that fits: reactivated at once
        self.flush_queue()
        self.assertEqual(tenant.billing_state, "active")
        self.assertEqual([self.remote_suspended(d) for d in (d1, d2, d3)], [False, False, False])

    def test_paused_tenant_left_alone(self):
        tenant = self.new_tenant(self.plan_big)
        dom = self.new_domain(tenant)
        tenant.billing_paused = True
        self.flush_queue()
        self.invoice(tenant, days_overdue=40)
        self.run_flow()
        self.assertEqual(tenant.billing_state, "active")
        self.assertFalse(self.remote_suspended(dom))
        self.assertFalse(self.reminders(tenant))
