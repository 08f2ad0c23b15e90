# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import hashlib
import secrets

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..services import secrets_box


class EmbouxApiKey(models.Model):
    """A customer's token for the REST API. The token is generated here, shown
    once (wizard), and Odoo keeps its sha256 only. To update or revoke the
    key on the connector, whose API addresses keys by token, Odoo keeps a
    handle sealed with a key outside the database (services/secrets_box.py)."""

    _name = "emboux.api.key"
    _description = "Email Hosting API key"
    _inherit = ["mail.thread", "emboux.sync.mixin"]
    _order = "create_date desc, id desc"

    name = fields.Char("Label", required=True, tracking=True)
    tenant_id = fields.Many2one("emboux.tenant", required=True, index=True, ondelete="cascade", tracking=True)
    company_id = fields.Many2one(related="tenant_id.company_id", store=True, index=True)
    active = fields.Boolean(default=True, tracking=True)
    expires_at = fields.Datetime("Expires", tracking=True)
    token_hash = fields.Char(readonly=True, copy=False, index=True)
    token_hint = fields.Char("Token starts with", readonly=True, copy=False)
    token_sealed = fields.Text(groups="base.group_system", readonly=True, copy=False)

    _token_hash_unique = models.Constraint("UNIQUE (token_hash)", "This token already exists.")

    def _emboux_lane(self):
        return f"partner:{self.tenant_id.partner_ref}"

    def _token(self):
        return secrets_box.unseal(self.env.cr.dbname, self.sudo().token_sealed)

    @api.model_create_multi
    def create(self, vals_list):
        tokens = []
        given = self.env.context.get("emboux_new_tokens") or []
        for i, vals in enumerate(vals_list):
            token = given[i] if i < len(given) else secrets.token_urlsafe(32)
            tokens.append(token)
            vals.update(token_hash=hashlib.sha256(token.encode()).hexdigest(), token_hint=token[:6])
            vals.pop("token_sealed", None)
        keys = super().create(vals_list)
        for key, token in zip(keys, tokens):
            # a system-only field: written as superuser for the (manager) user
            key.sudo().token_sealed = secrets_box.seal(self.env.cr.dbname, token)
            if self._emboux_sync_enabled():
                t = key.tenant_id
                key._emboux_enqueue("api_key.create", "POST", "/api-keys/",
                                    {"partner_ref": t.partner_ref, "domains_allowed": t.domains_allowed,
                                     "mailboxes_per_domain": t.mailboxes_per_domain,
                                     "aliases_per_mailbox": t.aliases_per_mailbox, "active": key.active,
                                     "expires_at": key.expires_at.isoformat() + "Z" if key.expires_at else None},
                                    secret=token, secret_field="token")
        return keys

    def write(self, vals):
        if "tenant_id" in vals and any(k.tenant_id.id != vals["tenant_id"] for k in self):
            raise UserError(_("An API key cannot move to another tenant: create a new key."))
        res = super().write(vals)
        if self._emboux_sync_enabled() and ("active" in vals or "expires_at" in vals):
            for key in self:
                key._emboux_enqueue("api_key.update", "PUT", "/api-keys/{token}",
                                    {"active": key.active,
                                     "expires_at": key.expires_at.isoformat() + "Z" if key.expires_at else None})
        return res

    def _emboux_enqueue_delete(self):
        for key in self:
            key._emboux_enqueue("api_key.delete", "DELETE", "/api-keys/{token}")

    def unlink(self):
        if self._emboux_sync_enabled():
            self._emboux_enqueue_delete()
        return super().unlink()

    @api.model
    def create_with_token(self, vals):
        """RPC helper: create a key and return {'id', 'token'}: the only time
        the token can be read."""
        token = secrets.token_urlsafe(32)
        key = self.with_context(emboux_new_tokens=[token]).create(vals)
        return {"id": key.id, "token": token}

    def _emboux_enqueue(self, kind, method, path, payload=None, secret=None, secret_field="password"):
        # The path of PUT/DELETE carries the token: the job keeps a placeholder
        # and the token travels sealed, like a password.
        if method != "POST":
            path, secret, secret_field = "/api-keys/{token}", self._token(), "token"
        return super()._emboux_enqueue(kind, method, path, payload, secret, secret_field)
