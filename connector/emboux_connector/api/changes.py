"""Delta sync: what changed since an instant, per partner or platform-wide.

`next_since` is what the caller passes next time. It is never later than the
start of a still-running writing transaction of the API's role, because such
a transaction's changes carry timestamps from before its commit: a reader
that moved past them would never see them. (Autovacuum's ANALYZE also holds a
transaction id; it writes no changes and must not hold the cursor back.) Changes may therefore be returned twice; apply
them idempotently (the latest state is included with each change).
"""

from flask import Blueprint

from .. import responses, schemas, vacation
from ..routing import endpoint

bp = Blueprint("changes", __name__)

MAX_CHANGES = 10000


def _current_state(cur, resource, keys):
    """The present rows behind changed keys (absent = deleted since)."""
    if not keys:
        return {}
    if resource == "domain":
        cur.execute("SELECT d.name AS key, d.id, d.name, d.partner_ref, d.status, d.retention_days, "
                    "d.transfer_monthly_mb, d.wildcard, d.ownership, p.name AS parent FROM domains d "
                    "LEFT JOIN domains p ON p.id = d.parent_id WHERE d.name = ANY(%s)", (keys,))
    elif resource == "mailbox":
        cur.execute("SELECT m.email AS key, m.id, m.email, d.name AS domain, m.quota_mb, m.active, "
                    "v.enabled, v.subject, v.body, v.start_date, v.end_date, v.days "
                    "FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
                    "LEFT JOIN mailbox_vacations v ON v.mailbox_id = m.id "
                    "WHERE m.email = ANY(%s)", (keys,))
        return {r["key"]: _mailbox_state(r) for r in cur.fetchall()}
    else:
        cur.execute("SELECT a.source AS key, min(a.id) AS id, a.source, d.name AS domain, "
                    "string_agg(a.destination, ',' ORDER BY a.id) AS destination "
                    "FROM aliases a JOIN domains d ON d.id = a.domain_id "
                    "WHERE a.source = ANY(%s) GROUP BY a.source, d.name", (keys,))
    return {r.pop("key"): dict(r) for r in cur.fetchall()}


def _mailbox_state(row):
    """A mailbox as the feed shows it, its vacation reply as GET
    /users/{email}/vacation answers it (migration 0035: a change of the
    reply is a change of the mailbox)."""
    state = {k: row[k] for k in ("id", "email", "domain", "quota_mb", "active")}
    state["vacation"] = vacation.as_json(row["email"], vacation.from_row(row))
    del state["vacation"]["email"]
    return state


def delta(cur, partner_ref, since, scoped):
    cur.execute(
        "SELECT least(now(), (SELECT min(xact_start) FROM pg_stat_activity "
        "  WHERE backend_xid IS NOT NULL AND datname = current_database() "
        "  AND backend_type = 'client backend' AND usename = current_user "
        "  AND pid <> pg_backend_pid())) AS next_since")
    next_since = cur.fetchone()["next_since"]
    where, params = [], []
    if scoped:
        where.append("partner_ref IS NOT DISTINCT FROM %s")
        params.append(partner_ref)
    if since is not None:
        where.append("changed_at > %s")
        params.append(since)
    sql = ("SELECT resource, key, action, changed_at FROM changes"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY changed_at, id LIMIT %s")
    cur.execute(sql, params + [MAX_CHANGES + 1])
    rows = cur.fetchall()
    truncated = len(rows) > MAX_CHANGES
    rows = rows[:MAX_CHANGES]
    if truncated:
        next_since = rows[-1]["changed_at"]
    # One entry per resource: its last change, with its current state.
    latest = {}
    for r in rows:
        latest.pop((r["resource"], r["key"]), None)
        latest[(r["resource"], r["key"])] = r
    states = {res: _current_state(cur, res, [k for (rr, k) in latest if rr == res])
              for res in ("domain", "mailbox", "alias")}
    changes = []
    for (res, key), r in latest.items():
        current = states[res].get(key)
        if scoped and current is not None and res == "domain" and current["partner_ref"] != partner_ref:
            current = None  # moved to another partner since: gone for this one
        changes.append({"resource": res, "key": key,
                        "action": r["action"] if current is not None or r["action"] == "deleted" else "deleted",
                        "changed_at": r["changed_at"].isoformat(), "current": current})
    return {"since": since.isoformat() if since else None, "next_since": next_since.isoformat(),
            "truncated": truncated, "changes": changes}


@endpoint(bp, "/changes", "GET", role="master", query=schemas.SinceQuery, response=responses.CHANGES,
          summary="Platform-wide change feed since `since` (delta sync for the ERP)")
def all_changes(cur, caller, query):
    return delta(cur, None, query.get("since"), scoped=False)
