# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, models


class EmbouxDomain(models.Model):
    _inherit = "emboux.domain"

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
            dom._emboux_enqueue("domain.outbound", "PUT", f"/domains/{dom._q()}/outbound",
                                dom.tenant_id.plan_id._outbound_payload())
