"""A domain's inbound spam settings (issue 17, docs/inbound.md) and the
map of them that Rspamd reads.

Rspamd (the milter of port 25 and submission) reads the map over HTTP from
the connector (GET /mailserver/rspamd/settings) every few seconds; EmBoux's
own Lua (docker/rspamd/rspamd.local.lua) keeps it as a table keyed by domain
and applies, per message, with one lookup per recipient domain:

  authenticated   the outbound settings (submission: refused at the default
                  reject threshold, never Junk, never greylisted)
  block           sender (envelope or From: header) on the block list of a
                  recipient's domain: EMBOUX_BLOCKLISTED scores BLOCK_SCORE,
                  far above any reject threshold -> 5xx at SMTP
  allow           envelope sender on the allow list: EMBOUX_ALLOWLISTED scores
                  ALLOW_SCORE (a forged p=reject sender is still refused:
                  DMARC forces its action whatever the score)
  domain          the domain's thresholds: Junk (Rspamd's "add header") and
                  reject; greylisting off unless enabled

It used to be a map of Rspamd's settings module, one to four rules a domain,
which that module tries one by one on every message: a 4 KB scan cost 8-9 ms
of CPU with 356 rules against 6 ms with the table (docs/benchmarks.md),
growing with every domain that has settings. The map's content and its
meaning are the same.

A domain without settings has Rspamd's thresholds (docker/rspamd/local.d/
actions.conf, the same as DEFAULTS) and no greylisting (rspamd.local.lua
greylists only where the map says `emboux_greylisting`).

A message to several domains is scanned once (milter): a block of any
recipient's domain wins, then an allow, then the first recipient's domain
that has settings applies to the whole message.
"""

import json
import math
import re

import idna

from .errors import ApiError

DEFAULTS = {"junk_score": 6.0, "reject_score": 15.0, "greylisting": False,
            "allow_senders": [], "block_senders": []}
