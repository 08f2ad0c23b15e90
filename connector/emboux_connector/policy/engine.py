"""The outbound decision: one implementation for the policy daemon and the API.

Pure functions over plain data. The callers (policy/daemon.py with asyncpg,
api/outbound.py with psycopg2) only run the SQL below and hand the rows in:

* the domain-level rules (suspension, provider verification), the mailbox
  rule (submission disabled) and the recipient rule (suppression) need only
  cached settings and are answered from memory;
* the counting rules (hourly throttle, daily / warm-up / monthly / transfer
  caps, spike) are decided inside one transaction that holds the domain's
  counters row locked (`SELECT ... FOR UPDATE`), so any number of daemon
  processes on any number of hosts never exceed a cap, not by one message.
  `decide_batch` decides a whole batch of messages against one lock.
"""

import math
import re
from dataclasses import dataclass, field

from .. import settings as registry

PROFILES = {"fast": 1.8, "standard": 1.1, "conservative": 1.05}
MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    hourly_fraction: float = 0.167     # HOURLY_FRACTION: hourly cap = daily limit x this
    hourly_floor: int = 10             # never below 10 per hour
    warmup_start: int = 50             # WARMUP_START: day-0 cap of a new domain
    spike_min: int = 50                # SPIKE_MIN: spike detection ignores days below this
    db_down_action: str = registry.REGISTRY["POLICYD_DB_DOWN_ACTION"].default

    @classmethod
    def from_env(cls, env=None):
        return cls(
            hourly_fraction=registry.number("HOURLY_FRACTION", env),
            hourly_floor=registry.number("HOURLY_FLOOR", env),
            warmup_start=registry.number("WARMUP_START", env),
            spike_min=registry.number("SPIKE_MIN", env),
            db_down_action=registry.get("POLICYD_DB_DOWN_ACTION", env),
        )


@dataclass(frozen=True)
class DomainState:
    """A domain's outbound settings, as cached by the daemon."""
    id: int
    name: str
    status: str
    outbound_status: str
    outbound_status_reason: str
    provider: str
    verified: bool                 # with its provider, or its parent is
    daily_limit: int
    monthly_limit: int
    enforcement: str
    warmup_profile: str
    spike_multiplier: float
    history_days: int
    history_avg: float
    transfer_monthly_mb: int

    @classmethod
    def from_row(cls, r):
        return cls(id=r["id"], name=r["name"], status=r["status"],
                   outbound_status=r["outbound_status"],
                   outbound_status_reason=r["outbound_status_reason"] or "",
                   provider=r["provider"], verified=bool(r["verified"]),
                   daily_limit=r["outbound_daily_limit"], monthly_limit=r["outbound_monthly_limit"],
                   enforcement=r["outbound_enforcement"], warmup_profile=r["warmup_profile"],
                   spike_multiplier=float(r["spike_max_multiplier"]),
                   history_days=int(r["history_days"]), history_avg=float(r["history_avg"]),
                   transfer_monthly_mb=r["transfer_monthly_mb"])


# One query per domain: its settings, the parent's verification, and the
# average of its last 7 history rows (an index range scan: flat cost however
# long the history grows).
DOMAIN_STATE_SQL = """
SELECT d.id, d.name, d.status, d.outbound_status, d.outbound_status_reason, d.provider,
       (d.provider = 'local' OR d.provider_verified
        OR coalesce(p.provider = 'local' OR p.provider_verified, false)) AS verified,
       d.outbound_daily_limit, d.outbound_monthly_limit, d.outbound_enforcement,
       d.warmup_profile, d.spike_max_multiplier, d.transfer_monthly_mb,
       h.days AS history_days, h.avg AS history_avg
FROM domains d
LEFT JOIN domains p ON p.id = d.parent_id
CROSS JOIN LATERAL (
    SELECT count(*) AS days, coalesce(avg(x.sent), 0)::float8 AS avg
    FROM (SELECT sent FROM outbound_history WHERE domain_id = d.id ORDER BY day DESC LIMIT 7) x
) h
WHERE d.name = %s
"""
# The daemon's lookup of a sender's (or login's) domain: one whose ownership
# is pending is not hosted here (migration 0007), so a squatter's settings
# never apply to the senders of a name it has not proved.
HOSTED_DOMAIN_STATE_SQL = DOMAIN_STATE_SQL.rstrip() + " AND d.ownership <> 'pending'\n"

