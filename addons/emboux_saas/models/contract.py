# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Recurring billing from usage on OCA `contract`: one contract per tenant,
invoiced monthly in arrears (post-paid, period = calendar month); its usage
lines are `contract_variable_quantity` lines whose formula asks the tenant
for the month's quantity (frozen counters of the connector). A month is
invoiced only once the connector froze it (`GET /outbound/billing?month=`
answers `frozen: true`), and at most once per tenant (a unique index on
the invoice)."""

from odoo import fields, models


class ContractContract(models.Model):
    _inherit = "contract.contract"

    emboux_tenant_id = fields.Many2one("emboux.tenant", "Email Hosting tenant", index=True, copy=False,
                                       ondelete="restrict")

    def _prepare_recurring_invoices_values(self, date_ref=False):
        hosting = self.filtered("emboux_tenant_id")
        billing = self.env.context.get("emboux_billing") or {}
        ready = self - hosting
        for contract in hosting:
            month = contract._emboux_month_to_invoice(date_ref)
            if not month:
                continue
            if month not in billing:
                billing[month] = self.env["emboux.tenant"]._emboux_fetch_billing(month)
            if not billing[month]["frozen"]:
                continue  # not closed on the platform yet: the next run will bill it
            if self.env["account.move"].sudo().search_count(
                    [("emboux_tenant_id", "=", contract.emboux_tenant_id.id), ("emboux_billing_month", "=", month)]):
                continue  # billed already (the contract's dates were moved back by hand)
            ready |= contract
        values = super(ContractContract, ready.with_context(emboux_billing=billing)) \
            ._prepare_recurring_invoices_values(date_ref)
        Tenant = self.env["emboux.tenant"]
        for vals in values:
            if vals.get("emboux_tenant_id"):
                month = vals["emboux_billing_month"]
                vals["narration"] = Tenant.browse(vals["emboux_tenant_id"])._emboux_usage_summary(
                    billing[month], month)
        return values

    def _prepare_invoice(self, date_invoice, journal=None):
        vals = super()._prepare_invoice(date_invoice, journal=journal)
        if self.emboux_tenant_id:
            vals["emboux_tenant_id"] = self.emboux_tenant_id.id
            vals["emboux_billing_month"] = self._emboux_month_to_invoice()
        return vals

    def _emboux_month_to_invoice(self, date_ref=False):  # noqa: ARG002
        """The month (YYYY-MM) of the period the next invoice covers."""
        self.ensure_one()
        start = self.contract_line_ids.filtered(lambda l: not l.display_type and l.next_period_date_start) \
            .mapped("next_period_date_start")
        return min(start).strftime("%Y-%m") if start else False

    def _recurring_create_invoice(self, date_ref=False):
        contracts = self
        if self and all(self.mapped("emboux_tenant_id")):
            # a monthly run bills thousands at once: the contract posts each invoice's
            # origin in its chatter itself, so Odoo's own "created" log is a duplicate
            contracts = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True)
        moves = super(ContractContract, contracts)._recurring_create_invoice(date_ref)
        hosting = moves.filtered(lambda m: m.emboux_tenant_id and m.state == "draft")
        if hosting:
            # an ordinary posted invoice, nothing to do by hand (the draft -> posted
            # tracking line of a move created this instant says nothing)
            hosting.with_context(mail_notrack=True).action_post()
        return moves.with_env(self.env)


class ContractLine(models.Model):
    _inherit = "contract.line"

    emboux_usage = fields.Selection(
        [("fee", "Monthly fee"), ("mailbox", "Mailboxes"), ("storage", "Storage (GB)"),
         ("overage", "Messages above the plan (per 1,000)")], "Email Hosting usage", copy=False)

    def emboux_usage_quantity(self, period_first_date):
        """The quantity of this usage line for the month starting at
        `period_first_date` (called from the line's quantity formula)."""
        tenant = self.contract_id.emboux_tenant_id
        if not tenant:
            return 0.0
        month = period_first_date.strftime("%Y-%m")
        billing = self.env.context.get("emboux_billing") or {}
        entries = billing.get(month) or tenant._emboux_fetch_billing(month)
        return tenant._emboux_usage_quantities(entries).get(self.emboux_usage, 0.0)


class AccountMove(models.Model):
    _inherit = "account.move"

    emboux_tenant_id = fields.Many2one("emboux.tenant", "Email Hosting tenant", index=True, copy=False,
                                       readonly=True)
    emboux_billing_month = fields.Char("Usage month", copy=False, readonly=True,
                                       help="The month (YYYY-MM) whose frozen usage counters this invoice bills.")

    def init(self):
        res = super().init()
        # One invoice per tenant and month, whatever happens (two billing runs at once).
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS account_move_emboux_month_unique ON account_move "
            "(emboux_tenant_id, emboux_billing_month) WHERE emboux_tenant_id IS NOT NULL "
            "AND emboux_billing_month IS NOT NULL AND move_type = 'out_invoice'")
        return res
