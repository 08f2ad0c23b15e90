# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models


class EmbouxTenant(models.Model):
    _inherit = "emboux.tenant"

    plan_id = fields.Many2one("emboux.plan", "Plan", tracking=True, index=True, ondelete="restrict",
                              help="Its quotas and outbound settings are applied to the tenant and to each "
                                   "of its domains on the mail platform, again whenever the plan changes.")

    @api.model_create_multi
    def create(self, vals_list):
        Plan = self.env["emboux.plan"]
        for vals in vals_list:
            if vals.get("plan_id"):
                # the plan's quotas are the tenant's: pushed by emboux_core's own create hook
                vals.update(Plan.browse(vals["plan_id"])._tenant_quota_values())
        return super().create(vals_list)

    def write(self, vals):
        res = super().write(vals)
        if "plan_id" in vals:
            self._emboux_apply_plan()
        return res

    def _emboux_apply_plan(self):
        """The plan's quotas on the tenant (emboux_core pushes the partner's
        quotas when they change) and its outbound settings on every domain."""
        for tenant in self.filtered("plan_id"):
            quotas = tenant.plan_id._tenant_quota_values()
            changed = {f: v for f, v in quotas.items() if tenant[f] != v}
            if changed:
                tenant.write(changed)
            elif tenant._emboux_sync_enabled():
                tenant._emboux_push_quotas()  # a re-apply re-sends what the platform holds
            tenant.with_context(active_test=False).domain_ids._emboux_push_plan_outbound()