MAILBOX_SQL = "SELECT email, active, submission_disabled FROM mailboxes WHERE email = %s"
SUPPRESSION_SQL = "SELECT reason FROM suppression WHERE email = %s ORDER BY reason"
ALL_SUPPRESSION_SQL = "SELECT email, reason FROM suppression"

# The counting transaction: lock the counters rows (in id order: two batches
# can never deadlock), see which messages were counted already, decide, apply.
COUNTERS_LOCK_SQL = """
SELECT domain_id, sent_today, sent_month, bytes_month, warmup_day, reserved_units, reserved_bytes,
       CASE WHEN hour_start = date_trunc('hour', now()) THEN sent_hour ELSE 0 END AS sent_hour
FROM outbound_counters WHERE domain_id = ANY(%s) ORDER BY domain_id FOR UPDATE
"""
# outbound_messages keeps a message key as its 64-bit hash (MSG_KEY): half the
# DB's work per message of the text key (migration 0006). The queries take and
# give back the keys themselves.
MSG_KEY = "hashtextextended({}, 0)"
SEEN_SQL = f"""
SELECT k AS msg_key FROM unnest(%s::text[]) AS k
WHERE EXISTS (SELECT 1 FROM outbound_messages m WHERE m.msg_key = {MSG_KEY.format("k")})
"""
# Both in one round trip (the daemon's path): the rows, each carrying the
# keys already counted among the batch's.
LOCK_AND_SEEN_SQL = f"""
WITH c AS ({COUNTERS_LOCK_SQL})
SELECT c.*, (SELECT array_agg(k) FROM unnest(%s::text[]) AS k WHERE EXISTS
             (SELECT 1 FROM outbound_messages m WHERE m.msg_key = {MSG_KEY.format("k")})) AS seen FROM c
"""
APPLY_SQL = f"""
WITH ins AS (
    INSERT INTO outbound_messages (msg_key, domain_id, units, bytes)
    SELECT {MSG_KEY.format("k")}, d, u, b
    FROM unnest(%s::text[], %s::bigint[], %s::int[], %s::bigint[]) AS x(k, d, u, b)
    ON CONFLICT DO NOTHING
)
UPDATE outbound_counters c SET
    sent_today = c.sent_today + u.units,
    sent_month = c.sent_month + u.units,
    bytes_month = c.bytes_month + u.bytes,
    overage_today = c.overage_today + u.over,
    overage_month = c.overage_month + u.over,
    overage_bytes_month = c.overage_bytes_month + u.over_bytes,
    spike_warnings_today = c.spike_warnings_today + u.warn,
    sent_hour = CASE WHEN c.hour_start = date_trunc('hour', now()) THEN c.sent_hour ELSE 0 END + u.units,
    hour_start = date_trunc('hour', now()),
    updated_at = now()
FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::int[], %s::bigint[], %s::int[])
     AS u(domain_id, units, bytes, over, over_bytes, warn)
WHERE c.domain_id = u.domain_id
"""


# --- leases (the daemon's path for hard enforcement) ---------------------------------
GRANT_SQL = """
WITH g AS (SELECT * FROM unnest(%s::bigint[], %s::int[], %s::bigint[]) AS g(domain_id, units, bytes)),
up AS (
    UPDATE outbound_counters c SET reserved_units = c.reserved_units + g.units,
                                   reserved_bytes = c.reserved_bytes + g.bytes
    FROM g WHERE c.domain_id = g.domain_id
)
INSERT INTO outbound_leases (domain_id, holder, units, bytes, expires_at)
SELECT domain_id, %s, units, bytes, now() + make_interval(secs => %s) FROM g
ON CONFLICT (domain_id, holder) DO UPDATE SET
    units = outbound_leases.units + EXCLUDED.units,
    bytes = outbound_leases.bytes + EXCLUDED.bytes,
    expires_at = EXCLUDED.expires_at
"""

LOCK_ROWS_SQL = "SELECT domain_id FROM outbound_counters WHERE domain_id = ANY(%s) ORDER BY domain_id FOR UPDATE"

