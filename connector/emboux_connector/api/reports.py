"""What the DMARC aggregate and TLS-RPT reports of a domain say (issue 14,
docs/reports.md): reports mailed to the platform's report addresses are
ingested by `emboux-connector reports-lmtp` (reports.py, reportsd.py); these
endpoints summarise them for a date range, under the tenant rules."""

import datetime as dt

from flask import Blueprint
from marshmallow import fields

from .. import names, reports, schemas
from ..dnscheck import ALIGNED_PASS_TARGET
from ..errors import ApiError
from ..routing import endpoint
from ..tenancy import visible_domain

bp = Blueprint("reports", __name__)

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_SOURCES = 1000


class DateRangeQuery(schemas.Body):
    since = fields.Date(metadata={"description": f"first day (UTC, YYYY-MM-DD) of the reports' periods; "
                                                f"default {DEFAULT_DAYS} days before `until`"})
    until = fields.Date(metadata={"description": "last day (UTC, YYYY-MM-DD), included; default today"})


def date_range(query):
    until = query.get("until") or dt.datetime.now(dt.UTC).date()
    since = query.get("since") or until - dt.timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise ApiError(400, "since: must not be after until", code="invalid_field")
    if (until - since).days >= MAX_DAYS:
        raise ApiError(400, f"since: the range is at most {MAX_DAYS} days", code="invalid_field")
    return since, until


def _pct(part, whole):
    return round(100.0 * part / whole, 2) if whole else None


DMARC_SQL = """
SELECT host(r.source_ip) AS source_ip, r.provider,
       sum(r.messages) AS messages,
       coalesce(sum(r.messages) FILTER (WHERE r.dmarc_aligned), 0) AS dmarc_pass,
       coalesce(sum(r.messages) FILTER (WHERE r.spf_aligned), 0) AS spf_pass,
       coalesce(sum(r.messages) FILTER (WHERE r.dkim_aligned), 0) AS dkim_pass,
       coalesce(sum(r.messages) FILTER (WHERE r.disposition = 'none'), 0) AS d_none,
       coalesce(sum(r.messages) FILTER (WHERE r.disposition = 'quarantine'), 0) AS d_quarantine,
       coalesce(sum(r.messages) FILTER (WHERE r.disposition = 'reject'), 0) AS d_reject,
       count(DISTINCT p.id) AS reports
  FROM dmarc_records r JOIN dmarc_reports p ON p.id = r.report_id
 WHERE p.domain_id = %s AND p.begin_at >= %s AND p.begin_at < %s
 GROUP BY r.source_ip, r.provider
 ORDER BY messages DESC, source_ip
"""


def dmarc_summary(cur, domain_id, since, until):
    start = dt.datetime.combine(since, dt.time(), dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
    cur.execute(DMARC_SQL, (domain_id, start, end))
    rows = cur.fetchall()
    cur.execute("SELECT count(*) AS n, array_agg(DISTINCT org_name) AS orgs FROM dmarc_reports "
                "WHERE domain_id = %s AND begin_at >= %s AND begin_at < %s", (domain_id, start, end))
    head = cur.fetchone()
    total = sum(r["messages"] for r in rows)
    passed = {k: sum(r[k] for r in rows) for k in ("dmarc_pass", "spf_pass", "dkim_pass")}
    sources = [{
        "source_ip": r["source_ip"], "provider": r["provider"], "messages": r["messages"],
        "dmarc_aligned_pass": r["dmarc_pass"], "dmarc_aligned_fail": r["messages"] - r["dmarc_pass"],
        "spf_aligned_pass": r["spf_pass"], "spf_aligned_fail": r["messages"] - r["spf_pass"],
        "dkim_aligned_pass": r["dkim_pass"], "dkim_aligned_fail": r["messages"] - r["dkim_pass"],
        "disposition": {"none": r["d_none"], "quarantine": r["d_quarantine"], "reject": r["d_reject"]},
    } for r in rows[:MAX_SOURCES]]
    return {
        "since": since.isoformat(), "until": until.isoformat(),
        "reports": head["n"], "reporters": sorted(o for o in (head["orgs"] or []) if o),
        "messages": total,
        "dmarc_aligned_pass": passed["dmarc_pass"], "spf_aligned_pass": passed["spf_pass"],
        "dkim_aligned_pass": passed["dkim_pass"],
        "aligned_pass_percent": _pct(passed["dmarc_pass"], total),
        "aligned_pass_target": ALIGNED_PASS_TARGET,
        "below_target": total > 0 and _pct(passed["dmarc_pass"], total) < ALIGNED_PASS_TARGET,
        "sources": sources, "sources_truncated": len(rows) > MAX_SOURCES,
    }


def aligned_pass_percent(cur, domain_id, days=DEFAULT_DAYS):
    """The aligned pass rate of the last `days` days of reports (None: no report): dns-check's advice."""
    until = dt.datetime.now(dt.UTC).date()
    return dmarc_summary(cur, domain_id, until - dt.timedelta(days=days - 1), until)["aligned_pass_percent"]


@endpoint(bp, "/domains/<name>/dmarc", "GET", role="either", query=DateRangeQuery, tag="reports",
          summary="DMARC aggregate reports of a domain: per source IP and provider, messages, SPF/DKIM "
                  "aligned pass/fail and disposition, for a date range")
def get_dmarc(cur, caller, name, query):
    """Reports count by the day their period begins (UTC), `since` to `until`
    included (default: the last 30 days). `aligned_pass_percent` is the share
    of messages that passed DMARC (SPF or DKIM aligned); below
    `aligned_pass_target` (98 %) `below_target` is true: authenticate the
    failing sources before raising p=."""
    row = visible_domain(cur, caller, names.domain_name(name))
    since, until = date_range(query)
    return {"name": row["name"], "report_address": reports.dmarc_rua(), **dmarc_summary(cur, row["id"], since, until)}


@endpoint(bp, "/domains/<name>/tls-reports", "GET", role="either", query=DateRangeQuery, tag="reports",
          summary="SMTP TLS reports (TLS-RPT) of a domain for a date range: sessions that succeeded and "
                  "failed, and why")
def get_tls_reports(cur, caller, name, query):
    row = visible_domain(cur, caller, names.domain_name(name))
    since, until = date_range(query)
    start = dt.datetime.combine(since, dt.time(), dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
    cur.execute("SELECT org_name, report_id, begin_at, end_at, policy_type, policy_strings, successful_sessions, "
                "failed_sessions, failure_details FROM tls_reports WHERE domain_id = %s AND begin_at >= %s "
                "AND begin_at < %s ORDER BY begin_at DESC, id DESC LIMIT 1000", (row["id"], start, end))
    items = [dict(r, begin_at=r["begin_at"].isoformat(), end_at=r["end_at"].isoformat()) for r in cur.fetchall()]
    ok = sum(r["successful_sessions"] for r in items)
    failed = sum(r["failed_sessions"] for r in items)
    return {"name": row["name"], "report_address": f"mailto:{reports.tlsrpt_address()}"
            if reports.tlsrpt_address() else None,
            "since": since.isoformat(), "until": until.isoformat(), "successful_sessions": ok,
            "failed_sessions": failed, "failure_percent": _pct(failed, ok + failed), "reports": items}
