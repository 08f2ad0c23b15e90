# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Confirming a sale order for a plan provisions: a new customer gets a
tenant on the plan (quotas on the platform, a contract); a customer who has
one moves to the plan sold."""

from odoo.exceptions import UserError

from .common import SaasCase, uniq


class TestSale(SaasCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Product = cls.env["product.product"]
        cls.plan_small.fee_product_id = Product.create({"name": "Small plan", "type": "service", "lst_price": 9})
        cls.plan_big.fee_product_id = Product.create({"name": "Big plan", "type": "service", "lst_price": 49})

    def sell(self, partner, *plans):
        order = self.env["sale.order"].create({
            "partner_id": partner.id,
            "order_line": [(0, 0, {"product_id": p.fee_product_id.id, "product_uom_qty": 1}) for p in plans]})
        order.action_confirm()
        return order

    def test_sale_creates_then_moves_the_tenant(self):
        partner = self.env["res.partner"].create({"name": uniq("Buyer "), "is_company": True})
        self.sell(partner, self.plan_small)
        tenant = self.env["emboux.tenant"].search([("partner_id", "=", partner.id)])
        self.assertEqual(len(tenant), 1)
        self.assertEqual(tenant.plan_id, self.plan_small)
        self.assertTrue(tenant.contract_id)
        self.assertEqual(tenant.contract_id.contract_line_ids.filtered(lambda l: l.emboux_usage == "fee").product_id,
                         self.plan_small.fee_product_id)
        self.flush_queue()
        self.assertEqual(self.remote_partner(tenant)["mailboxes_per_domain"], self.plan_small.mailboxes_per_domain)
        # a contact of the same customer buys the bigger plan: the same tenant moves to it
        contact = self.env["res.partner"].create({"name": uniq("Buyer contact "), "parent_id": partner.id})
        self.sell(contact, self.plan_big)
        self.assertEqual(self.env["emboux.tenant"].search([("partner_id", "=", partner.id)]), tenant)
        self.assertEqual(tenant.plan_id, self.plan_big)
        self.assertEqual(tenant.contract_id.contract_line_ids.filtered(lambda l: l.emboux_usage == "fee").product_id,
                         self.plan_big.fee_product_id)
        self.flush_queue()
        self.assertEqual(self.remote_partner(tenant)["mailboxes_per_domain"], self.plan_big.mailboxes_per_domain)

    def test_order_with_two_plans_refused_nothing_provisioned(self):
        partner = self.env["res.partner"].create({"name": uniq("Buyer "), "is_company": True})
        with self.assertRaisesRegex(UserError, "several email hosting plans"):
            self.sell(partner, self.plan_small, self.plan_big)
        self.assertFalse(self.env["emboux.tenant"].search([("partner_id", "=", partner.id)]))

    def test_other_products_provision_nothing(self):
        partner = self.env["res.partner"].create({"name": uniq("Buyer "), "is_company": True})
        product = self.env["product.product"].create({"name": "Consulting", "type": "service", "lst_price": 100})
        order = self.env["sale.order"].create({"partner_id": partner.id,
                                               "order_line": [(0, 0, {"product_id": product.id})]})
        order.action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertFalse(self.env["emboux.tenant"].search([("partner_id", "=", partner.id)]))
