# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A tenant on a plan has one contract (OCA `contract`), invoiced monthly
from the connector's frozen counters; see contract.py."""

import math

from markupsafe import Markup, escape

from odoo import api, fields, models

from odoo.addons.emboux_core.services.connector_client import ConnectorError

# contract line role -> the plan's product field
USAGE_PRODUCTS = {"fee": "fee_product_id", "mailbox": "mailbox_product_id",
                  "storage": "storage_product_id", "overage": "overage_product_id"}


class ContractLine(models.Model):
    _inherit = "contract.line"

    emboux_usage = fields.Selection(
        [("fee", "Monthly fee"), ("mailbox", "Mailboxes"), ("storage", "Storage (GB)"),
         ("overage", "Messages above the plan (per 1,000)")], "Email Hosting usage", copy=False)


class EmbouxTenant(models.Model):
    _inherit = "emboux.tenant"

    contract_id = fields.Many2one("contract.contract", "Contract", copy=False, readonly=True, index=True)
    invoice_count = fields.Integer(compute="_compute_invoice_count")

    def _compute_invoice_count(self):
        counts = dict(self.env["account.move"]._read_group(
            [("emboux_tenant_id", "in", self.ids), ("move_type", "=", "out_invoice")],
            ["emboux_tenant_id"], ["__count"]))
        for tenant in self:
            tenant.invoice_count = counts.get(tenant, 0)

    @api.model_create_multi
    def create(self, vals_list):
        tenants = super().create(vals_list)
        tenants.filtered("plan_id")._emboux_ensure_contract()
        return tenants

    def _emboux_apply_plan(self):
        super()._emboux_apply_plan()
        self.filtered("plan_id")._emboux_ensure_contract()

    # --- contract ---------------------------------------------------------------
    def _emboux_ensure_contract(self):
        """Create the tenant's contract, or set its lines to the current plan's
        products (a plan change bills the new plan from the next invoice)."""
        formula = self.env.ref("emboux_saas.formula_emboux_usage")
        for tenant in self:
            plan = tenant.plan_id
            start = self.env.context.get("emboux_contract_date_start") or fields.Date.context_today(self)
            start = fields.Date.to_date(start).replace(day=1)
            contract = tenant.contract_id
            if not contract:
                contract = self.env["contract.contract"].sudo().create({
                    "name": self.env._("Email hosting: %s", tenant.name),
                    "partner_id": tenant.partner_id.id, "emboux_tenant_id": tenant.id,
                    "company_id": tenant.company_id.id, "contract_type": "sale", "line_recurrence": False,
                    "recurring_rule_type": "monthlylastday", "recurring_interval": 1,
                    "recurring_invoicing_type": "post-paid", "date_start": start, "skip_zero_qty": True,
                })
                tenant.with_context(emboux_no_sync=True).sudo().write({"contract_id": contract.id})
            for role, field in USAGE_PRODUCTS.items():
                product = plan[field]
                line = contract.contract_line_ids.filtered(lambda l, r=role: l.emboux_usage == r)[:1]
                if not product:
                    if line:
                        line.sudo().write({"is_canceled": True})
                    continue
                vals = {"product_id": product.id, "name": product.display_name, "is_canceled": False,
                        "price_unit": product.lst_price, "automatic_price": False}
                if role == "fee":
                    vals.update(quantity=1.0)
                else:
                    vals.update(qty_type="variable", qty_formula_id=formula.id)
                if line:
                    line.sudo().write(vals)
                else:
                    contract.sudo().write({"contract_line_ids": [(0, 0, dict(vals, emboux_usage=role,
                                                                                 date_start=contract.date_start))]})

    def action_view_contract(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "contract.contract", "view_mode": "form",
                "res_id": self.contract_id.id}

    def action_view_invoices(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "name": self.env._("Invoices"), "res_model": "account.move",
                "view_mode": "list,form", "domain": [("emboux_tenant_id", "=", self.id),
                                                     ("move_type", "=", "out_invoice")]}

    # --- usage from the connector ---------------------------------------------
    @api.model
    def _emboux_fetch_billing(self, month):
        """{"frozen": bool, "entries": [...]} of `GET /outbound/billing?month=`;
        not frozen when the connector cannot be asked (billed on a later run)."""
        try:
            result = self.env["emboux.connector"]._client().call("GET", f"/outbound/billing?month={month}")
        except ConnectorError:
            return {"frozen": False, "entries": []}
        return {"frozen": bool(result.get("frozen")), "entries": result.get("entries") or []}

    def _emboux_month_entries(self, billing):
        return [e for e in billing["entries"] if e.get("partner_ref") == self.partner_ref]

    def _emboux_usage_quantities(self, billing):
        """role -> quantity for the month of `billing`. Messages come from the
        frozen counters; mailboxes and storage (allocated quota, GB) are
        counted in Odoo when the month is billed."""
        self.ensure_one()
        entries = self._emboux_month_entries(billing)
        boxes = self.env["emboux.mailbox"].sudo().search([("tenant_id", "=", self.id)])
        sent = sum(e["sent"] for e in entries)
        included = self.plan_id.included_messages
        above = max(0, sent - included) if included else sum(e["overage"] for e in entries)
        return {"fee": 1.0, "mailbox": float(len(boxes)),
                "storage": round(sum(boxes.mapped("quota_mb")) / 1024.0, 2),
                "overage": float(math.ceil(above / 1000.0))}

    def _emboux_usage_summary(self, billing, month):
        """The invoice's note: what was measured, per domain."""
        self.ensure_one()
        q = self._emboux_usage_quantities(billing)
        rows = Markup("").join(
            Markup("<tr><td>%s</td><td>%s</td><td>%s</td></tr>") % (e["domain_name"], e["sent"], e["overage"])
            for e in self._emboux_month_entries(billing))
        return (Markup("<p><strong>%s</strong></p>") % self.env._("Email hosting usage, %s", month)
                + Markup("<table class='table table-sm'><tr><th>%s</th><th>%s</th><th>%s</th></tr>%s</table>")
                % (self.env._("Domain"), self.env._("Messages sent"), self.env._("Above the limits"), rows)
                + Markup("<p>%s</p>") % self.env._(
                    "%(boxes)s mailbox(es), %(gb)s GB of storage; %(k)s thousand message(s) billed above the "
                    "plan's %(incl)s included.", boxes=int(q["mailbox"]), gb=q["storage"], k=int(q["overage"]),
                    incl=self.plan_id.included_messages or escape(self.env._("limits"))))