# Confirm the messages served from leases (counted once per key) and give
# back what leaves the leases (consumed or returned unused). A lease the
# sweeper already took (its units were counted as sent) is left alone.
# The messages come as one text, a line "key<TAB>domain id<TAB>units<TAB>bytes"
# each: the DB splits it; encoding a thousand-element array per column took
# the daemon's event loop milliseconds.
_LINE_KEY = MSG_KEY.format("split_part(l, E'\\t', 1)")
CONFIRM_SQL = f"""
WITH m AS (
    SELECT {_LINE_KEY}, split_part(l, E'\t', 2)::bigint,
           split_part(l, E'\t', 3)::int, split_part(l, E'\t', 4)::bigint
    FROM unnest(string_to_array(%s, E'\n')) AS l WHERE l <> ''
),
ins AS (
    INSERT INTO outbound_messages (msg_key, domain_id, units, bytes)
    SELECT * FROM m
    ON CONFLICT DO NOTHING
    RETURNING domain_id, units, bytes
),
counted AS (SELECT domain_id, sum(units)::int AS u, sum(bytes)::bigint AS b FROM ins GROUP BY domain_id),
f AS (SELECT * FROM unnest(%s::bigint[], %s::int[], %s::bigint[]) AS f(domain_id, units, bytes)),
l AS (
    UPDATE outbound_leases l SET units = l.units - f.units, bytes = l.bytes - f.bytes,
                                 expires_at = now() + make_interval(secs => %s)
    FROM f WHERE l.domain_id = f.domain_id AND l.holder = %s
    RETURNING l.domain_id
)
UPDATE outbound_counters c SET
    reserved_units = greatest(0, c.reserved_units - f.units),
    reserved_bytes = greatest(0, c.reserved_bytes - f.bytes),
    sent_today = c.sent_today + coalesce(k.u, 0),
    sent_month = c.sent_month + coalesce(k.u, 0),
    bytes_month = c.bytes_month + coalesce(k.b, 0),
    sent_hour = CASE WHEN c.hour_start = date_trunc('hour', now()) THEN c.sent_hour ELSE 0 END + coalesce(k.u, 0),
    hour_start = date_trunc('hour', now()),
    updated_at = now()
FROM f JOIN l ON l.domain_id = f.domain_id LEFT JOIN counted k ON k.domain_id = f.domain_id
WHERE c.domain_id = f.domain_id
"""

# Leases whose daemon stopped renewing them: their units count as sent (they
# may have been used), the reservation goes.
SWEEP_LOCK_SQL = """
SELECT domain_id FROM outbound_counters WHERE domain_id IN
    (SELECT domain_id FROM outbound_leases WHERE expires_at < now())
ORDER BY domain_id FOR UPDATE
"""
SWEEP_SQL = """
WITH x AS (DELETE FROM outbound_leases WHERE expires_at < now() RETURNING domain_id, units, bytes),
s AS (SELECT domain_id, sum(units)::int AS u, sum(bytes)::bigint AS b FROM x GROUP BY domain_id)
UPDATE outbound_counters c SET
    reserved_units = greatest(0, c.reserved_units - s.u),
    reserved_bytes = greatest(0, c.reserved_bytes - s.b),
    sent_today = c.sent_today + s.u, sent_month = c.sent_month + s.u,
    bytes_month = c.bytes_month + s.b, updated_at = now()
FROM s WHERE c.domain_id = s.domain_id
"""


def dollar(sql):
    """%s placeholders -> $1, $2, ... (asyncpg)."""
    n = iter(range(1, 1000))
    return re.sub(r"%s", lambda m: f"${next(n)}", sql)


# --- verdicts -------------------------------------------------------------------
@dataclass
class Verdict:
    allowed: bool
    action: str = "DUNNO"           # what the daemon answers Postfix
    reason: str = None              # short, for the sender and the API
    counted: bool = False
    overage: int = 0
    warn: bool = False
    kind: str = None                # which rule decided (for hints and logs)


OK = Verdict(True)


def refuse(code, reason, kind):
    return Verdict(False, f"{code} {reason}", reason, kind=kind)


def domain_check(state):
    """Rules that need only the domain's settings: None when they pass."""
    if state.status == "suspended":
        return refuse("554 5.7.1", f"Domain {state.name} is suspended", "suspended")
    if state.outbound_status == "suspended":
        why = f": {state.outbound_status_reason}" if state.outbound_status_reason else ""
        return refuse("554 5.7.1", f"Outbound mail for {state.name} is suspended{why}", "outbound_suspended")
    if not state.verified:
        return refuse("554 5.7.1", f"Sending domain {state.name} is not verified with its provider "
                                   f"({state.provider})", "unverified")
    return None


def mailbox_check(email, submission_disabled):
    if submission_disabled:
        return refuse("554 5.7.1", f"Sending is disabled for {email}", "submission_disabled")
    return None


