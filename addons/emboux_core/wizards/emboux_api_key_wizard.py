# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import secrets

from odoo import api, fields, models


class EmbouxApiKeyWizard(models.TransientModel):
    """Create an API key and show its token once. The token is not stored in
    this wizard's table either: it travels in the action's context only."""

    _name = "emboux.api.key.wizard"
    _description = "New Email Hosting API key"

    tenant_id = fields.Many2one("emboux.tenant", required=True)
    name = fields.Char("Label", required=True, default=lambda self: self.env._("API key"))
    expires_at = fields.Datetime("Expires")
    key_id = fields.Many2one("emboux.api.key", readonly=True)
    token = fields.Char(compute="_compute_token", readonly=True)

    @api.depends_context("emboux_show_token")
    def _compute_token(self):
        for wiz in self:
            wiz.token = self.env.context.get("emboux_show_token") or False

    def action_generate(self):
        self.ensure_one()
        token = secrets.token_urlsafe(32)
        key = self.env["emboux.api.key"].with_context(emboux_new_tokens=[token]).create(
            {"tenant_id": self.tenant_id.id, "name": self.name, "expires_at": self.expires_at})
        self.key_id = key
        return {
            "type": "ir.actions.act_window", "res_model": self._name, "res_id": self.id,
            "view_mode": "form", "target": "new", "name": self.env._("Copy the token now"),
            "context": dict(self.env.context, emboux_show_token=token),
        }
