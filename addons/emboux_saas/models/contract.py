# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Recurring billing from usage on OCA `contract`: one contract per tenant,
invoiced monthly in arrears (post-paid, period = calendar month); its usage
lines are `contract_variable_quantity` lines whose formula asks the tenant
for the month's quantity (frozen counters of the connector). A month is
invoiced only once the connector froze it (`GET /outbound/billing?month=`
answers `frozen: true`), and at most once per tenant (a unique index on
the invoice)."""

from markupsafe import Markup

from odoo import fields, models


class ContractContract(models.Model):
    _inherit = "contract.contract"

    emboux_tenant_id = fields.Many2one("emboux.tenant", "Email Hosting tenant", index=True, copy=False,
                                       ondelete="restrict")

    def _prepare_recurring_invoices_values(self, date_ref=False):
        hosting = self.filtered("emboux_tenant_id")
        billing = self.env.context.get("emboux_billing") or {}
        months = {contract: contract._emboux_month_to_invoice(date_ref) for contract in hosting}
        # the invoices of these months already there, in one query for the whole run
        billed = set()
        if any(months.values()):
            billed = {(tenant.id, month) for tenant, month in self.env["account.move"].sudo()._read_group(
                [("emboux_tenant_id", "in", hosting.emboux_tenant_id.ids),
                 ("emboux_billing_month", "in", list(set(filter(None, months.values()))))],
                ["emboux_tenant_id", "emboux_billing_month"])}
        ready = (self - hosting).ids
        for contract, month in months.items():
            if not month:
                continue
            if month not in billing:
                billing[month] = self.env["emboux.tenant"]._emboux_fetch_billing(month)
            if not billing[month]["frozen"]:
                continue  # not closed on the platform yet: the next run will bill it
            if (contract.emboux_tenant_id.id, month) in billed:
                continue  # billed already (the contract's dates were moved back by hand)
            ready.append(contract.id)
        values = super(ContractContract, self.browse(ready).with_context(emboux_billing=billing)) \
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

    def _add_contract_origin(self, invoices):
        """The contract's "<Invoice Created> by contract <link>" note, logged in
        one batch for the hosting contracts (one message_post per invoice,
        each with its notification machinery, was an eighth of a billing run)."""
        hosting = self.filtered("emboux_tenant_id")
        res = super(ContractContract, self - hosting)._add_contract_origin(invoices)
        bodies = {}
        for move in invoices:
            for contract in move.invoice_line_ids.contract_line_id.contract_id & hosting:
                bodies[move.id] = Markup("%s %s %s.") % (
                    move._creation_message(), self.env._("by contract"),
                    contract._get_html_link(title=contract.display_name))
        if bodies:
            invoices.browse(list(bodies))._message_log_batch(bodies)
        return res

    def _emboux_month_to_invoice(self, date_ref=False):  # noqa: ARG002
        """The month (YYYY-MM) of the period the next invoice covers."""
        self.ensure_one()
        start = self.contract_line_ids.filtered(lambda l: not l.display_type and l.next_period_date_start) \
            .mapped("next_period_date_start")
        return min(start).strftime("%Y-%m") if start else False

    def _recurring_create_invoice(self, date_ref=False):
        contracts = self
        if self and all(self.mapped("emboux_tenant_id")):
            # a monthly run bills thousands at once: the contract logs each invoice's
            # origin in its chatter itself (_add_contract_origin), so Odoo's own
            # "created" log is a duplicate; a move created this instant has no
            # change to track (its values are its creation)
            contracts = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True,
                                          tracking_disable=True)
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
