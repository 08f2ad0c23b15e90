"""The retention purge, for Odoo's daily cron (the CLI has the same command)."""

from flask import Blueprint

from .. import stores
from ..routing import endpoint

bp = Blueprint("retention", __name__)

RETENTION_ROWS = ("SELECT m.email, d.retention_days FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
                  "WHERE d.retention_days > 0 AND d.status = 'active' AND m.active "
                  "ORDER BY d.retention_days, m.email")


@endpoint(bp, "/retention/purge", "POST", role="master",
          summary="Delete mail older than each domain's retention_days (through Dovecot)")
def purge(cur, caller):
    """Suspended domains are skipped: suspension deletes nothing."""
    cur.execute(RETENTION_ROWS)
    rows = [(r["email"], r["retention_days"]) for r in cur.fetchall()]
    return stores.purge_retention(rows)
