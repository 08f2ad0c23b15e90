"""Seed 002's Basic JSON API: converge a tenant's accounts and aliases to
the document it serves over HTTPS (jsonfetch.py fetches it):

    {"example.com": {"account": [{"name": "alice", "password": "$6$..."}],
                     "alias":   [{"name": "office", "to": "alice@example.com,bob@example.com"}]}}

All or nothing: a document that cannot be fetched, parsed or validated --
JSON errors, unknown keys, bad names or hashes, duplicates, a domain that is
not the tenant's own (another tenant's, or none), a quota it would exceed --
changes nothing; the run is recorded as rejected with the reason. An applied
document is the whole truth for the domains it lists ("account" or "alias"
left out = none of them): accounts and aliases it does not name are removed
there, and only there (catch-alls, which it cannot express, are kept).
Passwords are crypt hashes taken as given ($1$, $5$, $6$, passwords.py);
$1$ (MD5-CRYPT) is accepted and reported as a warning on every run.

Every run is a row of json_pull_runs (migration 0027): created, changed and
removed addresses, warnings, or the reason of the rejection.
"""

import datetime as dt
import hashlib
import json

from . import jsonfetch, names, passwords, settings
from .errors import ApiError

MAX_DOMAINS = 1000
MAX_ENTRIES = 20000         # accounts and aliases of one document together
DOMAIN_KEYS = {"account", "alias"}


class Rejected(Exception):
    """The document is not applied: the run records this reason."""


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def _objects(value, where, keys):
    if not isinstance(value, list):
        raise Rejected(f"{where}: a list of objects is required")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise Rejected(f"{where}[{i}]: an object is required")
        for key in keys:
            if not isinstance(item.get(key), str):
                raise Rejected(f"{where}[{i}].{key}: a string is required")
    return value


def _check(fn, *args):
    """A names/passwords/aliases check; its 400 becomes the rejection's reason."""
    try:
        return fn(*args)
    except ApiError as exc:
        raise Rejected(exc.detail) from None


