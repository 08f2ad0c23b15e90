"""Incremental feeds for the back office: per-domain outbound counters, the
daily history and the suppression list, page by page (migration 0015).

A reader (Odoo's pull cron) keeps the `next_cursor` of its last page and
passes it back: each page answers the rows changed after the cursor, in
(transaction id, key) order, so 10,000 domains cost one request per page,
never one per domain, and a pull with nothing new answers no entries.

Why transaction ids and not timestamps: a row is stamped (`feed_xid`, a
trigger) with the id of the transaction that changed it; ids are handed out
before commit, so a transaction still running may commit rows below the
newest id. A page therefore stops below the *horizon*: the oldest
transaction of this database still running (or the next id to be handed
out). Everything below it is committed or gone, so a cursor never moves past
a row that could still appear, and no row is answered twice unless it
changed again. Transactions of other databases in the cluster do not hold
the horizon back. The cursor names its feed; it is opaque to callers.
"""

import json
import re

from flask import Blueprint, Response
from marshmallow import fields, validate

from .. import schemas
from ..errors import ApiError
from ..fields import StrictString
from ..routing import endpoint

bp = Blueprint("feeds", __name__)

MAX_PAGE = 5000
MAX_DAY = 10 ** 7   # a day as days since 1970-01-01 (the history cursor), far beyond any real one
CURSOR_RE = re.compile(r"^(counters|history|suppression)\.(\d{1,18})\.(-1|\d{1,18})\.(-1|\d{1,18})$")


class FeedQuery(schemas.Body):
    cursor = StrictString(validate=validate.Length(min=1, max=100), metadata={
        "description": "`next_cursor` of the previous page (absent: from the beginning)"})
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE), load_default=1000,
                                   metadata={"description": f"entries per page, 1 to {MAX_PAGE}"})


def horizon(cur):
    """The lowest transaction id that may still commit rows in this database
    (see the module's docstring). Read in this order: the next id first, then
    the running writers, so a writer that gets its id after the look-up gets
    one at or above the next id read before."""
    cur.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n")
    nxt = cur.fetchone()["n"]
    cur.execute("SELECT backend_xid::text::bigint AS x FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()")
    return min([nxt, *(widen(nxt, r["x"]) for r in cur.fetchall())])


def widen(nxt, xid32):
    """The 64-bit id of a running transaction shown with its 32-bit id:
    within 2^31 of `nxt`, below it, or above it when it got its id after
    `nxt` was read (then it does not lower the horizon)."""
    delta = (nxt - xid32) & 0xFFFFFFFF
    if delta >= 0x80000000:
        delta -= 0x100000000
    return nxt - delta


def parse_cursor(feed, cursor):
    """(transaction id, key 1, key 2) of the last row answered; -1 keys mean
    "before every row of that transaction"."""
    if cursor is None:
        return (0, -1, -1)
    m = CURSOR_RE.match(cursor)
    if not m or m.group(1) != feed:
        raise ApiError(400, f"cursor: not a cursor of the {feed} feed (pass next_cursor back as it was given)",
                       code="invalid_cursor")
    pos = tuple(int(g) for g in m.groups()[1:])
    if pos[2] > MAX_DAY:
        raise ApiError(400, f"cursor: not a cursor of the {feed} feed (pass next_cursor back as it was given)",
                       code="invalid_cursor")
    return pos


def _page(cur, caller, feed, query, sql, entry):
    """One page of `sql` (rows carry feed_xid, k1, k2) after the cursor and
    below the horizon. The entries are built as JSON text by PostgreSQL
    (`entry`, an expression over a row) and go into the answer as they are:
    a page of 5,000 costs one aggregate, not 5,000 Python dicts decoded from
    PostgreSQL's JSON and encoded again."""
    after = parse_cursor(feed, query.get("cursor"))
    top = horizon(cur)
    limit = query["limit"]
    cur.execute(PAGE_SQL.format(sql=sql, entry=entry),
                dict(x=after[0], k1=after[1], k2=after[2], horizon=top, limit=limit + 1, page=limit,
                     master=caller.is_master, partner=caller.partner_ref))
    page = cur.fetchone()
    more = page["n"] > limit
    # a full page goes on after its last row; otherwise everything below the
    # horizon is answered and the next page starts there
    nxt = (page["last_x"], page["last_k1"], page["last_k2"]) if more else max(after, (top, -1, -1))
    tail = json.dumps({"count": min(page["n"], limit), "next_cursor": f"{feed}.{nxt[0]}.{nxt[1]}.{nxt[2]}",
                       "more": more})
    return Response('{"entries": ' + page["entries"] + ", " + tail[1:], mimetype="application/json")


# up to limit + 1 rows of a feed's query (the extra one says `more`), as one JSON array
PAGE_SQL = """
WITH page AS (SELECT q.*, row_number() OVER (ORDER BY q.feed_xid, q.k1, q.k2) AS rn FROM ({sql}) q)
SELECT coalesce(json_agg({entry} ORDER BY rn) FILTER (WHERE rn <= %(page)s), '[]'::json)::text AS entries,
       count(*) AS n,
       (array_agg(feed_xid ORDER BY rn DESC) FILTER (WHERE rn <= %(page)s))[1] AS last_x,
       (array_agg(k1 ORDER BY rn DESC) FILTER (WHERE rn <= %(page)s))[1] AS last_k1,
       (array_agg(k2 ORDER BY rn DESC) FILTER (WHERE rn <= %(page)s))[1] AS last_k2
FROM page
"""


# The tenant rule in every feed: the master sees all, a client its partner's
# domains only (suppression: entries whose source domain is one of them).
# Each position test is a row comparison on the columns of the feed's index,
# so a page is an index range scan however long the history is.
_OWN = "(%(master)s OR d.partner_ref = %(partner)s)"