SCORE_RANGE = (-100.0, 1000.0)
MAX_LIST = 1000
BLOCK_SCORE = 10000.0
ALLOW_SCORE = -20.0
# Where greylisting is on, Rspamd greylists a message whose score reaches
# this (its "greylist" action) or the Junk threshold, whichever is lower.
GREYLIST_SCORE = 4.0
# An outside sender's local part: anything an SMTP envelope carries unquoted,
# except '/' (an Rspamd settings condition starting with '/' is a regexp).
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+=?^_`{|}~.-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _bad(field, msg):
    raise ApiError(400, f"{field}: {msg}", code="invalid_field")


def _domain(value, field):
    try:
        name = idna.encode(value.rstrip("."), uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        _bad(field, f"invalid domain {value!r}")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        _bad(field, f"invalid domain {value!r}")
    return name


def sender_entry(value, field):
    """'user@example.com' or '@example.com' (a bare 'example.com' means the
    whole domain too), lower-case IDNA; else 400 naming the field."""
    if not isinstance(value, str) or not value.strip():
        _bad(field, "each entry must be an address or @domain")
    value = value.strip().lower()
    if len(value) > 254:
        _bad(field, f"entry too long ({len(value)} characters, at most 254)")
    local, at, dom = value.rpartition("@")
    if not at:
        return "@" + _domain(value, field)
    if local and not _LOCAL.fullmatch(local):
        _bad(field, f"invalid address {value!r}")
    return f"{local}@{_domain(dom, field)}"


def sender_list(items, field):
    if not isinstance(items, list):
        _bad(field, "must be a list of addresses or @domains")
    if len(items) > MAX_LIST:
        _bad(field, f"at most {MAX_LIST} entries")
    seen = []
    for item in items:
        entry = sender_entry(item, field)
        if entry not in seen:
            seen.append(entry)
    return seen


def score(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _bad(field, "must be a number")
    lo, hi = SCORE_RANGE
    if not lo <= value <= hi:
        _bad(field, f"must be between {lo:g} and {hi:g}")
    return round(float(value), 2)


def merge(current, body):
    """The new settings: current ones with the body's fields; validated as a
    whole (400 and nothing written on any fault)."""
    new = dict(current)
    for key in ("junk_score", "reject_score"):
        if key in body:
            new[key] = score(body[key], key)
    if "greylisting" in body:
        if not isinstance(body["greylisting"], bool):
            _bad("greylisting", "must be true or false")
        new["greylisting"] = body["greylisting"]
    for key in ("allow_senders", "block_senders"):
        if key in body:
            new[key] = sender_list(body[key], key)
    if new["junk_score"] >= new["reject_score"]:
        _bad("junk_score", f"must be below reject_score ({new['junk_score']:g} >= {new['reject_score']:g})")
    both = sorted(set(new["allow_senders"]) & set(new["block_senders"]))
    if both:
        _bad("allow_senders", f"{', '.join(both)} is on both lists")
    return new


def load(cur, domain_id):
    cur.execute("SELECT junk_score, reject_score, greylisting, allow_senders, block_senders "
                "FROM domain_spam_settings WHERE domain_id = %s", (domain_id,))
    row = cur.fetchone()
    if row is None:
        return dict(DEFAULTS)
    return {"junk_score": float(row["junk_score"]), "reject_score": float(row["reject_score"]),
            "greylisting": row["greylisting"], "allow_senders": list(row["allow_senders"]),
            "block_senders": list(row["block_senders"])}


def store(cur, domain_id, s):
    cur.execute(
        "INSERT INTO domain_spam_settings (domain_id, junk_score, reject_score, greylisting, "
        "allow_senders, block_senders) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (domain_id) DO UPDATE SET junk_score = EXCLUDED.junk_score, "
        "reject_score = EXCLUDED.reject_score, greylisting = EXCLUDED.greylisting, "
        "allow_senders = EXCLUDED.allow_senders, block_senders = EXCLUDED.block_senders, updated_at = now() "
        "WHERE (domain_spam_settings.junk_score, domain_spam_settings.reject_score, "
        "domain_spam_settings.greylisting, domain_spam_settings.allow_senders, "
        "domain_spam_settings.block_senders) IS DISTINCT FROM (EXCLUDED.junk_score, EXCLUDED.reject_score, "
        "EXCLUDED.greylisting, EXCLUDED.allow_senders, EXCLUDED.block_senders)",
        (domain_id, s["junk_score"], s["reject_score"], s["greylisting"], s["allow_senders"],
         s["block_senders"]))


# --- the Rspamd settings map -------------------------------------------------------

def _apply(s):
    actions = {"reject": s["reject_score"], "add header": s["junk_score"],
               "greylist": GREYLIST_SCORE if s["greylisting"] else None,
               "rewrite subject": None}
    # read by rspamd.local.lua (docker/rspamd): greylisting runs only then
    return {"actions": actions, "emboux_greylisting": s["greylisting"]}


OUTBOUND = {"actions": {"reject": DEFAULTS["reject_score"], "add header": None, "greylist": None,
                        "rewrite subject": None}, "emboux_greylisting": False}


def domain_table(domains):
    """domains: iterable of (name, settings). Returns the map as a dict: the
    outbound settings and, per domain, what Rspamd applies (`apply`, and
    `apply_allow` / `apply_block` with the list's symbol when a list has
    entries) and the lists themselves ('user@domain' or '@domain')."""
    out = {}
    for name, s in domains:
        apply = _apply(s)
        entry = {"apply": apply}
        if s["allow_senders"]:
            entry["allow_senders"] = s["allow_senders"]
            entry["apply_allow"] = {**apply, "symbols": {"EMBOUX_ALLOWLISTED": ALLOW_SCORE}}
        if s["block_senders"]:
            entry["block_senders"] = s["block_senders"]
            entry["apply_block"] = {**apply, "symbols": {"EMBOUX_BLOCKLISTED": BLOCK_SCORE}}
        out[name] = entry
    return {"outbound": OUTBOUND, "domains": out}


def map_text(cur):
    """The whole map (JSON, which Rspamd parses as UCL), and when it last changed."""
    cur.execute("SELECT d.name, s.junk_score, s.reject_score, s.greylisting, s.allow_senders, "
                "s.block_senders FROM domain_spam_settings s JOIN domains d ON d.id = s.domain_id ORDER BY d.id")
    domains = [(r["name"], {"junk_score": float(r["junk_score"]), "reject_score": float(r["reject_score"]),
                            "greylisting": r["greylisting"], "allow_senders": list(r["allow_senders"]),
                            "block_senders": list(r["block_senders"])})
               for r in cur.fetchall()]
    cur.execute("SELECT changed_at FROM spam_settings_changed")
    changed = cur.fetchone()
    return json.dumps(domain_table(domains), indent=1, sort_keys=True) + "\n", \
        (changed["changed_at"] if changed else None)
