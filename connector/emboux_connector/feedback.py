"""The one routine every provider's feedback goes through (Mailgun webhook,
SES/SNS webhook): suppression entries, per-domain counters and rates, and
the guillotine.

* permanent failure -> suppression (reason 'bounce') + bounce_count
* complaint         -> suppression (reason 'complaint') + complaint_count
* temporary failure -> temp_fail_count only (never suppressed)

An event is applied once: (provider, event id) is recorded in
feedback_events, a redelivery changes nothing.

Guillotine: once the domain has sent at least GUILLOTINE_MIN_VOLUME messages
this month (default 100), a bounce rate above GUILLOTINE_BOUNCE_RATE percent
(default 0.5) or a complaint rate above GUILLOTINE_COMPLAINT_RATE percent
(default 0.1) suspends the domain's outbound (outbound_status = 'suspended')
with the reason recorded in outbound_status_reason.

Spam refused on submission (Rspamd, docs/inbound.md) feeds the same
guillotine: GUILLOTINE_SPAM_LIMIT messages of a domain's authenticated users
refused as spam this month (default 5) suspend its outbound too, whatever
the volume -- a hacked account is stopped by content, not only by rates.
One decision (guillotine_reason) and one act (suspend_outbound) for every
trigger.
"""

import logging
import re
from dataclasses import dataclass

from . import settings

log = logging.getLogger(__name__)

KINDS = ("bounce", "complaint", "temporary")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[a-z0-9.-]{1,253}$")


def _float(key):
    return float(settings.lenient(key))


@dataclass(frozen=True)
class Thresholds:
    bounce_rate: float = 0.5
    complaint_rate: float = 0.1
    min_volume: int = 100
    spam_limit: int = 5

    @classmethod
    def from_env(cls):
        return cls(bounce_rate=_float("GUILLOTINE_BOUNCE_RATE"),
                   complaint_rate=_float("GUILLOTINE_COMPLAINT_RATE"),
                   min_volume=int(_float("GUILLOTINE_MIN_VOLUME")),
                   spam_limit=int(_float("GUILLOTINE_SPAM_LIMIT")))


def normalise_email(value):
    """Lower-case address with an IDNA domain, or None when not an address."""
    if not isinstance(value, str):
        return None
    value = value.strip().strip("<>").lower()
    local, sep, domain = value.rpartition("@")
    if not sep or not local:
        return None
    try:
        import idna
        domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except Exception:
        return None
    email = f"{local}@{domain}"
    return email if _EMAIL.match(email) else None


def sender_domain(value):
    """The domain of a sender address ('Name <a@b.c>' accepted), or None."""
    if not isinstance(value, str):
        return None
    m = re.search(r"<([^>]+)>", value)
    email = normalise_email(m.group(1) if m else value)
    return email.rpartition("@")[2] if email else None


@dataclass
class Event:
    provider: str     # 'mailgun' / 'ses'
    event_id: str     # unique per provider event and recipient
    kind: str         # bounce / complaint / temporary
    email: str        # the recipient, normalised
    source: str       # the sending domain (ours), may be None


def find_domain(cur, name):
    """Our domain for a sender domain: itself, else its nearest hosted parent."""
    if not name:
        return None
    labels = name.split(".")
    candidates = [".".join(labels[i:]) for i in range(0, len(labels) - 1)]
    cur.execute("SELECT id, name FROM domains WHERE name = ANY(%s) ORDER BY length(name) DESC LIMIT 1",
                (candidates,))
    return cur.fetchone()


def apply(cur, events, thresholds=None):
    """Apply events in the caller's transaction. Returns a summary dict."""
    thresholds = thresholds or Thresholds.from_env()
    summary = {"processed": 0, "duplicates": 0, "suppressed": 0, "suspended": []}
    for ev in events:
        assert ev.kind in KINDS
        dom = find_domain(cur, ev.source)
        cur.execute("INSERT INTO feedback_events (provider, event_id, kind, email, domain) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                    (ev.provider, ev.event_id[:500], ev.kind, ev.email, dom["name"] if dom else ev.source))
        if cur.fetchone() is None:
            summary["duplicates"] += 1
            continue
        summary["processed"] += 1
        if ev.kind in ("bounce", "complaint"):
            cur.execute("INSERT INTO suppression (email, reason, source_domain, provider) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (email, reason) DO NOTHING RETURNING id",
                        (ev.email, ev.kind, dom["name"] if dom else ev.source, ev.provider))
            if cur.fetchone():
                summary["suppressed"] += 1
        if dom is None:
            continue
        col = {"bounce": "bounce_count", "complaint": "complaint_count",
               "temporary": "temp_fail_count"}[ev.kind]
        cur.execute(f"UPDATE outbound_counters SET {col} = {col} + 1, updated_at = now() "
                    f"WHERE domain_id = %s RETURNING {COUNTERS}",
                    (dom["id"],))
        counters = cur.fetchone()
        if counters and ev.kind != "temporary" and judge(cur, dom, counters, thresholds):
            summary["suspended"].append(dom["name"])
    return summary


COUNTERS = "sent_month, bounce_count, complaint_count, spam_count"


def judge(cur, dom, counters, thresholds):
    """The guillotine's one decision for a domain (row with id and name) after
    one of its counters moved: suspends its outbound when a limit is crossed.
    True when this call suspended it."""
    reason = guillotine_reason(counters, thresholds)
    return bool(reason) and suspend_outbound(cur, dom, reason)


def suspend_outbound(cur, dom, reason):
    """Suspend the domain's outbound with the reason (shown to its senders and
    in GET /domains/{name}/outbound); False when it already was."""
    cur.execute("UPDATE domains SET outbound_status = 'suspended', outbound_status_reason = %s, "
                "updated_at = now() WHERE id = %s AND outbound_status <> 'suspended' "
                "RETURNING name", (reason, dom["id"]))
    if cur.fetchone() is None:
        return False
    log.warning("guillotine: outbound of %s suspended: %s", dom["name"], reason)
    return True


def record_outbound_spam(cur, dom, thresholds=None):
    """A message of the domain's authenticated user refused as spam (Rspamd on
    submission): counted, then judged. Returns (spam_count, suspended now)."""
    thresholds = thresholds or Thresholds.from_env()
    cur.execute("INSERT INTO outbound_counters (domain_id) VALUES (%s) ON CONFLICT DO NOTHING", (dom["id"],))
    cur.execute("UPDATE outbound_counters SET spam_count = spam_count + 1, updated_at = now() "
                f"WHERE domain_id = %s RETURNING {COUNTERS}", (dom["id"],))
    counters = cur.fetchone()
    return counters["spam_count"], judge(cur, dom, counters, thresholds)


def rate(n, sent):
    return 100.0 * n / sent if sent else 0.0


def guillotine_reason(c, t):
    spam = c.get("spam_count") or 0
    if t.spam_limit and spam >= t.spam_limit:
        return (f"guillotine: {spam} messages refused as spam this month "
                f"(limit {t.spam_limit}): an account of the domain is probably compromised")
    sent = c["sent_month"]
    if sent < t.min_volume:
        return None
    br, cr = rate(c["bounce_count"], sent), rate(c["complaint_count"], sent)
    if br > t.bounce_rate:
        return (f"guillotine: bounce rate {br:.2f}% above {t.bounce_rate}% "
                f"({c['bounce_count']} bounces / {sent} sent this month)")
    if cr > t.complaint_rate:
        return (f"guillotine: complaint rate {cr:.2f}% above {t.complaint_rate}% "
                f"({c['complaint_count']} complaints / {sent} sent this month)")
    return None
