# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import hashlib
import secrets

from odoo import api, fields, models
from odoo.exceptions import UserError



class EmbouxApiKey(models.Model):
    """A customer's token for the REST API. The token is generated here, shown
    once (wizard), and Odoo keeps its sha256 and first characters only. Until
    the connector has it, the token waits sealed in the create job (like a
    mailbox password), and is wiped from there once sent. The connector's key
    id (`connector_key_id`) is kept instead: updates and revocation go through
    `/api-keys/by-id/{id}`."""

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
    connector_key_id = fields.Integer(
        "Platform key id", readonly=True, copy=False, index=True,
        help="The key's id on the mail platform, known once its creation has been applied.")

    _token_hash_unique = models.Constraint("UNIQUE (token_hash)", "This token already exists.")

    def _emboux_lane(self):
        return f"partner:{self.tenant_id.partner_ref}"

    @api.model_create_multi
    def create(self, vals_list):
        tokens = []
        given = self.env.context.get("emboux_new_tokens") or []
        for i, vals in enumerate(vals_list):
            token = given[i] if i < len(given) else secrets.token_urlsafe(32)
            tokens.append(token)
            vals.update(token_hash=hashlib.sha256(token.encode()).hexdigest(), token_hint=token[:6])
            vals.pop("connector_key_id", None)
        keys = super().create(vals_list)
        for key, token in zip(keys, tokens):
            if self._emboux_sync_enabled():
                # the partner's quotas are the tenant's jobs (PUT /partners/{ref}), queued before
                key._emboux_sync("api_key.create", secret=token, partner_ref=key.tenant_id.partner_ref,
                                 active=key.active, expires_at=key.expires_at or None)
        return keys

    def write(self, vals):
        if "tenant_id" in vals and any(k.tenant_id.id != vals["tenant_id"] for k in self):
            raise UserError(self.env._("An API key cannot move to another tenant: create a new key."))
        res = super().write(vals)
        if self._emboux_sync_enabled() and ("active" in vals or "expires_at" in vals):
            for key in self:
                key._emboux_sync("api_key.update", active=key.active, expires_at=key.expires_at or None)
        return res

    def _emboux_enqueue_delete(self):
        for key in self:
            key._emboux_sync("api_key.delete")

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

    def _emboux_target(self):
        """The connector's key id; while the create job has not been applied
        yet, none: the path keeps a `{key_id}` placeholder that the job
        resolves when it runs (after the create, first in the tenant's lane)."""
        return {"key_id": self.connector_key_id or None}

    def _emboux_job_done(self, job, result):
        if job.kind in ("api_key.create", "api_key.resolve") and isinstance(result, dict) and result.get("id"):
            self.with_context(emboux_no_sync=True).sudo().write({"connector_key_id": result["id"]})
