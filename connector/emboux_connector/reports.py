"""DMARC aggregate and TLS-RPT report ingestion (issue 14, docs/reports.md).

A report mail, as Postfix hands it over (reportsd.py), goes through:
  1. its size as received, before anything is decoded (REPORT_MAX_BYTES);
  2. every compressed attachment decompressed with a bound
     (REPORT_MAX_DECOMPRESSED_BYTES): a gzip or zip bomb stops there;
  3. no DOCTYPE / ENTITY in any XML (entity expansion, external entities);
  4. parsedmarc (offline: no DNS or downloads), which parses aggregate,
     forensic and SMTP TLS reports (and itself refuses DOCTYPEs and bounds
     decompression);
  5. the report's domain(s) must be hosted here (ownership verified or
     vouched): a pending claim must not read the real owner's reports.
Whatever the outcome one row of report_intake records it; only a report that
passes every step is stored. Nothing here raises for bad input: `ingest`
answers the outcome, and only a database failure propagates (the LMTP server
then defers the mail: 451, Postfix retries).
"""

import datetime as dt
import io
import re
import zipfile
import zlib
from email import policy as email_policy
from email.parser import BytesParser

from psycopg2.extras import Json

from . import ownership, settings

KINDS = {"aggregate": "aggregate", "smtp_tls": "smtp_tls", "forensic": "forensic", "failure": "forensic"}
_ENTITY = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)


class Rejected(Exception):
    def __init__(self, reason, detail=None):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def dmarc_address():
    return settings.get("DMARC_REPORT_ADDRESS") or f"dmarc-reports@{settings.get('MAIL_HOSTNAME').rstrip('.')}"


def dmarc_rua():
    return f"mailto:{dmarc_address()}"


def tlsrpt_address():
    """The mailbox of TLSRPT_RUA (None when the reports go to an https: URL)."""
    from .mtasts import tlsrpt_rua
    rua = tlsrpt_rua()
    return rua[len("mailto:"):] if rua.lower().startswith("mailto:") else None


def report_addresses():
    return {a.lower() for a in (dmarc_address(), tlsrpt_address()) if a}


# --- 1-3: bounded, entity-free content ---------------------------------------------------

