# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The connector's suppression list, as far as it concerns the domains this
Odoo manages: recipients the platform refuses to send to (a hard bounce or a
spam complaint), pulled by the "pull" cron (models/emboux_outbound_pull.py).
A manager lifts an address: `DELETE /suppression/{email}` goes through the
sync queue like every other change; the row goes when the platform applied
it (or when the feed says it was lifted elsewhere)."""

from odoo import fields, models
from odoo.exceptions import AccessError


class EmbouxSuppression(models.Model):
    _name = "emboux.suppression"
    _description = "Email Hosting: suppressed recipient"
    _inherit = ["mail.thread", "emboux.sync.mixin"]
    _order = "created_at desc, id desc"
    _rec_name = "email"

    remote_id = fields.Integer("Platform id", readonly=True, required=True, index=True, copy=False)
    email = fields.Char(readonly=True, required=True, index=True, help="The suppressed recipient.")
    reason = fields.Selection([("bounce", "Hard bounce"), ("complaint", "Spam complaint")], readonly=True,
                              required=True, index=True)
    source_domain = fields.Char("Source domain", readonly=True, index=True,
                                help="Our domain whose mail bounced or was reported.")
    domain_id = fields.Many2one("emboux.domain", readonly=True, index=True, ondelete="cascade")
    tenant_id = fields.Many2one(related="domain_id.tenant_id", store=True, index=True, string="Tenant")
    company_id = fields.Many2one(related="domain_id.company_id", store=True, index=True)
    provider = fields.Char(readonly=True, help="Who reported it: ses, mailgun, local...")
    created_at = fields.Datetime("Suppressed since", readonly=True)
    lift_requested = fields.Boolean("Lift requested", readonly=True, copy=False,
                                    help="A manager lifted it: waiting for the mail platform to apply it.")

    _remote_unique = models.Constraint("UNIQUE (remote_id)", "A suppression entry is pulled once.")

    def _emboux_lane(self):
        return f"suppression:{self.email}"

    def _emboux_target(self):
        return {"email": self.email}

    def action_lift(self):
        """Take the addresses off the platform's suppression list (every
        reason of each address: the platform lifts an address, not a
        reason). Email Hosting administrators only."""
        if not self.env.user.has_group("emboux_core.group_emboux_manager"):
            raise AccessError(self.env._("Only an Email Hosting administrator may lift a suppressed address."))
        user = self.env.user
        for email in sorted(set(self.filtered(lambda s: not s.lift_requested).mapped("email"))):
            same = self.sudo().search([("email", "=", email)])
            same.with_context(emboux_no_sync=True).write({"lift_requested": True})
            same[0]._emboux_sync("suppression.lift")
            for dom in same.domain_id:
                dom.sudo().message_post(body=self.env._(
                    "%(user)s lifted the suppression of %(email)s: the platform sends to it again.",
                    user=user.name, email=email))
        return True

    def _emboux_job_done(self, job, result):
        if job.kind == "suppression.lift":
            # the platform lifted the address (every reason): the rows go
            self.sudo().search([("email", "=", self.email)]).unlink()

    def _emboux_refresh_sync_state(self):
        # a lifted entry is gone once its job is done: nothing left to refresh
        return super(EmbouxSuppression, self.exists())._emboux_refresh_sync_state()
