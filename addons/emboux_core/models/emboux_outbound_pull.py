# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The "pull" cron: outbound counters, the daily history and the suppression
list, from the connector's incremental feeds (GET /outbound/feed/counters,
/outbound/feed/history, /outbound/feed/suppression). Each feed is read from the
cursor of the last page applied, one request per page of up to 5,000 rows
(10,000 domains: two requests), never one per domain.

Rows are applied in bulk with one SQL statement per page (a page's JSON is
the statement's only parameter) and only where a value differs, so a pull
with nothing new writes nothing; the ORM's caches are told. Rows about
domains this Odoo does not manage are skipped: each Odoo reports on its own
customers (the master token sees the whole platform)."""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from odoo import api, fields, models
from odoo.exceptions import AccessError

from ..services.connector_client import ConnectorError

_logger = logging.getLogger(__name__)

PAGE = 5000
FEEDS = {"counters": "/outbound/feed/counters", "history": "/outbound/feed/history",
         "suppression": "/outbound/feed/suppression"}
CURSOR_PARAM = "emboux.outbound_feed_cursor.%s"
ANALYZE_AFTER = 50000   # history rows written by one pull

# emboux.domain's counter fields (models/emboux_domain_outbound.py: the API's
# names), with their SQL type in a page
COUNTER_COLUMNS = (
    ("outbound_status", "text"), ("outbound_status_reason", "text"),
    ("outbound_sent_today", "integer"), ("outbound_sent_month", "integer"),
    ("outbound_bytes_month", "numeric"), ("overage_today", "integer"), ("overage_month", "integer"),
    ("overage_bytes_month", "numeric"), ("bounce_count", "integer"), ("complaint_count", "integer"),
    ("bounce_rate", "numeric"), ("complaint_rate", "numeric"))
COUNTER_FIELDS = [c for c, _t in COUNTER_COLUMNS]
DAY_FIELDS = ("sent", "bytes", "overage", "bounces", "complaints", "bounce_rate", "complaint_rate")
SUPPRESSION_FIELDS = ("email", "reason", "source_domain", "domain_id", "tenant_id", "company_id", "provider",
                      "created_at")


def _tuple(prefix, names):
    return "(" + ", ".join(f"{prefix}.{n}" for n in names) + ")"


class EmbouxOutboundPull(models.AbstractModel):
    _name = "emboux.outbound.pull"
    _description = "Email Hosting: outbound counters, history and suppression pulled from the connector"

    @api.model
    def _cron_pull_outbound(self):
        """Cron "Email Hosting: pull outbound counters, history and suppression (incremental)"."""
        try:
            return self._pull(commit=True)
        except ConnectorError as exc:
            _logger.warning("EmBoux outbound pull skipped: %s", exc)
            return {}

    @api.model
    def action_pull_now(self):
        """Pull now (a manager's button; the benchmark): what was written, per feed."""
        if not self.env.user.has_group("emboux_core.group_emboux_manager"):
            raise AccessError(self.env._("Only an Email Hosting administrator may pull the outbound figures now."))
        return self._pull()

    @api.model
    def _pull(self, commit=False, max_pages=2000):
        """Apply every feed from its cursor. Returns {feed: rows written}
        plus {feed + "_entries": entries read, feed + "_pages": requests}.
        With commit=True (cron) each page and its cursor are committed
        together: an interruption replays at most one page, harmlessly."""
        icp = self.env["ir.config_parameter"].sudo()
        client = self.env["emboux.connector"]._client()
        stats = {}
        # The next page is fetched (HTTP only, no cursor) while this one is applied.
        with ThreadPoolExecutor(max_workers=1) as pool:
            for feed, path in FEEDS.items():
                key = CURSOR_PARAM % feed

                def fetch(cursor, path=path):
                    params = {"limit": PAGE, "cursor": cursor} if cursor else {"limit": PAGE}
                    # decoded here (this thread), handed to PostgreSQL as received
                    return client.call("GET", path, params=params, raw=True)

                cursor = start = icp.get_param(key) or None
                written = read = pages = 0
                t0, waited = time.monotonic(), 0.0
                coming = pool.submit(fetch, cursor)
                for _page in range(max_pages):
                    t1 = time.monotonic()
                    page, body = coming.result()
                    waited += time.monotonic() - t1
                    pages += 1
                    more = page.get("more")
                    if more:
                        coming = pool.submit(fetch, page["next_cursor"])
                    entries = page.get("entries") or []
                    read += len(entries)
                    if entries:
                        # the SQL below reads and writes tables the ORM may hold pending changes of
                        self.env.flush_all()
                        written += getattr(self, f"_apply_{feed}")(entries, body)
                        # a page with no entries leaves the cursor (and the database) as it was
                        cursor = page["next_cursor"]
                    if commit:
                        if cursor != start:
                            icp.set_param(key, cursor)
                            start = cursor
                        self.env.cr.commit()  # pylint: disable=invalid-commit
                    if not more:
                        break
                # one transaction (a manager's button): the cursor moves with the pages, once
                if cursor != start:
                    icp.set_param(key, cursor)
                if feed == "history" and written >= ANALYZE_AFTER:
                    # a bulk load (a first pull): fresh statistics before autovacuum gets to it,
                    # or the dashboard's next read_group is planned for the table as it was
                    self.env.cr.execute("ANALYZE emboux_outbound_day")
                stats.update({feed: written, f"{feed}_entries": read, f"{feed}_pages": pages})
                if read:
                    _logger.info("outbound pull, %s: %d entries in %d pages, %d rows written, %.1f s "
                                 "(%.1f s waiting for the connector)", feed, read, pages, written,
                                 time.monotonic() - t0, waited)
        return stats

    def _stamp(self):
        return {"uid": self.env.uid, "now": fields.Datetime.now()}

    # --- applying a page ------------------------------------------------------------
    @api.model
    def _apply_counters(self, entries, body):
        """emboux.domain's counter fields, where they differ; a domain the
        platform suspended (the guillotine) or resumed says so in its chatter.
        `body` is the page as received: its "entries" are read by PostgreSQL."""
        cr = self.env.cr
        cr.execute("SELECT id, name, outbound_status FROM emboux_domain WHERE name = ANY(%s)",
                   ([e["name"] for e in entries],))
        before = {name: (dom_id, status) for dom_id, name, status in cr.fetchall()}
        recordset = ", ".join(f"{c} {t}" for c, t in COUNTER_COLUMNS)
        sets = ", ".join(f"{c} = r.{c}" for c in COUNTER_FIELDS)
        cr.execute(f"""
            UPDATE emboux_domain d SET {sets}, outbound_checked_at = %(now)s, write_uid = %(uid)s,
                   write_date = %(now)s
            FROM jsonb_to_recordset(%(body)s::jsonb -> 'entries') AS r(name text, {recordset})
            WHERE d.name = r.name AND {_tuple('d', COUNTER_FIELDS)} IS DISTINCT FROM {_tuple('r', COUNTER_FIELDS)}
            RETURNING d.id, d.name, d.outbound_status, d.outbound_status_reason""",  # noqa: S608 -- names are ours
                   dict(self._stamp(), body=body))
        changed = cr.fetchall()
        if not changed:
            return 0
        domains = self.env["emboux.domain"].browse([r[0] for r in changed])
        domains.invalidate_recordset([*COUNTER_FIELDS, "outbound_checked_at", "write_date", "write_uid"])
        domains.modified(COUNTER_FIELDS)
        for dom_id, name, status, reason in changed:
            if before.get(name, (None, status))[1] != status:
                dom = self.env["emboux.domain"].browse(dom_id).sudo()
                if status == "suspended":
                    body = self.env._("The mail platform suspended this domain's outbound mail: %s", reason or "-")
                else:
                    body = self.env._("The mail platform resumed this domain's outbound mail.")
                dom.with_context(mail_notrack=True).message_post(body=body)
        return len(changed)

    @api.model
    def _apply_history(self, entries, body):  # noqa: ARG002 -- read by PostgreSQL from `body`
        """emboux.outbound.day rows, inserted or updated where they differ
        (no Odoo log columns: models/emboux_outbound_day.py)."""
        cr = self.env.cr
        cr.execute(f"""
            INSERT INTO emboux_outbound_day (domain_id, tenant_id, company_id, day, {", ".join(DAY_FIELDS)})
            SELECT d.id, d.tenant_id, d.company_id, r.day, r.sent, r.bytes, r.overage, r.bounces, r.complaints,
                   CASE WHEN r.sent > 0 THEN round(100.0 * r.bounces / r.sent, 3) ELSE 0 END,
                   CASE WHEN r.sent > 0 THEN round(100.0 * r.complaints / r.sent, 3) ELSE 0 END
            FROM jsonb_to_recordset(%(body)s::jsonb -> 'entries')
                 AS r(domain text, day date, sent integer, bytes numeric, overage integer, bounces integer,
                      complaints integer)
            JOIN emboux_domain d ON d.name = r.domain
            ON CONFLICT (domain_id, day) DO UPDATE SET
                {", ".join(f"{f} = EXCLUDED.{f}" for f in DAY_FIELDS)}
            WHERE {_tuple('emboux_outbound_day', DAY_FIELDS)} IS DISTINCT FROM {_tuple('EXCLUDED', DAY_FIELDS)}
            """,  # noqa: S608 -- names are ours
                   {"body": body})
        written = cr.rowcount
        if written:
            self.env["emboux.outbound.day"].invalidate_model()
        return written

    @api.model
    def _apply_suppression(self, entries, body):  # noqa: ARG002 -- few entries: filtered in Python
        """emboux.suppression rows: added or updated where they differ;
        lifted ones (`removed`) deleted."""
        Supp = self.env["emboux.suppression"].sudo()
        removed = [e["id"] for e in entries if e.get("removed")]
        gone = Supp.search([("remote_id", "in", removed)]) if removed else Supp
        written = len(gone)
        gone.unlink()
        live = [e for e in entries if not e.get("removed") and e["id"] not in removed]
        if not live:
            return written
        cr = self.env.cr
        cols = ", ".join(SUPPRESSION_FIELDS)
        cr.execute(f"""
            INSERT INTO emboux_suppression (remote_id, {cols}, sync_state, lift_requested,
                                            create_uid, create_date, write_uid, write_date)
            SELECT r.id, r.email, r.reason, r.source_domain, d.id, d.tenant_id, d.company_id, r.provider,
                   r.created_at AT TIME ZONE 'UTC', 'synced', false, %(uid)s, %(now)s, %(uid)s, %(now)s
            FROM jsonb_to_recordset(%(rows)s::jsonb)
                 AS r(id integer, email text, reason text, source_domain text, provider text, created_at timestamptz)
            JOIN emboux_domain d ON d.name = r.source_domain
            ON CONFLICT (remote_id) DO UPDATE SET
                {", ".join(f"{f} = EXCLUDED.{f}" for f in SUPPRESSION_FIELDS)}, write_uid = EXCLUDED.write_uid,
                write_date = EXCLUDED.write_date
            WHERE {_tuple('emboux_suppression', SUPPRESSION_FIELDS)}
                  IS DISTINCT FROM {_tuple('EXCLUDED', SUPPRESSION_FIELDS)}
            RETURNING id""",  # noqa: S608 -- names are ours
                   dict(self._stamp(), rows=json.dumps(live)))
        written += cr.rowcount
        if cr.rowcount:
            Supp.invalidate_model()
        return written
