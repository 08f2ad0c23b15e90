# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A domain's outbound control, as the connector reports it
(`GET /domains/{name}/outbound`, fields named as in the API): the settings a
manager edits here (sent through the sync queue as `PUT .../outbound`) and
the counters the platform keeps (read-only here: refreshed on demand, and
written for every domain by the pull cron)."""

from datetime import datetime, timezone

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services.connector_client import ConnectorError

# Settings a manager may change (the connector answers 403 to anyone but the master for these)
OUTBOUND_MASTER_FIELDS = ("outbound_tier", "outbound_enforcement", "warmup_profile", "spike_max_multiplier",
                          "provider")
# Settings sent to the connector when they change here
OUTBOUND_SETTINGS = ("outbound_daily_limit", "outbound_monthly_limit") + OUTBOUND_MASTER_FIELDS
# Integers the platform counts (the API's field name is the Odoo field's name)
OUTBOUND_COUNTERS = ("outbound_sent_today", "outbound_sent_month", "outbound_sent_this_hour",
                     "overage_today", "overage_month", "bounce_count", "complaint_count",
                     "outbound_daily_ceiling", "outbound_monthly_ceiling", "warmup_day", "hourly_limit")
# Numbers that may exceed a 32-bit integer, or are fractions
OUTBOUND_FLOATS = ("outbound_bytes_month", "overage_bytes_month", "bounce_rate", "complaint_rate",
                   "bounce_rate_threshold", "complaint_rate_threshold", "daily_average_7d")
# Caps the connector reports as null when they do not apply (stored as 0 = none)
OUTBOUND_CAPS = ("warmup_daily_cap", "spike_daily_cap")


class EmbouxDomainOutbound(models.AbstractModel):
    _name = "emboux.domain.outbound"
    _description = "Email Hosting domain: outbound control"

    outbound_tier = fields.Selection(
        [("shared", "Shared"), ("dedicated", "Dedicated")], string="Tier", default="shared", tracking=True,
        help="Shared: sends through the platform's shared IP pool. Dedicated: its own sending IP.")
    outbound_enforcement = fields.Selection(
        [("soft", "Soft (allow and bill)"), ("hard", "Hard (refuse)")], string="Enforcement", default="hard",
        tracking=True, help="What happens above a limit: soft lets mail go and counts the overage, hard refuses it.")
    outbound_daily_limit = fields.Integer("Daily limit", default=1000, tracking=True, help="Messages per day. 0 = unlimited.")
    outbound_monthly_limit = fields.Integer("Monthly limit", default=20000, tracking=True,
                                            help="Messages per calendar month (UTC). 0 = unlimited.")
    outbound_daily_ceiling = fields.Integer(
        "Daily ceiling", readonly=True,
        help="The operator's daily limit: a customer may lower its own limit, never raise it above this.")
    outbound_monthly_ceiling = fields.Integer("Monthly ceiling", readonly=True)
    warmup_profile = fields.Selection(
        [("fast", "Fast (x1.8 a day)"), ("standard", "Standard (x1.1 a day)"),
         ("conservative", "Conservative (x1.05 a day)")], string="Warm-up", default="standard", tracking=True,
        help="A new domain's daily cap grows by this factor each day until it reaches the daily limit. "
             "Empty: no warm-up.")
    warmup_day = fields.Integer("Warm-up day", readonly=True)
    warmup_daily_cap = fields.Integer("Today's warm-up cap", readonly=True, help="0: no warm-up cap today.")
    spike_max_multiplier = fields.Float(
        "Spike multiplier", default=5.0, tracking=True,
        help="A day above this many times the 7-day average is a spike (hard: blocked, soft: warned). 0 = off.")
    spike_daily_cap = fields.Integer("Today's spike cap", readonly=True, help="0: no spike cap today.")
    daily_average_7d = fields.Float("7-day average", readonly=True, digits=(16, 2))
    hourly_limit = fields.Integer("Hourly limit", readonly=True)
    outbound_status = fields.Selection(
        [("active", "Active"), ("suspended", "Suspended")], string="Outbound status", default="active",
        readonly=True, tracking=True, index=True,
        help="Suspended: the platform refuses this domain's outbound mail (the guillotine suspends a domain "
             "whose bounce or complaint rate crossed its threshold; the reason says why).")
    outbound_status_reason = fields.Char("Suspension reason", readonly=True, tracking=True)
    outbound_sent_today = fields.Integer("Sent today", readonly=True)
    outbound_sent_month = fields.Integer("Sent this month", readonly=True)
    outbound_sent_this_hour = fields.Integer("Sent this hour", readonly=True)
    outbound_bytes_month = fields.Float("Bytes this month", readonly=True, digits=(20, 0))
    overage_today = fields.Integer("Overage today", readonly=True, help="Messages over a soft limit today.")
    overage_month = fields.Integer("Overage this month", readonly=True)
    overage_bytes_month = fields.Float("Overage bytes this month", readonly=True, digits=(20, 0))
    bounce_count = fields.Integer("Bounces", readonly=True, help="Hard bounces this month.")
    complaint_count = fields.Integer("Complaints", readonly=True, help="Spam complaints this month.")
    bounce_rate = fields.Float("Bounce rate (%)", readonly=True, digits=(16, 3))
    complaint_rate = fields.Float("Complaint rate (%)", readonly=True, digits=(16, 3))
    bounce_rate_threshold = fields.Float(
        "Bounce rate threshold (%)", readonly=True, digits=(16, 3),
        help="Above this bounce rate the platform suspends the domain's outbound (the guillotine).")
    complaint_rate_threshold = fields.Float("Complaint rate threshold (%)", readonly=True, digits=(16, 3))
    outbound_checked_at = fields.Datetime("Outbound figures as of", readonly=True, copy=False)
    emboux_can_manage = fields.Boolean(
        compute="_compute_emboux_can_manage",
        help="The current user is an Email Hosting administrator: the master's settings are editable.")

    _outbound_limits_positive = models.Constraint(
        "CHECK (outbound_daily_limit >= 0 AND outbound_monthly_limit >= 0 AND spike_max_multiplier >= 0)",
        "Outbound limits and the spike multiplier cannot be negative (0 means no limit).")

    @api.depends_context("uid")
    def _compute_emboux_can_manage(self):
        can = self.env.user.has_group("emboux_core.group_emboux_manager")
        for rec in self:
            rec.emboux_can_manage = can

    # --- from the platform -------------------------------------------------------
    @api.model
    def _emboux_outbound_vals(self, result):
        """The Odoo values of a `GET/PUT /domains/{name}/outbound` answer
        (only the keys it carries: a partial answer changes nothing else)."""
        vals = {}
        for key in OUTBOUND_SETTINGS + ("outbound_status", "outbound_status_reason"):
            if key in result:
                vals[key] = result[key] if result[key] is not None else False
        for key in OUTBOUND_COUNTERS + OUTBOUND_CAPS:
            if key in result:
                vals[key] = int(result[key] or 0)
        for key in OUTBOUND_FLOATS:
            if key in result:
                vals[key] = float(result[key] or 0)
        if "spike_max_multiplier" in vals:
            vals["spike_max_multiplier"] = float(vals["spike_max_multiplier"] or 0)
        return vals

    def _emboux_store_outbound(self, result, checked_at=None):
        """Write what the platform reports on this domain, without sending
        it back (only the fields that changed: a pull with nothing new
        writes nothing)."""
        self.ensure_one()
        if not isinstance(result, dict):
            return False
        vals = self._emboux_outbound_vals(result)
        changed = {k: v for k, v in vals.items() if self[k] != v}
        if changed or checked_at is not False:
            changed["outbound_checked_at"] = checked_at or fields.Datetime.now()
        if changed:
            self.with_context(emboux_no_sync=True).sudo().write(changed)
        return bool(changed)

    def action_refresh_outbound(self):
        """Read the outbound figures now (`GET /domains/{name}/outbound`)."""
        client = self.env["emboux.connector"]._client()
        for dom in self:
            try:
                result = client.call("GET", f"/domains/{client.q(dom.name)}/outbound")
            except ConnectorError as exc:
                raise UserError(self.env._("The outbound figures of %(name)s could not be read: %(error)s",
                                           name=dom.name, error=str(exc))) from None
            dom._emboux_store_outbound(result)
        return True

    # --- to the platform ---------------------------------------------------------
    @api.model
    def _emboux_outbound_non_defaults(self, vals):
        """The outbound settings of a new domain's `vals` that differ from the
        platform's defaults (the same as this model's): what must be sent."""
        return [f for f in OUTBOUND_SETTINGS if f in vals and vals[f] != self._fields[f].default(self)]

    def _emboux_check_outbound_vals(self, vals, creating=False):
        """Refuse here what the connector would refuse after commit, with the
        contract's role rule: tier, enforcement, warm-up and spike are the
        master's (here: the Email Hosting administrators')."""
        master = [f for f in OUTBOUND_MASTER_FIELDS if f in vals]
        if creating:
            master = [f for f in master if f in self._emboux_outbound_non_defaults(vals)]
        if master and not self.env.su \
                and not self.env.user.has_group("emboux_core.group_emboux_manager"):
            raise AccessError(self.env._("Only an Email Hosting administrator may change a domain's outbound "
                                         "tier, enforcement, warm-up profile, spike multiplier or provider."))
        for f in ("outbound_daily_limit", "outbound_monthly_limit", "spike_max_multiplier"):
            if f not in vals:
                continue
            value = vals[f]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UserError(self.env._("%(field)s must be a number, 0 or more (0 means no limit): %(value)r "
                                           "is not.", field=self._fields[f].string, value=value))
            if f != "spike_max_multiplier" and value > 1_000_000_000:
                raise UserError(self.env._("%(field)s cannot be above 1,000,000,000.",
                                           field=self._fields[f].string))
            if f == "spike_max_multiplier" and value > 1000:
                raise UserError(self.env._("The spike multiplier cannot be above 1000."))

    def _emboux_sync_outbound(self, fields_changed):
        """Queue `PUT /domains/{name}/outbound` with the changed settings."""
        for dom in self:
            body = {}
            for f in fields_changed:
                value = dom[f]
                body[f] = value if value is not False else None
            if body:
                dom._emboux_sync("domain.outbound", **body)

    @staticmethod
    def _emboux_parse_time(value):
        if not value:
            return False
        return datetime.fromisoformat(value).astimezone(timezone.utc).replace(tzinfo=None)