def recipient_check(recipient, reasons):
    # The list is global: the reason (bounce, complaint) tells what happened
    # to another tenant's mail, so the sender is not told it (master only).
    if reasons:
        return refuse("550 5.1.1", f"Recipient {recipient} is on the suppression list; not sent",
                      "suppressed")
    return None


# --- caps -----------------------------------------------------------------------
def warmup_cap(state, warmup_day, settings):
    """The warm-up day cap, or None when warm-up is off or finished."""
    factor = PROFILES.get(state.warmup_profile)
    if factor is None:
        return None
    day = max(warmup_day, 0)
    cap = math.ceil(round(settings.warmup_start * factor ** day, 6)) if day < 300 else 10**12
    if state.daily_limit and cap >= state.daily_limit:
        return None                     # reached the plan: warm-up is over
    return min(cap, 10**12)


def hourly_cap(state, settings):
    if not state.daily_limit:
        return None
    return max(settings.hourly_floor, round(state.daily_limit * settings.hourly_fraction))


def spike_cap(state, settings):
    if state.spike_multiplier <= 0 or state.history_days == 0:
        return None
    return max(settings.spike_min, math.floor(state.spike_multiplier * state.history_avg))


def unit_caps(state, c, settings):
    """The per-recipient caps of a domain: [(kind, used, cap, code, text)],
    `used` counting the units leased to daemons (reserved) as spent."""
    r = c.get("reserved_units", 0)
    name, out = state.name, []
    hcap = hourly_cap(state, settings)
    if hcap is not None:
        # a rate, not a quota: the sender retries later, soft or hard
        used = c["sent_hour"] + r
        out.append(("hourly", used, hcap, "451 4.7.1", f"Hourly sending limit reached for {name} "
                                                       f"({min(used, hcap)}/{hcap} this hour), try again later"))
    used = c["sent_today"] + r
    wcap = warmup_cap(state, c["warmup_day"], settings)
    if wcap is not None:
        out.append(("warmup", used, wcap, "554 5.7.1",
                    f"Warm-up limit reached for {name} ({min(used, wcap)}/{wcap} today, "
                    f"day {c['warmup_day']} of {state.warmup_profile} warm-up)"))
    elif state.daily_limit:
        out.append(("daily", used, state.daily_limit, "554 5.7.1",
                    f"Daily sending limit reached for {name} ({min(used, state.daily_limit)}/{state.daily_limit})"))
    if state.monthly_limit:
        used_m = c["sent_month"] + r
        out.append(("monthly", used_m, state.monthly_limit, "554 5.7.1",
                    f"Monthly sending limit reached for {name} "
                    f"({min(used_m, state.monthly_limit)}/{state.monthly_limit})"))
    scap = spike_cap(state, settings)
    if scap is not None:
        out.append(("spike", used, scap, "554 5.7.1",
                    f"Sending spike blocked for {name}: today's volume would exceed "
                    f"{state.spike_multiplier:g}x the 7-day average ({state.history_avg:.1f}/day)"))
    return out


def byte_cap(state, c):
    """(used, cap, code, text) of the monthly transfer cap, or None."""
    if not state.transfer_monthly_mb:
        return None
    return (c["bytes_month"] + c.get("reserved_bytes", 0), state.transfer_monthly_mb * MB, "554 5.7.1",
            f"Monthly transfer limit reached for {state.name} ({state.transfer_monthly_mb} MB)")


def count_check(state, c, units, nbytes, settings):
    """Decide one message of `units` recipients and `nbytes` against the
    locked counters `c` (a dict: sent_today, sent_month, bytes_month,
    sent_hour, warmup_day[, reserved_units, reserved_bytes]). On acceptance
    `c` is advanced and (Verdict, overage bytes) returned; a refusal is a
    Verdict."""
    soft = state.enforcement == "soft"
    notes, overage, over_bytes, warn = [], 0, 0, False
    for kind, used, cap, code, text in unit_caps(state, c, settings):
        if used + units <= cap:
            continue
        if kind == "hourly" or not soft:
            return refuse(code, text, kind)
        if kind == "spike":
            warn = True
            notes.append("sending spike (warning)")
        else:
            overage = max(overage, min(units, used + units - cap))
            notes.append(f"{kind} limit exceeded, counted as overage")
    bc = byte_cap(state, c)
    if bc is not None and bc[0] + nbytes > bc[1]:
        if not soft:
            return refuse(bc[2], bc[3], "transfer")
        over_bytes = min(nbytes, bc[0] + nbytes - bc[1])
        notes.append("transfer limit exceeded, counted as overage")
    c["sent_today"] += units
    c["sent_month"] += units
    c["sent_hour"] += units
    c["bytes_month"] += nbytes
    reason = "; ".join(notes) or None
    return Verdict(True, "DUNNO", reason, counted=True, overage=overage, warn=warn,
                   kind="soft" if notes else None), over_bytes


