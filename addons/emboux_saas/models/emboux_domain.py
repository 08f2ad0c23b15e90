# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models


class EmbouxDomain(models.Model):
    _inherit = "emboux.domain"

    billing_suspended = fields.Boolean(
        "Suspended for billing", readonly=True, copy=False, tracking=True,
        help="Suspended by the non-payment / over-plan flow, which reactivates it once the cause is gone.")


    @api.model_create_multi
    def create(self, vals_list):
        domains = super().create(vals_list)
        domains._emboux_push_plan_outbound()
        return domains

    def write(self, vals):
        res = super().write(vals)
        if "tenant_id" in vals:
            self._emboux_push_plan_outbound()  # moved: the new tenant's plan applies
        return res

    def _emboux_push_plan_outbound(self):
        """PUT /domains/{name}/outbound with the tenant's plan (master token:
        tier, enforcement and warm-up are the operator's)."""
        if not self._emboux_sync_enabled():
            return
        for dom in self.filtered(lambda d: d.tenant_id.plan_id):
            dom._emboux_sync("domain.outbound", **dom.tenant_id.plan_id._outbound_payload())

    # --- customer portal (see emboux_tenant.py) ------------------------------------
    def portal_create_mailbox(self, local_part, password):
        self.check_access("read")
        dom = self.sudo()
        dom.ensure_one()
        # the quota (the plan's mailboxes per domain) is emboux_core's own check
        return self.env["emboux.mailbox"].sudo().create(
            {"domain_id": dom.id, "local_part": (local_part or "").strip(), "password": password or ""})

    def portal_check_ownership(self):
        self.check_access("read")
        return self.sudo().action_check_ownership()

    def portal_create_alias(self, source, destinations):
        self.check_access("read")
        dom = self.sudo()
        dom.ensure_one()
        return self.env["emboux.alias"].sudo().create(
            {"domain_id": dom.id, "source": source or "", "destinations": destinations or ""})
