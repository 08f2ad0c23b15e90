"""The platform's periodic jobs (JOBS), runnable without Odoo: `emboux-connector
reset-daily | reset-monthly | purge-retention | poll-verification | clean-dkim |
pull-json` (cron, systemd timers) and `emboux-connector scheduler` (scheduler.py).

Each job takes a dict cursor inside one transaction and returns a JSON-able
report. They reuse the API's own code paths, so that Odoo's crons (which call
the REST endpoints) and these jobs can both run: a period already closed is
answered `already_done` (periods.py), a retention purge or a DKIM expiry run
twice deletes or retires nothing more the second time.
"""

import logging

from . import dkim, stores
from .errors import ApiError

log = logging.getLogger(__name__)

# How many pending verifications one run polls (oldest check first), so that
# one slow DNS server cannot hold the job for hours.
POLL_BATCH = 200


def reset_daily(cur, day=None):
    from .api import outbound
    body = {"day": day} if day else {}
    return outbound.reset_daily.__wrapped__(cur, None, body)


def reset_monthly(cur, month=None):
    """Without `month`: every month still to freeze, oldest first, as Odoo's
    cron does by calling until `already_done` (a scheduler down for months
    catches up in one run). The report is the last answer, plus `closed`."""
    from .api import outbound
    if month:
        return outbound.reset_monthly.__wrapped__(cur, None, {"month": month})
    closed = []
    for _ in range(120):   # ten years: a bound, never reached in practice
        r = outbound.reset_monthly.__wrapped__(cur, None, {})
        if r["already_done"]:
            break
        closed.append(r["month"])
    return {**r, "closed": closed}


def purge_retention(cur):
    """Through Dovecot (doveadm), like POST /retention/purge."""
    from .api.retention import RETENTION_ROWS
    cur.execute(RETENTION_ROWS)
    rows = [(r["email"], r["retention_days"]) for r in cur.fetchall()]
    return stores.purge_retention(rows)


def poll_verification(cur, batch=POLL_BATCH):
    """Poll every sending identity still pending (or failed) at its provider
    or in DNS, the same call as GET /domains/{name}/identity/verify-status.
    One domain's provider error is recorded and does not stop the others."""
    from .providers import lifecycle
    cur.execute("SELECT pi.domain_id FROM provider_identities pi JOIN domains d ON d.id = pi.domain_id "
                "WHERE pi.state IN ('pending', 'failed') AND NOT d.provider_verified "
                "ORDER BY pi.checked_at NULLS FIRST, pi.domain_id LIMIT %s", (batch,))
    ids = [r["domain_id"] for r in cur.fetchall()]
    report = {"polled": 0, "verified": 0, "errors": []}
    for domain_id in ids:
        cur.execute("SAVEPOINT poll_one")
        try:
            row = lifecycle.load(cur, domain_id)
            result = lifecycle.poll(cur, row)
        except ApiError as exc:
            cur.execute("ROLLBACK TO SAVEPOINT poll_one")
            report["errors"].append(f"{row['name']}: {exc.detail}")
            continue
        cur.execute("RELEASE SAVEPOINT poll_one")
        report["polled"] += 1
        report["verified"] += bool(result.get("verified"))
    return report


def clean_dkim(cur):
    """The DKIM keys' life cycle: rotate the active key of each domain with a
    rotation age (`dkim_rotation_days`) once it is older; retire the keys
    whose overlap after a rotation is over (they leave the published records
    and the signing table; dkim.expire, which the API otherwise runs only
    when a domain's keys are listed or rotated); delete retired keys,
    private key included."""
    rotated = dkim.rotate_aged(cur)
    cur.execute("SELECT count(*) AS n FROM dkim_keys WHERE status = 'retiring' AND retire_after <= now()")
    n = cur.fetchone()["n"]
    dkim.expire(cur)
    return {"rotated": rotated, "retired": n, "deleted": dkim.delete_retired(cur)}


def pull_json(cur):
    """Seed 002's Basic JSON API: pull every tenant document that is due
    (jsonpull.py). A rejected document is a recorded run, not a failure."""
    from . import jsonpull
    return jsonpull.pull_due(cur)


def after_commit(job, report):
    """What a job leaves for after its commit: the stored mail of mailboxes a
    JSON pull removed (mailserver.py refuses while the row exists)."""
    for email in (report or {}).get("removed_mailboxes", []) if job == "pull-json" else []:
        try:
            stores.remove_mailbox_store(email)
        except Exception:  # the removal is committed; the store is cleaned best effort, logged
            log.exception("removing the mail store of %s failed", email)


JOBS = {
    "pull-json": pull_json,
    "reset-daily": reset_daily,
    "reset-monthly": reset_monthly,
    "purge-retention": purge_retention,
    "poll-verification": poll_verification,
    "clean-dkim": clean_dkim,
}


def failed(report):
    """A job's report says it failed (a purge or poll with errors)."""
    return bool(isinstance(report, dict) and report.get("errors"))