LEASE_CHUNK = 256                 # most units one lease grant takes
LEASE_CHUNK_BYTES = 64 * MB


def lease_grant(state, c, need_units, need_bytes, settings, contended=False):
    """How much a daemon may reserve (hard enforcement): (units, bytes,
    None), at least the need, up to an eighth of what is left (so the chunks
    shrink to 1 near a cap and several daemons share the rest), or
    (0, 0, refusal) when the need does not fit. `c` is advanced."""
    left = None
    for kind, used, cap, code, text in unit_caps(state, c, settings):
        if used + need_units > cap:
            return 0, 0, refuse(code, text, kind)
        left = cap - used if left is None else min(left, cap - used)
    units = need_units if contended else (
        max(need_units, LEASE_CHUNK) if left is None else min(left, max(need_units, min(LEASE_CHUNK, left // 8))))
    nbytes = 0
    bc = byte_cap(state, c)
    if bc is not None:
        bleft = bc[1] - bc[0]
        if need_bytes > bleft:
            return 0, 0, refuse(bc[2], bc[3], "transfer")
        nbytes = need_bytes if contended else min(bleft, max(need_bytes, min(LEASE_CHUNK_BYTES, bleft // 8)))
    c["reserved_units"] = c.get("reserved_units", 0) + units
    c["reserved_bytes"] = c.get("reserved_bytes", 0) + nbytes
    return units, nbytes, None


@dataclass
class Message:
    key: str
    state: DomainState
    units: int = 1
    nbytes: int = 0
    result: Verdict = None
    over_bytes: int = 0
    retries: int = 0
    counters: dict = field(default=None, repr=False)


def decide_batch(messages, counter_rows, seen_keys, settings):
    """Decide messages in order against the locked counters rows. Returns the
    parameters of APPLY_SQL (or None when nothing is counted). Each message
    gets .result and .counters (a snapshot after its own decision)."""
    counters = {r["domain_id"]: dict(r) for r in counter_rows}
    seen = set(seen_keys)
    ins = ([], [], [], [])
    agg = {}
    for m in messages:
        c = counters.get(m.state.id)
        if c is None:                       # domain deleted meanwhile
            m.result = refuse("554 5.7.1", f"Domain {m.state.name} is not hosted here", "unknown")
            continue
        if m.key in seen:                   # a repeated request: counted once
            m.result, m.counters = Verdict(True, "DUNNO", "already counted", kind="duplicate"), dict(c)
            continue
        out = count_check(m.state, c, m.units, m.nbytes, settings)
        if isinstance(out, Verdict):
            m.result, m.counters = out, dict(c)
            continue
        m.result, m.over_bytes = out
        m.counters = dict(c)
        seen.add(m.key)
        for lst, val in zip(ins, (m.key, m.state.id, m.units, m.nbytes), strict=True):
            lst.append(val)
        a = agg.setdefault(m.state.id, [0, 0, 0, 0, 0])
        a[0] += m.units
        a[1] += m.nbytes
        a[2] += m.result.overage
        a[3] += m.over_bytes
        a[4] += 1 if m.result.warn else 0
    if not agg:
        return None
    ids = sorted(agg)
    cols = list(zip(*(agg[i] for i in ids), strict=True))
    return (list(ins[0]), list(ins[1]), list(ins[2]), list(ins[3]),
            ids, list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]))


def decide_batch_sync(cur, messages, settings):
    """The counting transaction with a psycopg2 cursor (the API's path)."""
    ids = sorted({m.state.id for m in messages})
    cur.execute(COUNTERS_LOCK_SQL, (ids,))
    rows = cur.fetchall()
    cur.execute(SEEN_SQL, ([m.key for m in messages],))
    seen = [r["msg_key"] for r in cur.fetchall()]
    params = decide_batch(messages, rows, seen, settings)
    if params is not None:
        cur.execute(APPLY_SQL, params)
    return messages