def parse(raw):
    """The document as {domain: {"accounts": {email: (stored, weak)},
    "aliases": {source: [destinations]}}}, or Rejected."""
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejected(f"not a JSON document: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise Rejected("the document must be a JSON object with a key per domain")
    if len(doc) > MAX_DOMAINS:
        raise Rejected(f"at most {MAX_DOMAINS} domains in one document")
    out, entries = {}, 0
    for key, spec in doc.items():
        domain = _check(names.domain_name, key, "domain")
        if domain in out:
            raise Rejected(f"{domain}: listed twice")
        out[domain] = _parse_domain(domain, spec)
        entries += len(out[domain]["accounts"]) + len(out[domain]["aliases"])
        if entries > MAX_ENTRIES:
            raise Rejected(f"at most {MAX_ENTRIES} accounts and aliases in one document")
    return out


def _parse_domain(domain, spec):
    from .api.aliases import _destinations
    if not isinstance(spec, dict):
        raise Rejected(f"{domain}: an object with 'account' and 'alias' lists is required")
    unknown = sorted(set(spec) - DOMAIN_KEYS)
    if unknown:
        raise Rejected(f"{domain}: unknown key {unknown[0]!r} (only 'account' and 'alias')")
    accounts, aliases = {}, {}
    for i, item in enumerate(_objects(spec.get("account", []), f"{domain}.account", ("name", "password"))):
        email = f"{_check(names.local_part, item['name'], f'{domain}.account[{i}].name')}@{domain}"
        if email in accounts:
            raise Rejected(f"{email}: listed twice")
        accounts[email] = _check(passwords.stored_from_crypt, item["password"], f"{email}: password")
    for i, item in enumerate(_objects(spec.get("alias", []), f"{domain}.alias", ("name", "to"))):
        source = f"{_check(names.local_part, item['name'], f'{domain}.alias[{i}].name')}@{domain}"
        if source in aliases or source in accounts:
            raise Rejected(f"{source}: listed twice (an alias and an account cannot share an address)")
        aliases[source] = _check(_destinations, item["to"])
    return {"accounts": accounts, "aliases": aliases}


def _own_domains(cur, partner_ref, wanted):
    cur.execute("SELECT id, name, partner_ref FROM domains WHERE name = ANY(%s) ORDER BY id FOR UPDATE",
                (sorted(wanted),))
    rows = {r["name"]: r for r in cur.fetchall()}
    for name in sorted(wanted):
        if name not in rows or rows[name]["partner_ref"] != partner_ref:
            # one answer for another tenant's domain and for none: existence is not told
            raise Rejected(f"{name}: not a domain of this tenant; the whole document was refused")
    return rows


def _check_quotas(cur, dom, want):
    from .api.aliases import _check_external_destinations
    from .tenancy import partner_quotas
    partner = partner_quotas(cur, dom["partner_ref"])
    n_boxes, n_aliases = len(want["accounts"]), len(want["aliases"])
    if partner and partner["mailboxes_per_domain"] and n_boxes > partner["mailboxes_per_domain"]:
        raise Rejected(f"{dom['name']}: {n_boxes} accounts exceed the quota of "
                       f"{partner['mailboxes_per_domain']} mailboxes per domain")
    if partner and partner["aliases_per_mailbox"] and n_aliases > partner["aliases_per_mailbox"] * max(1, n_boxes):
        raise Rejected(f"{dom['name']}: {n_aliases} aliases exceed the quota of "
                       f"{partner['aliases_per_mailbox']} per mailbox")
    for dests in want["aliases"].values():
        _check(_check_external_destinations, cur, dom, dests)


def _converge_domain(cur, dom, want, report):
    cur.execute("SELECT email, password_hash FROM mailboxes WHERE domain_id = %s", (dom["id"],))
    have = {r["email"]: r["password_hash"] for r in cur.fetchall()}
    # read before the removals below, which take a removed mailbox out of aliases too
    cur.execute("SELECT source, array_agg(destination ORDER BY id) AS dests FROM aliases "
                "WHERE domain_id = %s AND source NOT LIKE '@%%' GROUP BY source", (dom["id"],))
    have_aliases = {r["source"]: r["dests"] for r in cur.fetchall()}
    for email in sorted(set(have) - set(want["accounts"])):
        cur.execute("DELETE FROM aliases WHERE destination = %s", (email,))
        cur.execute("DELETE FROM mailboxes WHERE email = %s", (email,))
        report["removed"].append({"type": "account", "id": email})
    quota = settings.lenient("EMBOUX_DEFAULT_QUOTA_MB")
    for email, (stored, weak) in sorted(want["accounts"].items()):
        if weak:
            report["warnings"].append(f"{email}: $1$ (MD5-CRYPT) is a weak hash; it is accepted, but the "
                                      "password should be set again with $6$ (SHA512-CRYPT)")
        if email not in have:
            cur.execute("DELETE FROM aliases WHERE source = %s AND domain_id = %s", (email, dom["id"]))
            cur.execute("INSERT INTO mailboxes (domain_id, email, local_part, password_hash, quota_mb) "
                        "VALUES (%s, %s, %s, %s, %s)", (dom["id"], email, email.rsplit("@", 1)[0], stored, quota))
            report["created"].append({"type": "account", "id": email})
        elif have[email] != stored:
            cur.execute("UPDATE mailboxes SET password_hash = %s, updated_at = now() WHERE email = %s",
                        (stored, email))
            report["changed"].append({"type": "account", "id": email, "what": "password"})
    for source in sorted(set(have_aliases) - set(want["aliases"])):
        cur.execute("DELETE FROM aliases WHERE source = %s", (source,))
        report["removed"].append({"type": "alias", "id": source})
    for source, dests in sorted(want["aliases"].items()):
        if have_aliases.get(source) == dests:
            continue
        cur.execute("DELETE FROM aliases WHERE source = %s", (source,))
        for dest in dests:
            cur.execute("INSERT INTO aliases (domain_id, source, destination) VALUES (%s, %s, %s)",
                        (dom["id"], source, dest))
        report["created" if source not in have_aliases else "changed"].append(
            {"type": "alias", "id": source, **({"what": "to"} if source in have_aliases else {})})


def apply(cur, partner_ref, raw):
    """Validate and apply a document for the tenant; Rejected changes nothing
    (the caller runs this inside a savepoint). Returns the report."""
    doc = parse(raw)
    report = {"created": [], "changed": [], "removed": [], "warnings": []}
    doms = _own_domains(cur, partner_ref, set(doc))
    for name in sorted(doc):
        _check_quotas(cur, doms[name], doc[name])
    for name in sorted(doc):
        _converge_domain(cur, doms[name], doc[name], report)
    return report


def source_json(row):
    return {"partner_ref": row["partner_ref"], "url": row["url"], "interval_minutes": row["interval_minutes"],
            "enabled": row["enabled"], "next_pull_at": row["next_pull_at"].isoformat(),
            "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat()}


def run_json(row):
    return {"id": row["id"], "partner_ref": row["partner_ref"], "url": row["url"], "trigger": row["trigger"],
            "status": row["status"], "reason": row["reason"], "document_sha256": row["document_sha256"],
            "document_bytes": row["document_bytes"], "created": row["created"], "changed": row["changed"],
            "removed": row["removed"], "warnings": row["warnings"],
            "started_at": row["started_at"].isoformat(), "finished_at": row["finished_at"].isoformat()}


def pull(cur, partner_ref, trigger):
    """Fetch and apply the tenant's document now; record the run. Returns
    (run as JSON, addresses of removed mailboxes whose stores go after commit)."""
    cur.execute("SELECT * FROM json_pull_sources WHERE partner_ref = %s FOR UPDATE", (partner_ref,))
    source = cur.fetchone()
    if source is None:
        raise ApiError(404, "JSON source not found", code="json_source_not_found")
    started = dt.datetime.now(dt.UTC)
    raw, report, reason = None, {"created": [], "changed": [], "removed": [], "warnings": []}, None
    cur.execute("SAVEPOINT json_pull")
    try:
        raw = jsonfetch.fetch(source["url"])
        report = apply(cur, partner_ref, raw)
        cur.execute("RELEASE SAVEPOINT json_pull")
    except (jsonfetch.FetchError, Rejected) as exc:
        cur.execute("ROLLBACK TO SAVEPOINT json_pull")
        reason = str(exc)[:2000]
    cur.execute("UPDATE json_pull_sources SET next_pull_at = now() + interval_minutes * interval '1 minute' "
                "WHERE partner_ref = %s", (partner_ref,))
    cur.execute(
        "INSERT INTO json_pull_runs (partner_ref, url, trigger, status, reason, document_sha256, document_bytes, "
        " created, changed, removed, warnings, started_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (partner_ref, source["url"], trigger, "rejected" if reason else "applied", reason,
         hashlib.sha256(raw).hexdigest() if raw is not None else None, len(raw) if raw is not None else None,
         json.dumps(report["created"]), json.dumps(report["changed"]), json.dumps(report["removed"]),
         json.dumps(report["warnings"]), started))
    removed = [r["id"] for r in report["removed"] if r["type"] == "account"]
    return run_json(cur.fetchone()), removed


def pull_due(cur, batch=20):
    """The scheduler's job: every enabled source whose time has come (oldest
    first, at most `batch`). A rejected document is a recorded run, not a
    failure of the job."""
    cur.execute("SELECT partner_ref FROM json_pull_sources WHERE enabled AND next_pull_at <= now() "
                "ORDER BY next_pull_at LIMIT %s FOR UPDATE SKIP LOCKED", (batch,))
    out = {"pulled": 0, "applied": 0, "rejected": 0, "removed_mailboxes": []}
    for row in cur.fetchall():
        run, removed = pull(cur, row["partner_ref"], "schedule")
        out["pulled"] += 1
        out[run["status"]] += 1
        out["removed_mailboxes"] += removed
    return out
