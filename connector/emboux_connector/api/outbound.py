"""Outbound control: per-domain settings and counters, the atomic increment
(the policy daemon's own decision code), the daily and monthly reset jobs,
billing records and the suppression check. See docs/outbound.md."""

import datetime as dt
import json
import uuid

from flask import Blueprint
from marshmallow import fields, validate

from .. import feedback, names, periods, schemas, stores
from ..errors import ApiError
from ..fields import StrictBoolean, StrictInteger, StrictString
from ..policy import engine
from ..routing import endpoint
from ..tenancy import visible_domain

bp = Blueprint("outbound", __name__)

LIMIT = validate.Range(min=0, max=1_000_000_000)
# A client may lower these, up to the operator's value (the ceiling), never raise them above it.
LIMIT_CEILINGS = {"outbound_daily_limit": "outbound_daily_ceiling",
                  "outbound_monthly_limit": "outbound_monthly_ceiling"}
MASTER_FIELDS = ("outbound_tier", "outbound_enforcement", "outbound_status", "outbound_status_reason",
                 "warmup_profile", "spike_max_multiplier", "provider", "ses_verified")


class SpikeMultiplier(fields.Float):
    """A number (int or float), not a string or a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if not 0 <= value <= 1000:
            from marshmallow import ValidationError
            raise ValidationError("Must be between 0 and 1000.")
        return float(value)


class OutboundUpdate(schemas.Body):
    outbound_daily_limit = StrictInteger(validate=LIMIT, metadata={"description": "0 = unlimited"})
    outbound_monthly_limit = StrictInteger(validate=LIMIT, metadata={"description": "0 = unlimited"})
    outbound_tier = StrictString(validate=validate.OneOf(["shared", "dedicated"]),
                                 metadata={"description": "master only"})
    outbound_enforcement = StrictString(validate=validate.OneOf(["soft", "hard"]),
                                        metadata={"description": "master only"})
    outbound_status = StrictString(validate=validate.OneOf(["active", "suspended"]),
                                   metadata={"description": "master only"})
    outbound_status_reason = StrictString(max_length=500, allow_none=True,
                                          metadata={"description": "master only; shown to senders"})
    warmup_profile = StrictString(validate=validate.OneOf(list(engine.PROFILES)), allow_none=True,
                                  metadata={"description": "master only; null = no warm-up"})
    spike_max_multiplier = SpikeMultiplier(metadata={"description": "master only; 0 = off"})
    provider = StrictString(validate=validate.OneOf(["local", "ses", "mailgun"]),
                            metadata={"description": "master only"})
    ses_verified = StrictBoolean(metadata={"description": "master only: verified with the provider"})


class Increment(schemas.Body):
    count = StrictInteger(validate=validate.Range(min=1, max=100_000),
                          metadata={"description": "recipients to count (default 1)"})
    bytes = StrictInteger(validate=validate.Range(min=0, max=10**12),
                          metadata={"description": "message size, for the transfer cap"})
    message_id = StrictString(max_length=500, metadata={"description": "dedupe key: counted once"})


class ResetDaily(schemas.Body):
    day = StrictString(max_length=10, metadata={
        "description": "YYYY-MM-DD being closed (default: yesterday, UTC): over, and after the last closed day"})


class ResetMonthly(schemas.Body):
    month = StrictString(max_length=7, metadata={
        "description": "YYYY-MM being frozen: over, and the month after the last frozen one (default: that "
                       "month, or last month (UTC) when it is already frozen)"})


class MonthQuery(schemas.Body):
    month = StrictString(max_length=7)


OUTBOUND_SQL = f"""
SELECT s.*, c.sent_today, c.sent_month, c.bytes_month, c.overage_today, c.overage_month,
       c.overage_bytes_month, c.spike_warnings_today, c.warmup_day, c.bounce_count, c.complaint_count,
       CASE WHEN c.hour_start = date_trunc('hour', now()) THEN c.sent_hour ELSE 0 END AS sent_hour,
       d.outbound_tier, d.provider_verified,
       coalesce(d.outbound_daily_ceiling, d.outbound_daily_limit) AS daily_ceiling,
       coalesce(d.outbound_monthly_ceiling, d.outbound_monthly_limit) AS monthly_ceiling
