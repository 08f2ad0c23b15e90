# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Selling is provisioning: confirming a sale order that sells a plan (its
monthly fee product) creates the customer's tenant on that plan, or moves
their tenant to it; the plan then reaches the platform and the contract is
created or updated (emboux_tenant.py, emboux_tenant_billing.py)."""

from odoo import models
from odoo.exceptions import UserError


class SaleOrder(models.Model):
    _inherit = "sale.order"

    def action_confirm(self):
        plans = {}
        Plan = self.env["emboux.plan"].sudo()
        for order in self:
            found = Plan.search([("fee_product_id", "in", order.order_line.product_id.ids)])
            if len(found) > 1:
                raise UserError(self.env._("%(order)s sells several email hosting plans (%(plans)s): a customer "
                                           "has one plan; keep one.", order=order.name,
                                           plans=", ".join(found.mapped("name"))))
            plans[order.id] = found
        res = super().action_confirm()
        for order in self.filtered(lambda o: plans.get(o.id)):
            order._emboux_provision(plans[order.id])
        return res

    def _emboux_provision(self, plan):
        self.ensure_one()
        customer = self.partner_id.commercial_partner_id
        Tenant = self.env["emboux.tenant"].sudo()
        tenant = Tenant.search([("partner_id", "=", customer.id), ("company_id", "=", self.company_id.id)],
                               order="id", limit=1)
        if tenant:
            if tenant.plan_id != plan:
                tenant.plan_id = plan
            tenant.message_post(body=self.env._("Plan %(plan)s sold by %(order)s.", plan=plan.name,
                                                order=self.name))
        else:
            tenant = Tenant.with_context(emboux_contract_date_start=self.date_order).create({
                "name": customer.name, "partner_id": customer.id, "company_id": self.company_id.id,
                "plan_id": plan.id})
            tenant.message_post(body=self.env._("Created by the sale of %(plan)s (%(order)s).", plan=plan.name,
                                                order=self.name))
        self.message_post(body=self.env._("Email hosting: %(tenant)s is on the plan %(plan)s.",
                                          tenant=tenant.name, plan=plan.name))
        return tenant
