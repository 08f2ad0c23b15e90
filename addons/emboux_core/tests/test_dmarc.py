# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 14, the domain form's DMARC reports tab against the running stack: an
aggregate report mailed to the platform's report address through port 25 is
read by `Read the reports`, with its sources and the warning below 98 %
aligned pass; a domain with no report shows none and no warning."""

import datetime as dt
import gzip
import os
import smtplib
import time
import uuid
from email.message import EmailMessage

from .common import EmbouxCase, maildb


def _report(domain, records):
    begin = int(dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1), dt.time(),
                                    dt.UTC).timestamp())
    rows = "".join(
        f"<record><row><source_ip>{ip}</source_ip><count>{n}</count><policy_evaluated><disposition>none"
        f"</disposition><dkim>{res}</dkim><spf>{res}</spf></policy_evaluated></row><identifiers><header_from>"
        f"{domain}</header_from></identifiers><auth_results><spf><domain>"
        f"{domain if res == 'pass' else 'elsewhere.example'}</domain><result>{res}</result></spf></auth_results>"
        f"</record>" for ip, n, res in records)
    return (f'<?xml version="1.0"?><feedback><report_metadata><org_name>reporter.example</org_name>'
            f"<email>r@reporter.example</email><report_id>{uuid.uuid4().hex}</report_id><date_range>"
            f"<begin>{begin}</begin><end>{begin + 86399}</end></date_range></report_metadata><policy_published>"
            f"<domain>{domain}</domain><p>none</p></policy_published>{rows}</feedback>").encode()


def mail_report(domain, records):
    """Mail an aggregate report through port 25 and wait until it is recorded."""
    sender = f"reporter-{uuid.uuid4().hex[:10]}@reporter-net.example"
    rcpt = f"dmarc-reports@{os.environ.get('MAIL_HOSTNAME') or 'mail.emboux.test'}"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, rcpt, f"Report Domain: {domain}"
    msg.set_content("report")
    msg.add_attachment(gzip.compress(_report(domain, records)), maintype="application", subtype="gzip",
                       filename=f"reporter.example!{domain}!1!2.xml.gz")
    with smtplib.SMTP(os.environ.get("SMTP_HOST") or "127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=60) as s:
        s.send_message(msg, from_addr=sender, to_addrs=[rcpt])
    until = time.monotonic() + 60
    while time.monotonic() < until:
        rows = maildb("SELECT status, reason FROM report_intake WHERE sender = %s", (sender,))
        if rows:
            return rows[0]
        time.sleep(0.2)
    raise AssertionError(f"the report from {sender} was not delivered to the report server in 60 s")


class TestDmarcReports(EmbouxCase):
    def test_report_mailed_shows_in_the_tab_with_the_warning(self):
        dom = self.hosted_domain()
        self.assertEqual(mail_report(dom.name, [("192.0.2.20", 95, "pass"), ("198.51.100.9", 5, "fail")]),
                         ("stored", None))
        dom.action_refresh_dmarc()
        self.assertTrue(dom.dmarc_checked_at)
        self.assertEqual((dom.dmarc_reports, dom.dmarc_messages), (1, 100))
        self.assertAlmostEqual(dom.dmarc_aligned_pass, 95.0)
        self.assertTrue(dom.dmarc_below_target)
        src = {s.source_ip: s for s in dom.dmarc_source_ids}
        self.assertEqual((src["192.0.2.20"].messages, src["192.0.2.20"].dmarc_aligned_pass), (95, 95))
        self.assertEqual((src["198.51.100.9"].dmarc_aligned_fail, src["198.51.100.9"].spf_aligned_fail), (5, 5))

    def test_no_report_no_warning(self):
        dom = self.hosted_domain()
        dom.action_refresh_dmarc()
        self.assertEqual((dom.dmarc_messages, dom.dmarc_below_target), (0, False))
        self.assertFalse(dom.dmarc_source_ids)
