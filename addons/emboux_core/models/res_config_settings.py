# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import fields, models
from odoo.exceptions import UserError

from ..services.connector_client import ConnectorClient, ConnectorError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    emboux_connector_url = fields.Char("Connector URL", config_parameter="emboux.connector_url")
    # Never shown back: the field is always empty on screen; typing a value
    # replaces the stored system parameter (and the wizard's copy is wiped).
    emboux_master_token = fields.Char("Master token", help="Leave empty to keep the current token.")
    emboux_master_token_set = fields.Boolean(compute="_compute_emboux_master_token_set")
    emboux_connect_timeout = fields.Float("Connect timeout (s)", config_parameter="emboux.connect_timeout",
                                          default=3.0)
    emboux_read_timeout = fields.Float("Read timeout (s)", config_parameter="emboux.read_timeout", default=15.0)
    emboux_imap_host = fields.Char("IMAP host shown to users", config_parameter="emboux.imap_host")
    emboux_smtp_host = fields.Char("SMTP host shown to users", config_parameter="emboux.smtp_host")

    def _compute_emboux_master_token_set(self):
        is_set = bool(self.env["ir.config_parameter"].sudo().get_param("emboux.master_token"))
        for rec in self:
            rec.emboux_master_token_set = is_set

    def set_values(self):
        res = super().set_values()
        if self.emboux_master_token:
            self.env["ir.config_parameter"].sudo().set_param("emboux.master_token", self.emboux_master_token.strip())
            self.emboux_master_token = False
        return res

    def action_emboux_test_connection(self):
        self.ensure_one()
        s = self.env["emboux.connector"]._settings()
        client = ConnectorClient(self.emboux_connector_url or s["url"],
                                 (self.emboux_master_token or "").strip() or s["token"],
                                 self.emboux_connect_timeout or 3, self.emboux_read_timeout or 15)
        try:
            health = client.call("GET", "/health")
            # /health needs no token: prove the token too, with a master-only read
            client.call("GET", "/api-keys/")
        except ConnectorError as exc:
            raise UserError(self.env._("Connection failed: %s", exc)) from None
        parts = ", ".join(f"{k}: {'ok' if v.get('ok') else 'down'}" for k, v in (health or {}).items()
                          if isinstance(v, dict))
        return {
            "type": "ir.actions.client", "tag": "display_notification",
            "params": {"title": self.env._("Connector reachable"), "type": "success", "sticky": False,
                       "message": self.env._("The connector answers and accepts the master token (%s).", parts or "ok")},
        }