FROM ({engine.DOMAIN_STATE_SQL}) s
JOIN domains d ON d.id = s.id
JOIN outbound_counters c ON c.domain_id = s.id
"""


def _rate(n, sent):
    return round(100.0 * n / sent, 3) if sent else 0.0


def outbound_json(cur, name):
    cur.execute(OUTBOUND_SQL, (name,))
    r = cur.fetchone()
    st = engine.DomainState.from_row(r)
    settings = engine.Settings.from_env()
    guillotine = feedback.Thresholds.from_env()
    return {
        "name": r["name"],
        "outbound_tier": r["outbound_tier"],
        "outbound_status": r["outbound_status"],
        "outbound_status_reason": r["outbound_status_reason"],
        "outbound_daily_limit": r["outbound_daily_limit"],
        "outbound_monthly_limit": r["outbound_monthly_limit"],
        "outbound_daily_ceiling": r["daily_ceiling"],
        "outbound_monthly_ceiling": r["monthly_ceiling"],
        "outbound_sent_today": r["sent_today"],
        "outbound_sent_month": r["sent_month"],
        "outbound_sent_this_hour": r["sent_hour"],
        "outbound_bytes_month": r["bytes_month"],
        "outbound_enforcement": r["outbound_enforcement"],
        "overage_today": r["overage_today"],
        "overage_month": r["overage_month"],
        "overage_bytes_month": r["overage_bytes_month"],
        "bounce_count": r["bounce_count"],
        "complaint_count": r["complaint_count"],
        "bounce_rate": _rate(r["bounce_count"], r["sent_month"]),
        "complaint_rate": _rate(r["complaint_count"], r["sent_month"]),
        # the guillotine's thresholds (GUILLOTINE_*_RATE), shown beside the rates
        "bounce_rate_threshold": guillotine.bounce_rate,
        "complaint_rate_threshold": guillotine.complaint_rate,
        "provider": r["provider"],
        "ses_verified": r["verified"],
        "warmup_profile": r["warmup_profile"],
        "warmup_day": r["warmup_day"],
        "warmup_daily_cap": engine.warmup_cap(st, r["warmup_day"], settings),
        "hourly_limit": engine.hourly_cap(st, settings),
        "spike_max_multiplier": float(r["spike_max_multiplier"]),
        "daily_average_7d": round(st.history_avg, 2),
        "spike_daily_cap": engine.spike_cap(st, settings),
        "transfer_monthly_mb": r["transfer_monthly_mb"],
    }


@endpoint(bp, "/domains/<name>/outbound", "GET", role="either",
          summary="Outbound settings and counters of a domain")
def get_outbound(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name))
    return outbound_json(cur, row["name"])


@endpoint(bp, "/domains/<name>/outbound", "PUT", role="either", body=OutboundUpdate,
          summary="Change outbound settings (tier, enforcement, status, warm-up, spike, provider: master only)")
def put_outbound(cur, caller, name, body):
    """A client may change its daily and monthly limits only downwards from
    the operator's values (`outbound_daily_ceiling`, `outbound_monthly_ceiling`),
    and back up to them: 403 `limit_above_ceiling` above. 0 means unlimited,
    so a client asking for 0 under a ceiling asks for more."""
    if not body:
        raise ApiError(400, "at least one outbound field is required")
    if not caller.is_master and any(f in body for f in MASTER_FIELDS):
        raise ApiError(403, "Master token required")
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    sets, params = [], []
    for f, v in body.items():
        col = "provider_verified" if f == "ses_verified" else f
        sets.append(f"{col} = %s")
        params.append(v)
    for f, ceiling_col in LIMIT_CEILINGS.items():
        if f not in body:
            continue
        # The master's value is the new ceiling (NULL: the limit itself); a
        # client's keeps the ceiling it stays under.
        ceiling = None if caller.is_master else _client_limit_ceiling(cur, row["id"], f, ceiling_col, body[f])
        sets.append(f"{ceiling_col} = %s")
        params.append(ceiling)
    if "ses_verified" in body:
        sets.append("provider_verified_at = CASE WHEN %s THEN now() END")
        params.append(body["ses_verified"])
    if body.get("outbound_status") == "active" and "outbound_status_reason" not in body:
        sets.append("outbound_status_reason = NULL")
    cur.execute(f"UPDATE domains SET {', '.join(sets)}, updated_at = now() WHERE id = %s",
                params + [row["id"]])
    return outbound_json(cur, row["name"])


def _client_limit_ceiling(cur, domain_id, field, ceiling_col, value):
    """The ceiling a client's new limit must stay under (403 above it), to be
    stored with it: the operator's value, 0 = unlimited. A client asking for
    0 under a ceiling of N asks for more than N."""
    cur.execute(f"SELECT coalesce({ceiling_col}, {field}) AS ceiling FROM domains WHERE id = %s", (domain_id,))
    ceiling = cur.fetchone()["ceiling"]
    if ceiling and not 0 < value <= ceiling:
        asked = "0 (unlimited)" if value == 0 else str(value)
        raise ApiError(403, f"{field}: {asked} is above {ceiling}, the limit the operator set; "
                            f"a client may only lower it (1 to {ceiling})", code="limit_above_ceiling")
    return None if value == ceiling else ceiling


@endpoint(bp, "/domains/<name>/outbound/increment", "POST", role="master", body=Increment,
          summary="Atomic check-and-count of one message (the policy daemon's decision)")
def increment(cur, caller, name, body):
    """The same rules as the policy daemon at END-OF-MESSAGE, in the same
    code (policy/engine.py): domain rules, then the counters under lock.
    `allowed: false` counts nothing; soft enforcement over a cap answers
    `allowed: true` with a `reason`."""
    row = visible_domain(cur, caller, names.domain_name(name))
    cur.execute(engine.DOMAIN_STATE_SQL, (row["name"],))
    state = engine.DomainState.from_row(cur.fetchone())
    verdict = engine.domain_check(state)
    counters = None
    if verdict is None:
        msg = engine.Message(key="api:" + (body.get("message_id") or uuid.uuid4().hex), state=state,
                             units=body.get("count", 1), nbytes=body.get("bytes", 0))
        engine.decide_batch_sync(cur, [msg], engine.Settings.from_env())
        verdict, counters = msg.result, msg.counters
    if counters is None:
        cur.execute("SELECT sent_today, sent_month FROM outbound_counters WHERE domain_id = %s", (row["id"],))
        counters = cur.fetchone()
    return {"name": row["name"], "outbound_sent_today": counters["sent_today"],
            "outbound_sent_month": counters["sent_month"], "allowed": verdict.allowed,
            "reason": verdict.reason}


def _last_closed(cur, kind, before):
    """The last period closed by a reset of `kind` that lies before `before`
    (periods named wrongly in the future before this rule existed are ignored)."""
    cur.execute("SELECT max(period) AS last FROM outbound_resets WHERE kind = %s AND period < %s",
                (kind, before))
    return cur.fetchone()["last"]


def _parse_month(value, default, field="month"):
    if value is None:
        return default
    try:
        y, m = value.split("-")
        return dt.date(int(y), int(m), 1)
    except ValueError:
        raise ApiError(400, f"{field}: expected YYYY-MM") from None


def _utc_today():
    return dt.datetime.now(dt.UTC).date()


@endpoint(bp, "/outbound/reset-daily", "POST", role="master", body=ResetDaily,
          summary="Close a day: store every domain's count in the history, then reset")
def reset_daily(cur, caller, body):
    """Idempotent per `day`: a second call for the same day changes nothing.
    The day must be over (UTC) and after the last closed one: 400
    `period_not_closed` / `period_not_next` (see periods.py).
    The history's last 7 rows feed spike detection; each closed day moves
    warm-up one step."""
    today = _utc_today()
    day = periods.parse_day(body["day"]) if "day" in body else periods.default_day(today)
    periods.check_day_closed(day, today)
    cur.execute("LOCK TABLE outbound_resets IN SHARE ROW EXCLUSIVE MODE")
    cur.execute("SELECT domains, done_at FROM outbound_resets WHERE kind = 'daily' AND period = %s", (day,))
    done = cur.fetchone()
    if done:
        return {"day": day.isoformat(), "domains": done["domains"], "already_done": True,
                "done_at": done["done_at"].isoformat()}
    periods.check_day_order(day, _last_closed(cur, "daily", today))
    # Lock every counters row (the daemons' batches wait a moment), copy, reset.
    cur.execute("SELECT domain_id FROM outbound_counters ORDER BY domain_id FOR UPDATE")
    # The day's bytes, bounces and complaints: what the month's counters
    # gained since the last close (migration 0015; never negative when a
    # month was frozen before its last day was closed).
    cur.execute("INSERT INTO outbound_history (domain_id, day, sent, bytes, overage, bounces, complaints) "
                "SELECT domain_id, %s, sent_today, greatest(0, bytes_month - bytes_month_closed), overage_today, "
                " greatest(0, bounce_count - bounce_count_closed), "
                " greatest(0, complaint_count - complaint_count_closed) FROM outbound_counters "
                "ON CONFLICT (domain_id, day) DO NOTHING", (day,))
    cur.execute("UPDATE outbound_counters SET sent_today = 0, overage_today = 0, "
                "spike_warnings_today = 0, warmup_day = warmup_day + 1, bytes_month_closed = bytes_month, "
                "bounce_count_closed = bounce_count, complaint_count_closed = complaint_count, updated_at = now()")
    n = cur.rowcount
    cur.execute("DELETE FROM outbound_messages WHERE counted_at < now() - interval '3 days'")
    cur.execute("INSERT INTO outbound_resets (kind, period, domains) VALUES ('daily', %s, %s)", (day, n))
    cur.execute("NOTIFY emboux_policy, '*'")
    return {"day": day.isoformat(), "domains": n, "already_done": False}


@endpoint(bp, "/outbound/reset-monthly", "POST", role="master", body=ResetMonthly,
          summary="Freeze a month's counters into billing records, then reset")
def reset_monthly(cur, caller, body):
    """Idempotent per `month`: a second call for the same month changes nothing.
    The month must be over and the one after the last frozen month: 400
    `period_not_closed` / `period_not_next`. Without `month`: the month after
    the last frozen one while it is over, else last month (see periods.py)."""
    today = _utc_today()
    cur.execute("LOCK TABLE outbound_resets IN SHARE ROW EXCLUSIVE MODE")
    last = _last_closed(cur, "monthly", periods.month_start(today))
    if "month" in body:
        month = periods.parse_month(body["month"])
        periods.check_month_closed(month, today)
    else:
        month = periods.default_month(last, today)
    cur.execute("SELECT domains, done_at FROM outbound_resets WHERE kind = 'monthly' AND period = %s",
                (month,))
    done = cur.fetchone()
    if done:
        return {"month": month.strftime("%Y-%m"), "domains": done["domains"], "already_done": True,
                "done_at": done["done_at"].isoformat()}
    periods.check_month_order(month, last)
    # Storage is measured before the counters are locked (one doveadm pass
    # over every mailbox: seconds on a big platform, and the policy daemon
    # must keep counting meanwhile). None: not measured (no mail server here,
    # or doveadm failed): the rows say so (NULL), never a wrong 0.
    storage = stores.storage_by_domain()
    cur.execute("SELECT domain_id FROM outbound_counters ORDER BY domain_id FOR UPDATE")
    cur.execute(
        "INSERT INTO outbound_billing (domain_id, domain_name, partner_ref, month, sent, bytes, overage, "
        " overage_bytes, bounce_count, complaint_count, monthly_limit, enforcement, mailboxes, storage_bytes) "
        "SELECT d.id, d.name, d.partner_ref, %(month)s, c.sent_month, c.bytes_month, c.overage_month, "
        " c.overage_bytes_month, c.bounce_count, c.complaint_count, d.outbound_monthly_limit, "
        " d.outbound_enforcement, mb.n, "
        # a domain with mailboxes Dovecot did not report (suspended: not served) is not measured
        " CASE WHEN %(storage)s::jsonb IS NULL THEN NULL WHEN mb.n = 0 THEN 0 "
        "      ELSE (%(storage)s::jsonb ->> d.name)::bigint END "
        "FROM outbound_counters c JOIN domains d ON d.id = c.domain_id "
        "CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM mailboxes m WHERE m.domain_id = d.id) mb "
        "ON CONFLICT (domain_name, month) DO NOTHING",
        {"month": month, "storage": None if storage is None else json.dumps(storage)})
    cur.execute("UPDATE outbound_counters SET sent_month = 0, bytes_month = 0, overage_month = 0, "
                "overage_bytes_month = 0, bounce_count = 0, complaint_count = 0, spam_count = 0, "
                "bytes_month_closed = 0, "
                "bounce_count_closed = 0, complaint_count_closed = 0, updated_at = now()")
    n = cur.rowcount
    cur.execute("INSERT INTO outbound_resets (kind, period, domains) VALUES ('monthly', %s, %s)", (month, n))
    cur.execute("NOTIFY emboux_policy, '*'")
    return {"month": month.strftime("%Y-%m"), "domains": n, "already_done": False}


@endpoint(bp, "/outbound/billing", "GET", role="master", query=MonthQuery,
          summary="Frozen monthly counters per domain (written by reset-monthly); with ?month=, whether it is frozen")
def billing(cur, caller, query):
    month = _parse_month(query.get("month"), None)
    sql = ("SELECT domain_name, partner_ref, month, sent, bytes, overage, overage_bytes, bounce_count, "
           "complaint_count, monthly_limit, enforcement, mailboxes, storage_bytes, frozen_at FROM outbound_billing")
    params = []
    if month:
        sql += " WHERE month = %s"
        params.append(month)
    cur.execute(sql + " ORDER BY month, domain_name", params)
    out = []
    for r in cur.fetchall():
        r = dict(r)
        r["month"] = r["month"].strftime("%Y-%m")
        r["frozen_at"] = r["frozen_at"].isoformat()
        out.append(r)
    result = {"entries": out, "count": len(out)}
    if month:
        # A month is closed for billing once reset-monthly froze it, even when
        # no domain had counters (no entries): a biller must not guess it
        # from an empty list.
        cur.execute("SELECT 1 FROM outbound_resets WHERE kind = 'monthly' AND period = %s", (month,))
        result["frozen"] = cur.fetchone() is not None
    return result


@endpoint(bp, "/suppression/check/<email>", "GET", role="either",
          summary="Is an address on the suppression list (and why: master only)")
def suppression_check(cur, caller, email):
    """The list is global: a client learns whether its mail to the address
    would be refused, never why. A reason (bounce, complaint) says what
    happened to another tenant's mail, so `reasons` is always empty for a
    client token; the master sees them."""
    email = email.strip().lower()
    if email.count("@") != 1 or len(email) > 320:
        raise ApiError(400, f"email: invalid email address {email!r}")
    local, _, domain = email.partition("@")
    email = f"{local}@{names.domain_name(domain, 'email')}"
    cur.execute(engine.SUPPRESSION_SQL, (email,))
    reasons = [r["reason"] for r in cur.fetchall()]
    return {"email": email, "suppressed": bool(reasons), "reasons": reasons if caller.is_master else []}
