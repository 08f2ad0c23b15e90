"""DMARC aggregate and TLS-RPT reports mailed to the platform's report
addresses through port 25 (issue 14, docs/reports.md): Postfix hands them over
LMTP to `emboux-connector reports-lmtp`, which stores them for hosted domains;
GET /domains/{name}/dmarc and /tls-reports summarise them under the tenant
rules. Hostile reports (bombs, entities, oversized, a domain not hosted) are
recorded as rejected, nothing is stored, and the mail is delivered (250), not
bounced.
"""

import datetime as dt
import gzip
import json
import os
import pathlib
import re
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
DEADLINE = 60   # seconds a delivery may take before the test gives up (not an assertion on speed)


def aggregate_xml(domain, report_id, records, doctype=""):
    begin = int(dt.datetime.combine(DAY, dt.time(), dt.UTC).timestamp())
    rows = "".join(
        f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
        f"<disposition>{disp}</disposition><dkim>{res}</dkim><spf>{res}</spf></policy_evaluated></row>"
        f"<identifiers><header_from>{domain}</header_from></identifiers><auth_results>"
        f"<dkim><domain>{domain if res == 'pass' else 'other.example'}</domain><result>{res}</result></dkim>"
        f"<spf><domain>{domain if res == 'pass' else 'other.example'}</domain><result>{res}</result></spf>"
        f"</auth_results></record>" for ip, count, res, disp in records)
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<feedback><report_metadata>'
            f"<org_name>reporter.example</org_name><email>noreply@reporter.example</email>"
            f"<report_id>{report_id}</report_id><date_range><begin>{begin}</begin><end>{begin + 86399}</end>"
            f"</date_range></report_metadata><policy_published><domain>{domain}</domain><adkim>r</adkim>"
            f"<aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>{rows}</feedback>").encode()


def tls_json(domain, report_id, ok, failed):
    return json.dumps({
        "organization-name": "reporter.example", "contact-info": "tls@reporter.example", "report-id": report_id,
        "date-range": {"start-datetime": f"{DAY}T00:00:00Z", "end-datetime": f"{DAY}T23:59:59Z"},
        "policies": [{"policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
                                 "policy-domain": domain, "mx-host": ["mail.emboux.test"]},
                      "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed},
                      "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.7",
                                           "receiving-mx-hostname": "mail.emboux.test",
                                           "failed-session-count": failed}]}]}).encode()


def report_mail(sender, rcpt, attachment, filename, subtype="gzip"):
    m = EmailMessage()
    m["From"], m["To"] = sender, rcpt
    m["Subject"] = f"Report Domain: x Submitter: reporter.example Report-ID: <{uuid.uuid4().hex}>"
    m["Message-ID"] = f"<{uuid.uuid4().hex}@reporter.example>"
    m.set_content("This is a report.\n")
    m.add_attachment(attachment, maintype="application", subtype=subtype, filename=filename)
    return m.as_bytes()


@pytest.fixture
def mail_report(devenv, sql):
    """mail_report(rcpt, message) -> the report_intake row, once Postfix has
    delivered the message to the report server; also checks that Postfix
    logged it as delivered (status=sent), i.e. not bounced."""
    log = ROOT / "var" / "log" / "postfix.log"

    def send(rcpt, message):
        sender = f"reporter-{uuid.uuid4().hex[:12]}@reporter-net.example"
        with smtplib.SMTP(devenv.get("SMTP_HOST") or "127.0.0.1", int(devenv["SMTP_PORT"]), timeout=60) as s:
            s.ehlo("mx.reporter-net.example")
            s.mail(sender)
            code, text = s.rcpt(rcpt)
            assert code == 250, (code, text)
            code, text = s.data(message)
            assert code == 250, (code, text)
        qid = re.search(rb"queued as (\S+)", text).group(1).decode()
        until = time.monotonic() + DEADLINE
        while time.monotonic() < until:
            rows = sql("SELECT * FROM report_intake WHERE sender = %s", (sender,))
            sent = [ln for ln in log.read_text(errors="replace").splitlines()
                    if f"{qid}: to=<{rcpt}>" in ln and "status=" in ln]
            if rows and sent:
                assert "status=sent" in sent[-1] and "postfix/emboux-reports/" in sent[-1], sent
                return rows[0]
            time.sleep(0.2)
        pytest.fail(f"report {qid} from {sender} not delivered to the report server in {DEADLINE}s")
    return send