COUNTERS_SQL = f"""
SELECT t.feed_xid, t.domain_id AS k1, 0 AS k2, d.name, d.partner_ref, d.outbound_status,
       d.outbound_status_reason, t.sent_today, t.sent_month, t.bytes_month, t.overage_today,
       t.overage_month, t.overage_bytes_month, t.bounce_count, t.complaint_count, t.updated_at
FROM outbound_counters t JOIN domains d ON d.id = t.domain_id
WHERE (t.feed_xid, t.domain_id) > (%(x)s, %(k1)s) AND t.feed_xid < %(horizon)s AND {_OWN}
ORDER BY t.feed_xid, t.domain_id LIMIT %(limit)s
"""

HISTORY_SQL = f"""
SELECT t.feed_xid, t.domain_id AS k1, (t.day - DATE '1970-01-01') AS k2, d.name AS domain, t.day,
       t.sent, t.bytes, t.overage, t.bounces, t.complaints
FROM outbound_history t JOIN domains d ON d.id = t.domain_id
WHERE (t.feed_xid, t.domain_id, t.day) > (%(x)s, %(k1)s, DATE '1970-01-01' + %(k2)s::integer)
  AND t.feed_xid < %(horizon)s AND {_OWN}
ORDER BY t.feed_xid, t.domain_id, t.day LIMIT %(limit)s
"""

# Live entries and removed ones; an id is in one or the other, never both.
_SOURCE_OWN = f"(%(master)s OR EXISTS (SELECT 1 FROM domains d WHERE d.name = t.source_domain AND {_OWN}))"
SUPPRESSION_SQL = f"""
SELECT * FROM (
    (SELECT t.feed_xid, t.id AS k1, 0 AS k2, t.id, t.email, t.reason, t.source_domain, t.provider,
            t.created_at, false AS removed
     FROM suppression t
     WHERE (t.feed_xid, t.id) > (%(x)s, %(k1)s) AND t.feed_xid < %(horizon)s AND {_SOURCE_OWN}
     ORDER BY t.feed_xid, t.id LIMIT %(limit)s)
    UNION ALL
    (SELECT t.feed_xid, t.id, 0, t.id, t.email, t.reason, t.source_domain, t.provider, t.created_at, true
     FROM suppression_removed t
     WHERE (t.feed_xid, t.id) > (%(x)s, %(k1)s) AND t.feed_xid < %(horizon)s AND {_SOURCE_OWN}
     ORDER BY t.feed_xid, t.id LIMIT %(limit)s)
) u ORDER BY feed_xid, k1 LIMIT %(limit)s
"""


def _rate_sql(n):
    """api/outbound.py's _rate: percent of this month's sent, 3 decimals, 0 when nothing sent."""
    return f"(CASE WHEN sent_month > 0 THEN round(100.0 * {n} / sent_month, 3) ELSE 0 END)::float8"


# The same fields as GET /domains/{name}/outbound (api/outbound.py)
COUNTERS_ENTRY = f"""json_build_object(
    'name', name, 'partner_ref', partner_ref, 'outbound_status', outbound_status,
    'outbound_status_reason', outbound_status_reason, 'outbound_sent_today', sent_today,
    'outbound_sent_month', sent_month, 'outbound_bytes_month', bytes_month, 'overage_today', overage_today,
    'overage_month', overage_month, 'overage_bytes_month', overage_bytes_month, 'bounce_count', bounce_count,
    'complaint_count', complaint_count, 'bounce_rate', {_rate_sql("bounce_count")},
    'complaint_rate', {_rate_sql("complaint_count")}, 'updated_at', updated_at)"""

HISTORY_ENTRY = """json_build_object(
    'domain', domain, 'day', day, 'sent', sent, 'bytes', bytes, 'overage', overage, 'bounces', bounces,
    'complaints', complaints)"""

# The fields of GET /suppression (api/suppression.py: entry_json), and `removed`
SUPPRESSION_ENTRY = """json_build_object(
    'id', id, 'email', email, 'reason', reason, 'source_domain', source_domain, 'provider', provider,
    'created_at', created_at, 'removed', removed)"""


@endpoint(bp, "/outbound/feed/counters", "GET", role="either", query=FeedQuery,
          summary="Outbound counters of every visible domain changed since the cursor (paged)")
def counters_feed(cur, caller, query):
    """One entry per domain whose counters, outbound status or owner changed
    after `cursor`, with the same fields as `GET /domains/{name}/outbound`.
    Pass `next_cursor` back while `more` is true; later, to get what changed
    since. A client token sees its own domains only. 400 `invalid_cursor`."""
    return _page(cur, caller, "counters", query, COUNTERS_SQL, COUNTERS_ENTRY)


@endpoint(bp, "/outbound/feed/history", "GET", role="either", query=FeedQuery,
          summary="Closed days of outbound history (domain, day, sent, bytes, overage, bounces, complaints), paged")
def history_feed(cur, caller, query):
    """One entry per domain and closed day (reset-daily) written after
    `cursor`. Days closed before bounces and complaints were recorded per
    day carry 0. A client token sees its own domains only."""
    return _page(cur, caller, "history", query, HISTORY_SQL, HISTORY_ENTRY)


@endpoint(bp, "/outbound/feed/suppression", "GET", role="either", query=FeedQuery,
          summary="Suppression entries added or removed since the cursor (paged)")
def suppression_feed(cur, caller, query):
    """Entries added (`removed: false`) or lifted (`removed: true`: delete
    your copy) after `cursor`. The master sees the whole list; a client token
    only the entries its own domains' mail caused (the list's other entries
    say what happened to another tenant's mail)."""
    return _page(cur, caller, "suppression", query, SUPPRESSION_SQL, SUPPRESSION_ENTRY)