def _gunzip_bounded(data, limit):
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out = d.decompress(data, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise Rejected("too_large_decompressed", f"a gzip attachment inflates beyond {limit} bytes")
    return out


def _unzip_bounded(data, limit):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        out = []
        total = 0
        for info in zf.infolist():
            with zf.open(info) as member:   # the declared size may lie: count what comes out
                chunk = member.read(limit + 1 - total)
            total += len(chunk)
            if total > limit:
                raise Rejected("too_large_decompressed", f"a zip attachment inflates beyond {limit} bytes")
            out.append(chunk)
        return out
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise Rejected("malformed", f"bad zip attachment: {exc}") from None


def check_content(raw):
    """Steps 1-3; raises Rejected."""
    max_bytes = settings.get("REPORT_MAX_BYTES")
    if len(raw) > max_bytes:
        raise Rejected("too_large", f"{len(raw)} bytes > REPORT_MAX_BYTES {max_bytes}")
    limit = settings.get("REPORT_MAX_DECOMPRESSED_BYTES")
    msg = BytesParser(policy=email_policy.compat32).parsebytes(raw)
    for part in msg.walk():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        texts = [data]
        try:
            if data[:2] == b"\x1f\x8b":
                texts = [_gunzip_bounded(data, limit)]
            elif data[:4] == b"PK\x03\x04":
                texts = _unzip_bounded(data, limit)
        except zlib.error as exc:
            raise Rejected("malformed", f"bad gzip attachment: {exc}") from None
        for text in texts:
            if _ENTITY.search(text):
                raise Rejected("xml_entities", "XML with a DOCTYPE or ENTITY declaration is refused")
    return msg


# --- 4: parsedmarc --------------------------------------------------------------------

def parse(raw):
    import parsedmarc
    try:
        parsed = parsedmarc.parse_report_email(raw, offline=True, always_use_local_files=True,
                                               strip_attachment_payloads=True)
    except Exception as exc:  # noqa: BLE001 -- whatever a hostile report makes the parser raise
        raise Rejected("malformed", f"{type(exc).__name__}: {str(exc)[:300]}") from None
    kind = KINDS.get(parsed.get("report_type"))
    if kind is None:
        raise Rejected("malformed", f"unknown report type {parsed.get('report_type')!r}")
    return kind, parsed["report"]


def _utc(value):
    """parsedmarc's 'YYYY-MM-DD HH:MM:SS' (UTC: the reports' epoch seconds) or ISO 8601."""
    d = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


# --- 5: hosted domains, storage ------------------------------------------------------------

def _hosted(cur, name):
    cur.execute("SELECT id, ownership FROM domains WHERE name = %s", ((name or "").strip().lower().rstrip("."),))
    row = cur.fetchone()
    return row["id"] if row and row["ownership"] in ownership.OWNED else None


def _store_aggregate(cur, report, intake_id):
    domain = (report["policy_published"]["domain"] or "").lower()
    domain_id = _hosted(cur, domain)
    if domain_id is None:
        raise Rejected("domain_not_hosted", f"{domain} is not a domain hosted here")
    meta = report["report_metadata"]
    policy = {k: report["policy_published"].get(k) for k in ("p", "sp", "pct", "adkim", "aspf")}
    cur.execute(
        "INSERT INTO dmarc_reports (domain_id, intake_id, org_name, org_email, report_id, begin_at, end_at, policy) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id, org_name, report_id) DO NOTHING "
        "RETURNING id",
        (domain_id, intake_id, meta["org_name"], meta.get("org_email"), meta["report_id"],
         _utc(meta["begin_date"]), _utc(meta["end_date"]), Json(policy)))
    row = cur.fetchone()
    if row is None:
        return "duplicate"
    rows = []
    for rec in report["records"]:
        src, al, pe = rec["source"], rec["alignment"], rec["policy_evaluated"]
        rows.append((row["id"], src["ip_address"], src.get("name") or src.get("as_name"), int(rec["count"]),
                     pe.get("disposition") or "none", bool(al["spf"]), bool(al["dkim"]), bool(al["dmarc"]),
                     rec["identifiers"].get("header_from"), rec["identifiers"].get("envelope_from")))
    cur.executemany(
        "INSERT INTO dmarc_records (report_id, source_ip, provider, messages, disposition, spf_aligned, "
        "dkim_aligned, dmarc_aligned, header_from, envelope_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows)
    return "stored"


def _store_tls(cur, report, intake_id):
    stored, duplicate, foreign = 0, 0, []
    for pol in report["policies"]:
        domain = (pol["policy_domain"] or "").lower()
        domain_id = _hosted(cur, domain)
        if domain_id is None:
            foreign.append(domain)
            continue
        cur.execute(
            "INSERT INTO tls_reports (domain_id, intake_id, org_name, report_id, begin_at, end_at, policy_type, "
            "policy_strings, successful_sessions, failed_sessions, failure_details) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (domain_id, org_name, report_id, policy_type) DO NOTHING RETURNING id",
            (domain_id, intake_id, report["organization_name"], report["report_id"], _utc(report["begin_date"]),
             _utc(report["end_date"]), pol.get("policy_type") or "no-policy-found",
             Json(pol.get("policy_strings") or []), int(pol.get("successful_session_count") or 0),
             int(pol.get("failed_session_count") or 0), Json(pol.get("failure_details") or [])))
        if cur.fetchone():
            stored += 1
        else:
            duplicate += 1
    if not stored and not duplicate:
        raise Rejected("domain_not_hosted", f"{', '.join(foreign) or 'no policy domain'}: not hosted here")
    return "stored" if stored else "duplicate"


def _names(kind, report):
    if kind == "aggregate":
        meta = report["report_metadata"]
        return [report["policy_published"]["domain"]], meta.get("org_name"), meta.get("report_id")
    if kind == "smtp_tls":
        return ([p.get("policy_domain") for p in report.get("policies", [])], report.get("organization_name"),
                report.get("report_id"))
    return [report.get("reported_domain")] if report.get("reported_domain") else [], None, None


def ingest(cur, raw, recipient, sender):
    """Check, parse and store one report mail in the caller's transaction;
    -> {"status", "kind", "reason", "domains"} (also recorded in report_intake).
    Stored rows are written inside a savepoint: a rejection found while
    storing (a domain not hosted) leaves nothing behind."""
    kind, domains, org, report_id, reason, detail = None, [], None, None, None, None
    cur.execute("INSERT INTO report_intake (recipient, sender, size_bytes, status) VALUES (%s, %s, %s, 'rejected') "
                "RETURNING id", (recipient[:320], (sender or "")[:320], len(raw)))
    intake_id = cur.fetchone()["id"]
    try:
        check_content(raw)
        kind, report = parse(raw)
        domains, org, report_id = _names(kind, report)
        if kind == "forensic":
            status, reason = "ignored", "forensic_not_stored"
        else:
            cur.execute("SAVEPOINT report")
            try:
                status = (_store_aggregate if kind == "aggregate" else _store_tls)(cur, report, intake_id)
            except Rejected:
                cur.execute("ROLLBACK TO SAVEPOINT report")
                raise
            cur.execute("RELEASE SAVEPOINT report")
    except Rejected as exc:
        status, reason, detail = "rejected", exc.reason, exc.detail
    domains = [str(d).lower()[:253] for d in domains if d]
    cur.execute("UPDATE report_intake SET kind = %s, status = %s, reason = %s, detail = %s, domains = %s, "
                "org_name = %s, report_id = %s WHERE id = %s",
                (kind, status, reason, (detail or "")[:500] or None, domains, (org or "")[:200] or None,
                 (report_id or "")[:200] or None, intake_id))
    return {"id": intake_id, "status": status, "kind": kind, "reason": reason, "domains": domains}
