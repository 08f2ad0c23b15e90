# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A mailbox's out-of-office auto-reply (issue 17, docs/inbound.md), as the
connector keeps it (`GET/PUT /users/{email}/vacation`): on or off, subject,
message, first and last day, and how many days pass before the same sender
gets another reply. Edited on the mailbox form's "Out of office" tab and in
the customer portal, checked here as the connector checks it (a UserError
before anything is written or queued), sent whole through the sync queue
(`mailbox.vacation`), and written back as the platform stored it."""

import re

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services.connector_client import ConnectorError

# Odoo field -> the API's field (GET/PUT /users/{email}/vacation)
VACATION_FIELDS = {"vacation_enabled": "enabled", "vacation_subject": "subject", "vacation_body": "body",
                   "vacation_start": "start", "vacation_end": "end", "vacation_days": "days"}
SUBJECT_MAX = 200        # the connector's limits (emboux_connector/api/vacation)
BODY_MAX = 10000
DAYS_RANGE = (1, 30)
DEFAULT_DAYS = 7
# a line break or another control character (a tab is fine), as the connector
_SUBJECT_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


class EmbouxMailboxVacation(models.Model):
    _inherit = "emboux.mailbox"

    vacation_enabled = fields.Boolean(
        "Auto-reply", tracking=True,
        help="Answer incoming mail with the message below, between the first and the last day. Replies follow "
             "RFC 3834: never to mailing lists, bulk mail or other automatic replies, and once per sender per "
             "period. They are outbound mail of the domain (its caps and suspension apply).")
    vacation_subject = fields.Char(
        "Reply subject", tracking=True,
        help="The subject of the auto-reply (one line, at most 200 characters), e.g. Out of office.")
    vacation_body = fields.Text(
        "Reply message", help="The text of the auto-reply (at most 10,000 characters).")
    vacation_start = fields.Date(
        "First day", tracking=True, help="The first day replies are sent. Empty: from now on.")
    vacation_end = fields.Date(
        "Last day", tracking=True,
        help="The last day replies are sent (included). Empty: until the auto-reply is turned off.")
    vacation_days = fields.Integer(
        "Reply again after (days)", default=DEFAULT_DAYS,
        help="A sender who writes again gets another reply after this many days (1 to 30).")
    vacation_state = fields.Selection(
        [("off", "Off"), ("scheduled", "Scheduled"), ("away", "Out of office"), ("ended", "Ended")],
        "Out of office", compute="_compute_vacation_state",
        help="Off: no auto-reply. Scheduled: on, from its first day. Out of office: replying today. "
             "Ended: on, but its last day has passed.")
    vacation_checked_at = fields.Datetime("Auto-reply as of", readonly=True, copy=False)

    _vacation_days_range = models.Constraint(
        "CHECK (vacation_days BETWEEN 1 AND 30)", "Reply again after: 1 to 30 days.")

    @api.depends("vacation_enabled", "vacation_start", "vacation_end")
    @api.depends_context("tz")
    def _compute_vacation_state(self):
        today = fields.Date.context_today(self)
        for box in self:
            if not box.vacation_enabled:
                box.vacation_state = "off"
            elif box.vacation_start and box.vacation_start > today:
                box.vacation_state = "scheduled"
            elif box.vacation_end and box.vacation_end < today:
                box.vacation_state = "ended"
            else:
                box.vacation_state = "away"

    # --- checks, as the connector's ------------------------------------------
    def _emboux_vacation_date(self, field, value):
        if not value:
            return False
        try:
            return fields.Date.to_date(value)
        except (TypeError, ValueError):
            raise UserError(self.env._("%(field)s: %(value)r is not a date (YYYY-MM-DD).",
                                       field=self._fields[field].string, value=value)) from None

    def _emboux_vacation_days(self, value):
        label = self._fields["vacation_days"].string
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(self.env._("%(field)s must be a whole number of days.", field=label))
        lo, hi = DAYS_RANGE
        if not lo <= value <= hi:
            raise UserError(self.env._("%(field)s must be between %(lo)s and %(hi)s days.", field=label,
                                       lo=lo, hi=hi))
        return value

    def _emboux_check_vacation_vals(self, vals):
        """Normalise the vacation fields of `vals` in place, then check the
        whole auto-reply each record would have; refuse what the connector
        would refuse (nothing is written or queued then)."""
        if not any(f in vals for f in VACATION_FIELDS):
            return
        if "vacation_enabled" in vals:
            vals["vacation_enabled"] = bool(vals["vacation_enabled"])
        if "vacation_subject" in vals:
            subject = vals["vacation_subject"]
            if subject and not isinstance(subject, str):
                raise UserError(self.env._("The reply subject must be text."))
            # (spaces only: a line break is refused, not trimmed away)
            vals["vacation_subject"] = (subject or "").strip(" \t") or False
        if "vacation_body" in vals:
            body = vals["vacation_body"]
            if body and not isinstance(body, str):
                raise UserError(self.env._("The reply message must be text."))
            # one kind of line end (a browser's form posts CRLF)
            body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
            vals["vacation_body"] = body if body.strip() else False
        for f in ("vacation_start", "vacation_end"):
            if f in vals:
                vals[f] = self._emboux_vacation_date(f, vals[f])
        if "vacation_days" in vals:
            vals["vacation_days"] = self._emboux_vacation_days(vals["vacation_days"])
        for box in self or [self.browse()]:
            merged = {f: vals[f] if f in vals else (box[f] if box else False) for f in VACATION_FIELDS}
            self._emboux_check_vacation(merged, box.email if box else None)

    def _emboux_check_vacation(self, v, email=None):
        subject, body = v["vacation_subject"] or "", v["vacation_body"] or ""
        if _SUBJECT_CONTROL.search(subject):
            raise UserError(self.env._("The reply subject must be one line (no line break or control character)."))
        if len(subject) > SUBJECT_MAX:
            raise UserError(self.env._("The reply subject may have at most %(max)s characters (%(count)s given).",
                                       max=SUBJECT_MAX, count=len(subject)))
        if len(body) > BODY_MAX:
            raise UserError(self.env._("The reply message may have at most %(max)s characters (%(count)s given).",
                                       max=f"{BODY_MAX:,}", count=f"{len(body):,}"))
        if v["vacation_enabled"] and not (subject and body.strip()):
            raise UserError(self.env._("%(who)s: an auto-reply needs a subject and a message to be turned on.",
                                       who=email or self.env._("This mailbox")))
        start, end = v["vacation_start"], v["vacation_end"]
        if start and end and end < start:
            raise UserError(self.env._("The auto-reply's last day (%(end)s) is before its first day (%(start)s).",
                                       end=end, start=start))

    def _emboux_vacation_body(self):
        """The whole auto-reply, as the API names it (always all of it: a
        replay, or a later change, sends the state, not a difference)."""
        self.ensure_one()
        return {"enabled": self.vacation_enabled, "subject": self.vacation_subject or "",
                "body": self.vacation_body or "", "start": self.vacation_start or None,
                "end": self.vacation_end or None, "days": self.vacation_days or DEFAULT_DAYS}

    def _emboux_sync_vacation(self):
        for box in self:
            box._emboux_sync("mailbox.vacation", **box._emboux_vacation_body())

    # --- ORM -----------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._emboux_check_vacation_vals(vals)
        boxes = super().create(vals_list)   # queues mailbox.create first (same lane: applied before)
        if self._emboux_sync_enabled():
            boxes.filtered(lambda b: b.vacation_enabled or b.vacation_subject or b.vacation_body)._emboux_sync_vacation()
        return boxes

    def write(self, vals):
        sync = self._emboux_sync_enabled()
        changed = any(f in vals for f in VACATION_FIELDS)
        if changed and sync:   # (without sync: the platform's own values, written back)
            vals = dict(vals)
            self._emboux_check_vacation_vals(vals)
        res = super().write(vals)
        if changed and sync:
            self._emboux_sync_vacation()
        return res

    # --- from the platform ---------------------------------------------------
    def _emboux_job_done(self, job, result):
        res = super()._emboux_job_done(job, result)
        if job.kind == "mailbox.vacation":
            self._emboux_store_vacation(result)
        return res

    def _emboux_store_vacation(self, result):
        """Keep what the platform answered, without sending it back."""
        self.ensure_one()
        vals = self._emboux_vacation_vals(result)
        if not vals:
            return False
        self.with_context(emboux_no_sync=True).sudo().write(vals)
        return True

    def _emboux_vacation_vals(self, result):
        """The fields that the platform's answer `result` (GET/PUT
        .../vacation, or a mailbox's state in the change feed) changes, and
        the time it was read; {} when it is no answer."""
        self.ensure_one()
        if not isinstance(result, dict):
            return {}
        vals = {}
        for f, key in VACATION_FIELDS.items():
            if key not in result:
                continue
            value = result[key]
            if f == "vacation_enabled":
                vals[f] = bool(value)
            elif f in ("vacation_start", "vacation_end"):
                vals[f] = fields.Date.to_date(value) if value else False
            elif f == "vacation_days":
                vals[f] = int(value or DEFAULT_DAYS)
            else:
                vals[f] = value or False
        changed = {k: v for k, v in vals.items() if self[k] != v}
        changed["vacation_checked_at"] = fields.Datetime.now()
        return changed

    def action_refresh_vacation(self):
        """Read the auto-reply now (`GET /users/{email}/vacation`): it may have
        been changed through the API by the customer's own tools."""
        client = self.env["emboux.connector"]._client()
        for box in self:
            try:
                result = client.call("GET", f"/users/{client.q(box.email)}/vacation")
            except ConnectorError as exc:
                raise UserError(self.env._("The auto-reply of %(email)s could not be read: %(error)s",
                                           email=box.email, error=str(exc))) from None
            box._emboux_store_vacation(result)
        return True

    def action_vacation_off(self):
        """The form's "Turn off" button (the text is kept for next time)."""
        self.write({"vacation_enabled": False})
        return True

