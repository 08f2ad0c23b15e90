# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A domain's sending identity, as the connector reports it: its provider
and verification with it (`POST /domains/{name}/verify`, `GET
.../verify-status`), its DKIM keys (`GET .../dkim`, rotation by managers)
and the DNS records it needs (`GET .../dns-check`). See
docs/sending-identity.md. These are reads and idempotent provider calls:
sent at once, not queued; only the DKIM rotation age is a setting (queued
like every other change)."""

import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services.connector_client import ConnectorError, ConnectorRefused, ConnectorUnavailable

_logger = logging.getLogger(__name__)

# The connector's `state` (provider_identities.state) -> verification_state
_STATES = {"not_started": "unverified", "pending": "pending", "failed": "failed", "verified": "verified",
           "inherited": "pending"}
# How many pending domains one run of the verification cron polls
VERIFICATION_BATCH = 200


class EmbouxDomainIdentity(models.AbstractModel):
    _name = "emboux.domain.identity"
    _description = "Email Hosting domain: sending identity"

    provider = fields.Selection(
        [("local", "Local"), ("ses", "Amazon SES"), ("mailgun", "Mailgun")],
        default="local", required=True, tracking=True,
        help="Who delivers this domain's outbound mail. Local: the platform's own servers, DKIM keys made here.")
    verification_state = fields.Selection(
        [("unverified", "Not verified"), ("pending", "Pending"), ("verified", "Verified"), ("failed", "Failed")],
        string="Verification", default="unverified", required=True, readonly=True, copy=False, tracking=True, index=True,
        help="Verification with the provider. Local: its DKIM key is published in the domain's DNS. "
             "Pending domains are checked again every 2 hours.")
    verification_detail = fields.Char("Verification detail", readonly=True, copy=False)
    verification_checked_at = fields.Datetime("Verification checked", readonly=True, copy=False)
    verified_at = fields.Datetime("Verified since", readonly=True, copy=False)
    ses_verified = fields.Boolean(
        "May send", readonly=True, copy=False,
        help="What the platform enforces: verified with its provider, or through its parent domain "
             "(a local domain needs no provider).")
    dkim_state = fields.Selection(
        [("none", "No key yet"), ("active", "Active"), ("rotating", "Rotating (old key still published)"),
         ("parent", "Signed with the parent's key"), ("provider", "Managed by the provider")],
        string="DKIM", readonly=True, copy=False)
    dkim_selector = fields.Char("DKIM selector", readonly=True, copy=False, help="The key that signs now.")
    dkim_selectors = fields.Char(
        "Published selectors", readonly=True, copy=False,
        help="Every key that must be in DNS now: the active one and those retiring after a rotation.")
    dkim_rotation_days = fields.Integer(
        "Rotate DKIM every (days)", default=0, tracking=True,
        help="The platform rotates the signing key once it is this old (the old key stays published for "
             "an overlap). 0 = never (manual rotation only). Local provider only.")
    dkim_rotates_at = fields.Datetime("Next DKIM rotation", readonly=True, copy=False)
    dns_record_ids = fields.One2many("emboux.dns.record", "domain_id", string="DNS records", readonly=True)
    dns_checked_at = fields.Datetime("DNS last checked", readonly=True, copy=False)
    dns_ok = fields.Boolean("DNS complete", readonly=True, copy=False,
                            help="Every required record is published as expected (at the last check).")

    _dkim_rotation_days_range = models.Constraint(
        "CHECK (dkim_rotation_days BETWEEN 0 AND 3650)",
        "The DKIM rotation age is a number of days between 0 (never) and 3650.")

    # --- helpers -----------------------------------------------------------------
    def _emboux_identity_call(self, method, suffix, what, payload=None):
        """One call about this domain; a refusal is a UserError that says
        what failed and why (the connector's sentence)."""
        self.ensure_one()
        client = self.env["emboux.connector"]._client()
        try:
            return client.call(method, f"/domains/{client.q(self.name)}{suffix}", payload)
        except ConnectorError as exc:
            raise UserError(self.env._("%(what)s of %(name)s failed: %(error)s",
                                       what=what, name=self.name, error=str(exc))) from None

    def _emboux_require_hosted(self):
        """Verify only a domain the platform hosts: with the master token the
        connector would otherwise verify the bare name at the provider."""
        client = self.env["emboux.connector"]._client()
        for dom in self:
            try:
                client.call("GET", f"/domains/{client.q(dom.name)}")
            except ConnectorRefused as exc:
                if exc.status != 404:
                    raise UserError(str(exc)) from None
                raise UserError(self.env._(
                    "%s is not hosted on the mail platform (yet): nothing to verify. Wait until the domain is "
                    "synchronised (or retry its sync), then verify it.", dom.name)) from None
            except ConnectorError as exc:
                raise UserError(str(exc)) from None

    def _emboux_store_verification(self, result, notify=False):
        """Keep a verify / verify-status answer on the record. With `notify`
        (the cron), a change to verified or failed is posted in the chatter
        and given to the responsible user as an activity."""
        self.ensure_one()
        if not isinstance(result, dict):
            return False
        state = "verified" if result.get("verified") else _STATES.get(result.get("state"), "pending")
        vals = {"verification_state": state,
                "verification_detail": result.get("detail") or False,
                "ses_verified": bool(result.get("ses_verified")),
                "verification_checked_at": fields.Datetime.now()}
        if result.get("provider") in dict(self._fields["provider"].selection):
            vals["provider"] = result["provider"]
        if result.get("verified_at"):
            vals["verified_at"] = self._emboux_parse_time(result["verified_at"])
        before = self.verification_state
        self.with_context(emboux_no_sync=True).sudo().write(vals)
        if notify and before != state and state in ("verified", "failed"):
            self._emboux_notify_verification(state)
        return before != state

    def _emboux_notify_verification(self, state):
        if state == "verified":
            body = self.env._("%s is verified with its provider: its mail can be sent and signed.", self.name)
            summary = self.env._("Domain verified: tell the customer")
        else:
            body = self.env._("Verification of %(name)s failed: %(detail)s", name=self.name,
                              detail=self.verification_detail or self.env._("no detail"))
            summary = self.env._("Domain verification failed: check its DNS")
        self.message_post(body=body)
        user = self.tenant_id.partner_id.user_id or self.create_uid
        self.activity_schedule("mail.mail_activity_data_todo", summary=summary, note=body,
                               user_id=user.id if user and user.active and not user.share else self.env.uid)

    def _emboux_store_dkim(self, result):
        """Keep `GET /domains/{name}/dkim` on the record."""
        self.ensure_one()
        if self.provider != "local":
            vals = {"dkim_state": "provider", "dkim_selector": False, "dkim_selectors": False,
                    "dkim_rotates_at": False}
        else:
            keys = result.get("keys") or []
            signing = result.get("signing") or {}
            active = [k for k in keys if k.get("status") == "active"]
            retiring = [k for k in keys if k.get("status") == "retiring"]
            if active:
                state = "rotating" if retiring else "active"
            elif signing and signing.get("domain") != self.name:
                state = "parent"
            else:
                state = "none"
            vals = {"dkim_state": state,
                    "dkim_selector": (signing.get("selector") and
                                      f"{signing['selector']}" + ("" if signing.get("domain") == self.name
                                                                  else f" ({signing.get('domain')})")) or False,
                    "dkim_selectors": ", ".join(f"{k['selector']} ({k['status']})" for k in keys) or False,
                    "dkim_rotates_at": self._emboux_parse_time(result.get("rotates_at"))}
        changed = {k: v for k, v in vals.items() if self[k] != v}
        if changed:
            self.with_context(emboux_no_sync=True).sudo().write(changed)

    def _emboux_refresh_dkim(self):
        for dom in self:
            dom._emboux_store_dkim(dom._emboux_identity_call("GET", "/dkim", self.env._("Reading the DKIM keys")))

    # --- buttons -----------------------------------------------------------------
    def action_verify(self):
        """Start verification with the domain's provider (local: make its DKIM
        key); the answer says what to publish (DNS records tab)."""
        self._emboux_require_hosted()
        for dom in self:
            result = dom._emboux_identity_call("POST", "/verify", self.env._("Verification"), {})
            dom._emboux_store_verification(result)
            dom._emboux_refresh_dkim()
        return self._emboux_identity_notification(self.env._("Verification"))

    def action_refresh_verification(self):
        """Ask the provider (local: the DNS) whether the domain is verified now."""
        self._emboux_require_hosted()
        for dom in self:
            result = dom._emboux_identity_call("GET", "/verify-status", self.env._("The verification check"))
            dom._emboux_store_verification(result)
            dom._emboux_refresh_dkim()
        return self._emboux_identity_notification(self.env._("Verification status"))

    def _emboux_identity_notification(self, title):
        states = dict(self._fields["verification_state"].selection)
        lines = [f"{d.name}: {states[d.verification_state]}"
                 + (f" ({d.verification_detail})" if d.verification_detail and d.verification_state != "verified"
                    else "") for d in self]
        return {"type": "ir.actions.client", "tag": "display_notification",
                "params": {"title": title, "message": "\n".join(lines), "sticky": False,
                           "type": "success" if all(d.verification_state == "verified" for d in self) else "warning",
                           "next": {"type": "ir.actions.client", "tag": "soft_reload"}}}

    def action_rotate_dkim(self):
        """Managers: a new DKIM key signs at once; the old one stays published
        for the overlap (DKIM_ROTATION_OVERLAP_DAYS). Recorded in the chatter."""
        if not self.env.user.has_group("emboux_core.group_emboux_manager"):
            raise AccessError(self.env._("Only an Email Hosting administrator may rotate a domain's DKIM key."))
        for dom in self:
            if dom.provider != "local":
                raise UserError(self.env._("%(name)s is signed by its provider (%(provider)s): its DKIM keys are "
                                           "managed there.", name=dom.name, provider=dom.provider))
            result = dom._emboux_identity_call("POST", "/dkim/rotate", self.env._("The DKIM rotation"), {})
            dom._emboux_refresh_dkim()
            dom.message_post(body=self.env._(
                "%(user)s rotated the DKIM key of %(name)s: selector %(new)s signs now; %(old)s stays published "
                "until the overlap ends. Publish the new record (DNS records tab).", user=self.env.user.name,
                name=dom.name, new=result.get("selector"), old=", ".join(result.get("retiring") or []) or "-"))
        return True

    def action_check_dns(self):
        """Read `GET /domains/{name}/dns-check` into the DNS records tab: what
        to publish, exactly as the check expects it. A check whose resolver
        did not answer for a required record is refused: it would show
        records as missing that may well be published (an optional record's
        failed lookup is said in its fix)."""
        for dom in self:
            result = dom._emboux_identity_call("GET", "/dns-check", self.env._("The DNS check"))
            if any(r.get("lookup_failed") and r.get("required", True) for r in result.get("records") or []):
                raise UserError(self.env._(
                    "The DNS check of %s could not complete: the DNS resolver did not answer (timeout or "
                    "refusal). Nothing was changed; try again in a few minutes.", dom.name))
            lines = [fields.Command.clear()]
            for i, rec in enumerate(result.get("records") or []):
                found = rec.get("found") or []
                lines.append(fields.Command.create({
                    "sequence": i, "record": rec.get("record"), "record_type": rec.get("type"),
                    "name": rec.get("name"), "expected": rec.get("expected") or False,
                    "found": "\n".join(found) if isinstance(found, list) else str(found),
                    "status": rec.get("status"), "fix": rec.get("fix") or rec.get("next_step") or False,
                    "required": rec.get("required", True)}))
            dom.with_context(emboux_no_sync=True).sudo().write({
                "dns_record_ids": lines, "dns_checked_at": fields.Datetime.now(), "dns_ok": bool(result.get("ok"))})
        return True

    # --- settings ----------------------------------------------------------------
    def _emboux_check_identity_vals(self, vals):
        if "dkim_rotation_days" not in vals:
            return
        if not self.env.su and not self.env.user.has_group("emboux_core.group_emboux_manager"):
            raise AccessError(self.env._("Only an Email Hosting administrator may change the DKIM rotation."))
        value = vals["dkim_rotation_days"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3650:
            raise UserError(self.env._("The DKIM rotation age is a number of days between 0 (never) and 3650: "
                                       "%r is not.", value))
        if value and any(d.provider != "local" for d in self):
            raise UserError(self.env._("Only domains the platform signs (provider Local) rotate their DKIM keys "
                                       "here; the provider manages the others."))

    def _emboux_sync_identity(self, vals):
        if "dkim_rotation_days" in vals:
            for dom in self:
                dom._emboux_sync("domain.dkim", rotation_days=dom.dkim_rotation_days)

    # --- cron ----------------------------------------------------------------------
    @api.model
    def _cron_poll_verification(self, batch=VERIFICATION_BATCH):
        """Every 2 hours: ask the platform about each pending domain (oldest
        check first); a domain that became verified or failed is posted in
        its chatter with an activity for the responsible user."""
        domains = self.search([("verification_state", "=", "pending")],
                              order="verification_checked_at asc nulls first, id", limit=batch)
        client = self.env["emboux.connector"]._client()
        for dom in domains:
            try:
                result = client.call("GET", f"/domains/{client.q(dom.name)}/verify-status")
            except ConnectorUnavailable as exc:
                _logger.warning("verification cron: connector unavailable, stopping: %s", exc)
                break
            except ConnectorError as exc:
                _logger.info("verification cron: %s not checked: %s", dom.name, exc)
                dom.with_context(emboux_no_sync=True).sudo().write(
                    {"verification_checked_at": fields.Datetime.now(), "verification_detail": str(exc)[:500]})
                continue
            dom._emboux_store_verification(result, notify=True)
        return True
