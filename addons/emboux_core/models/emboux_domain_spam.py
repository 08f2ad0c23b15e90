# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A domain's inbound spam settings (issue 17, docs/inbound.md), as the
connector keeps them (`GET/PUT /domains/{name}/spam`): the score from which
mail goes to Junk, the score from which it is refused at SMTP, greylisting,
and the allow and block lists of senders. Edited on the domain form's "Spam
filtering" tab, checked here as the connector checks them (a UserError
before anything is queued), sent through the sync queue (`domain.spam`),
and written back as the platform normalised them."""

import math

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import names
from ..services.connector_client import ConnectorError

# Odoo field -> the API's field (GET/PUT /domains/{name}/spam)
SPAM_FIELDS = {"spam_junk_score": "junk_score", "spam_reject_score": "reject_score",
               "spam_greylisting": "greylisting", "spam_allow_senders": "allow_senders",
               "spam_block_senders": "block_senders"}
SPAM_LISTS = ("spam_allow_senders", "spam_block_senders")
SCORE_RANGE = (-100.0, 1000.0)      # the connector's (emboux_connector/spam.py)
MAX_LIST = 1000


class EmbouxDomainSpam(models.AbstractModel):
    _name = "emboux.domain.spam"
    _description = "Email Hosting domain: inbound spam settings"

    spam_junk_score = fields.Float(
        "Junk from score", default=6.0, digits=(16, 2), tracking=True,
        help="Mail scoring at least this much (the spam filter's score) is delivered into the mailbox's Junk "
             "folder. Must be below the refuse score.")
    spam_reject_score = fields.Float(
        "Refuse from score", default=15.0, digits=(16, 2), tracking=True,
        help="Mail scoring at least this much is refused at SMTP (the sender gets a 5xx: never dropped "
             "silently).")
    spam_greylisting = fields.Boolean(
        "Greylisting", default=False, tracking=True,
        help="Suspicious mail from an unknown sending server is deferred once (4xx); legitimate servers retry "
             "within minutes. Off by default: it delays first messages.")
    spam_allow_senders = fields.Text(
        "Allowed senders",
        help="One address (user@example.com) or domain (@example.com) per line: their mail scores lower and "
             "is not sent to Junk for its content. A sender forging a domain whose DMARC policy is reject is "
             "still refused.")
    spam_block_senders = fields.Text(
        "Blocked senders", help="One address (user@example.com) or domain (@example.com) per line: their mail "
                                "is refused at SMTP.")
    spam_checked_at = fields.Datetime("Spam settings as of", readonly=True, copy=False)

    # --- checks, as the connector's ------------------------------------------
    def _emboux_spam_entries(self, field, text):
        """The lines of an allow/block list, lower-case, '@domain' for a bare
        domain, without duplicates; a UserError naming the field and the line."""
        label = self._fields[field].string
        entries = []
        for line in (text or "").splitlines():
            entry = line.strip().lower()
            if not entry:
                continue
            local, at, dom = entry.rpartition("@")
            try:
                if at and local:
                    entry = names.address(entry)
                else:
                    entry = "@" + names.domain_name(dom if at else entry)
            except names.NameError_ as exc:
                raise UserError(self.env._("%(field)s: %(line)r is not an address or @domain (%(error)s)",
                                           field=label, line=line.strip(), error=str(exc))) from None
            if entry not in entries:
                entries.append(entry)
        if len(entries) > MAX_LIST:
            raise UserError(self.env._("%(field)s: at most %(max)s entries (%(count)s given).",
                                       field=label, max=MAX_LIST, count=len(entries)))
        return entries

    def _emboux_spam_score(self, field, value):
        label = self._fields[field].string
        if isinstance(value, str):
            try:
                value = float(value.strip().replace(",", "."))
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(self.env._("%(field)s must be a number.", field=label))
        lo, hi = SCORE_RANGE
        if not lo <= value <= hi:
            raise UserError(self.env._("%(field)s must be between %(lo)s and %(hi)s.", field=label, lo=lo, hi=hi))
        return round(float(value), 2)

    def _emboux_check_spam_vals(self, vals):
        """Normalise the spam fields of `vals` in place; refuse what the
        connector would refuse (nothing is written or queued then)."""
        for f in ("spam_junk_score", "spam_reject_score"):
            if f in vals:
                vals[f] = self._emboux_spam_score(f, vals[f])
        if "spam_greylisting" in vals:
            vals["spam_greylisting"] = bool(vals["spam_greylisting"])
        for f in SPAM_LISTS:
            if f in vals:
                vals[f] = "\n".join(self._emboux_spam_entries(f, vals[f])) or False
        if not any(f in vals for f in SPAM_FIELDS):
            return
        for dom in self or [self.browse()]:
            junk = vals.get("spam_junk_score", dom.spam_junk_score if dom else 6.0)
            reject = vals.get("spam_reject_score", dom.spam_reject_score if dom else 15.0)
            if junk >= reject:
                raise UserError(self.env._(
                    "The Junk score (%(junk)s) must be below the refuse score (%(reject)s): mail between the two "
                    "goes to Junk, mail above the refuse score is refused.", junk=f"{junk:g}", reject=f"{reject:g}"))
            allow = set(self._emboux_spam_entries("spam_allow_senders", vals.get(
                "spam_allow_senders", dom.spam_allow_senders if dom else False)))
            block = set(self._emboux_spam_entries("spam_block_senders", vals.get(
                "spam_block_senders", dom.spam_block_senders if dom else False)))
            both = sorted(allow & block)
            if both:
                raise UserError(self.env._("%(entries)s cannot be both allowed and blocked.",
                                           entries=", ".join(both)))

    def _emboux_spam_body(self, changed):
        body = {}
        for f in changed:
            api_field = SPAM_FIELDS[f]
            if f in SPAM_LISTS:
                body[api_field] = [e for e in (self[f] or "").splitlines() if e.strip()]
            else:
                body[api_field] = self[f]
        return body

    # --- ORM -----------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._emboux_check_spam_vals(vals)
        return super().create(vals_list)

    def _emboux_sync_spam_created(self, vals):
        """A new domain's spam settings that differ from the platform's
        defaults (the same as this model's), sent after its creation."""
        changed = [f for f in SPAM_FIELDS
                   if f in vals and vals[f] != (self._fields[f].default(self) if self._fields[f].default else False)]
        if changed:
            self._emboux_sync("domain.spam", **self._emboux_spam_body(changed))

    def write(self, vals):
        if any(f in vals for f in SPAM_FIELDS):
            vals = dict(vals)
            self._emboux_check_spam_vals(vals)
        sync = self._emboux_sync_enabled()
        res = super().write(vals)
        changed = [f for f in SPAM_FIELDS if f in vals]
        if sync and changed:
            for dom in self:
                dom._emboux_sync("domain.spam", **dom._emboux_spam_body(changed))
        return res

    # --- from the platform ---------------------------------------------------
    def _emboux_store_spam(self, result):
        """Keep what the platform answered (its normalised lists included),
        without sending it back."""
        self.ensure_one()
        if not isinstance(result, dict):
            return False
        vals = {}
        for f, key in SPAM_FIELDS.items():
            if key not in result:
                continue
            value = result[key]
            if f in SPAM_LISTS:
                vals[f] = "\n".join(value or []) or False
            elif f == "spam_greylisting":
                vals[f] = bool(value)
            else:
                vals[f] = float(value or 0)
        changed = {k: v for k, v in vals.items() if self[k] != v}
        changed["spam_checked_at"] = fields.Datetime.now()
        self.with_context(emboux_no_sync=True).sudo().write(changed)
        return True

    def action_refresh_spam(self):
        """Read the spam settings now (`GET /domains/{name}/spam`): they may
        have been changed through the API by the customer's own tools."""
        client = self.env["emboux.connector"]._client()
        for dom in self:
            try:
                result = client.call("GET", f"/domains/{client.q(dom.name)}/spam")
            except ConnectorError as exc:
                raise UserError(self.env._("The spam settings of %(name)s could not be read: %(error)s",
                                           name=dom.name, error=str(exc))) from None
            dom._emboux_store_spam(result)
        return True