@pytest.fixture
def addresses(devenv):
    host = devenv["MAIL_HOSTNAME"]
    return f"dmarc-reports@{host}", f"tls-reports@{host}"


def test_aggregate_report_mailed_appears_in_the_summary(make_tenant, sql, mail_report, addresses, api):
    owner, other = make_tenant(), make_tenant()
    domain = owner.domain()
    rid = uuid.uuid4().hex
    xml = aggregate_xml(domain, rid, [("192.0.2.10", 97, "pass", "none"), ("198.51.100.5", 2, "fail", "none"),
                                      ("198.51.100.5", 1, "fail", "quarantine")])
    row = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0], gzip.compress(xml),
                                                f"reporter.example!{domain}!1!2.xml.gz"))
    assert (row["status"], row["kind"], row["domains"]) == ("stored", "aggregate", [domain]), row

    r = owner.get(f"/domains/{domain}/dmarc", params={"since": str(DAY), "until": str(DAY)})
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["reports"], s["messages"], s["dmarc_aligned_pass"]) == (1, 100, 97)
    assert s["aligned_pass_percent"] == 97.0 and s["below_target"] is True
    assert s["report_address"] == f"mailto:{addresses[0]}"
    by_ip = {x["source_ip"]: x for x in s["sources"]}
    assert by_ip["192.0.2.10"]["spf_aligned_pass"] == 97 and by_ip["192.0.2.10"]["dkim_aligned_fail"] == 0
    bad = by_ip["198.51.100.5"]
    assert (bad["messages"], bad["spf_aligned_fail"], bad["dkim_aligned_fail"]) == (3, 3, 3)
    assert bad["disposition"] == {"none": 2, "quarantine": 1, "reject": 0}
    # another range: nothing
    r = owner.get(f"/domains/{domain}/dmarc", params={"since": str(DAY + dt.timedelta(days=1))})
    assert r.json()["messages"] == 0
    # the same report again counts once
    again = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0], gzip.compress(xml),
                                                  "again.xml.gz"))
    assert again["status"] == "duplicate"
    assert owner.get(f"/domains/{domain}/dmarc", params={"since": str(DAY)}).json()["messages"] == 100
    # the other tenant sees nothing of it
    r = other.get(f"/domains/{domain}/dmarc")
    assert r.status_code in (403, 404) and not r.json().get("sources")
    assert other.get(f"/domains/{domain}/tls-reports").status_code in (403, 404)
    # dns-check: rua is the report address, the advice uses the measured rate
    owner.zones.write(domain, [("_dmarc", "TXT", f"v=DMARC1; p=none; rua=mailto:{addresses[0]}")])
    dmarc = next(e for e in owner.get(f"/domains/{domain}/dns-check").json()["records"] if e["record"] == "DMARC")
    assert f"rua=mailto:{addresses[0]}" in dmarc["expected"]
    assert dmarc["status"] == "ok" and "aligned pass 97.0 % < 98 %" in dmarc["next_step"], dmarc
    # bad ranges: 400, named field
    r = owner.get(f"/domains/{domain}/dmarc", params={"since": str(DAY), "until": str(DAY - dt.timedelta(days=1))})
    assert r.status_code == 400 and "since" in r.json()["detail"]
    assert owner.get(f"/domains/{domain}/dmarc", params={"since": "yesterday"}).status_code == 400


def test_tls_report_mailed_appears(tenant, mail_report, addresses):
    domain = tenant.domain()
    rid = f"{DAY}T00:00:00Z_{uuid.uuid4().hex}"
    row = mail_report(addresses[1], report_mail("tls@reporter.example", addresses[1],
                                                gzip.compress(tls_json(domain, rid, 120, 3)),
                                                f"reporter.example!{domain}!1!2.json.gz", "tlsrpt+gzip"))
    assert (row["status"], row["kind"]) == ("stored", "smtp_tls"), row
    r = tenant.get(f"/domains/{domain}/tls-reports", params={"since": str(DAY)})
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["successful_sessions"], s["failed_sessions"]) == (120, 3)
    assert s["reports"][0]["report_id"] == rid and s["reports"][0]["policy_type"] == "sts"
    assert s["reports"][0]["failure_details"][0]["result_type"] == "certificate-expired"


def _nothing_stored(sql, report_id):
    assert not sql("SELECT 1 FROM dmarc_reports WHERE report_id = %s", (report_id,))
    assert not sql("SELECT 1 FROM tls_reports WHERE report_id = %s", (report_id,))


def test_gzip_bomb_rejected(tenant, sql, mail_report, addresses):
    domain = tenant.domain()
    rid = uuid.uuid4().hex
    xml = aggregate_xml(domain, rid, [("192.0.2.10", 1, "pass", "none")])
    # a valid report followed by 200 MB of blanks: about 200 KB compressed
    bomb = gzip.compress(xml + b" " * (200 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024
    row = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0], bomb, "bomb.xml.gz"))
    assert (row["status"], row["reason"]) == ("rejected", "too_large_decompressed"), row
    _nothing_stored(sql, rid)


def test_xml_entities_rejected(tenant, sql, mail_report, addresses):
    domain = tenant.domain()
    rid = uuid.uuid4().hex
    laughs = ('<!DOCTYPE feedback [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
    xml = aggregate_xml(domain, rid, [("192.0.2.10", 1, "pass", "none")], doctype=laughs)
    xml = xml.replace(b"<org_name>reporter.example</org_name>", b"<org_name>&c;</org_name>")
    row = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0], xml, "r.xml", "xml"))
    assert (row["status"], row["reason"]) == ("rejected", "xml_entities"), row
    _nothing_stored(sql, rid)


def test_oversized_mail_rejected(tenant, sql, mail_report, addresses):
    domain = tenant.domain()
    rid = uuid.uuid4().hex
    xml = aggregate_xml(domain, rid, [("192.0.2.10", 1, "pass", "none")])
    big = gzip.compress(xml) + os.urandom(3 * 1024 * 1024)   # REPORT_MAX_BYTES is 2 MiB by default
    row = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0], big, "big.xml.gz"))
    assert (row["status"], row["reason"]) == ("rejected", "too_large"), row
    _nothing_stored(sql, rid)


def test_malformed_report_rejected(tenant, sql, mail_report, addresses):
    row = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0],
                                                b"<feedback><report_metadata>", "r.xml", "xml"))
    assert (row["status"], row["reason"]) == ("rejected", "malformed"), row


def test_report_for_a_domain_not_hosted_or_a_pending_claim(tenant, sql, mail_report, addresses):
    claimed = tenant.domain(prove=False)       # a claim whose ownership is not proven
    for domain in (f"{uuid.uuid4().hex[:10]}.not-hosted.example", claimed):
        rid = uuid.uuid4().hex
        xml = aggregate_xml(domain, rid, [("192.0.2.10", 5, "pass", "none")])
        row = mail_report(addresses[0], report_mail("x@reporter.example", addresses[0], gzip.compress(xml),
                                                    "r.xml.gz"))
        assert (row["status"], row["reason"], row["domains"]) == ("rejected", "domain_not_hosted", [domain]), row
        _nothing_stored(sql, rid)
        tls = mail_report(addresses[1], report_mail("x@reporter.example", addresses[1],
                                                    gzip.compress(tls_json(domain, rid, 1, 1)), "r.json.gz",
                                                    "tlsrpt+gzip"))
        assert (tls["status"], tls["reason"]) == ("rejected", "domain_not_hosted"), tls
        _nothing_stored(sql, rid)


def test_database_failure_defers(devenv):
    """The report server answers 451 (Postfix defers and retries) when it
    cannot record the report: here a server of our own whose mail DB is gone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, MAILDB_DSN="postgresql://nobody:x@127.0.0.1:9/none", EMBOUX_API_KEY="-" * 16)
    proc = subprocess.Popen([str(pathlib.Path(sys.executable).with_name("emboux-connector")), "reports-lmtp",
                             "--listen", f"127.0.0.1:{port}"], env=env, stderr=subprocess.DEVNULL)
    try:
        until = time.monotonic() + DEADLINE
        while True:
            try:
                lmtp = smtplib.LMTP("127.0.0.1", port, timeout=30)
                break
            except OSError:
                assert time.monotonic() < until, "report server did not start"
                time.sleep(0.2)
        with lmtp:
            lmtp.ehlo_or_helo_if_needed()
            lmtp.mail("x@reporter.example")
            assert lmtp.rcpt("dmarc-reports@mail.emboux.test")[0] == 250
            assert lmtp.rcpt("tls-reports@mail.emboux.test")[0] == 452   # one recipient per delivery
            code, _text = lmtp.data(report_mail("x@reporter.example", "dmarc-reports@mail.emboux.test",
                                                b"<feedback/>", "r.xml", "xml"))
            assert code == 451
    finally:
        proc.terminate()
        proc.wait(30)
