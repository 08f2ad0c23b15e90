"""`emboux-connector reports-lmtp`: the LMTP server Postfix hands report mail
to (the transport `emboux-reports` of the report addresses, docker/postfix
main.cf; docs/reports.md).

LMTP rather than a pipe: the mail image has no Python, and Postfix's LMTP
client already does the right thing with every answer -- 250 delivered, 4xx
deferred and retried, a dead server deferred. So the answers are:
  250  the report was stored, or recorded as rejected (too large, a bomb,
       entities, malformed, a domain not hosted): accepted either way, never
       bounced (a bounce to a reporting robot is a loop at best);
  451  the database failed: nothing recorded, Postfix retries later;
  452  for a second recipient in one transaction (Postfix sends it again):
       aiosmtpd answers DATA once, LMTP wants one answer per recipient, so
       main.cf also sets emboux-reports_destination_recipient_limit = 1.
Listen on loopback or the private network of the mail servers only: whoever
connects can record reports (which then still need a hosted domain).
"""

import asyncio
import logging
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP

from . import reports, settings
from .db import Database

log = logging.getLogger("emboux.reports")


class ReportHandler:
    def __init__(self, db):
        self.db = db

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if envelope.rcpt_tos:
            return "452 4.5.3 One recipient per transaction"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        raw = envelope.original_content or envelope.content
        try:
            out = await loop.run_in_executor(None, self._ingest, raw, envelope.rcpt_tos[0], envelope.mail_from)
        except Exception:  # noqa: BLE001 -- the DB (or anything) failed: defer, never drop
            log.exception("report not recorded (deferred)")
            return "451 4.3.0 Report not recorded, try again later"
        log.info("report %s: %s %s %s %s", out["id"], out["status"], out["kind"], out["reason"] or "",
                 ",".join(out["domains"]))
        if out["status"] == "rejected":
            return f"250 2.0.0 Report {out['id']} received, not stored ({out['reason']})"
        return f"250 2.0.0 Report {out['id']} {out['status']}"

    def _ingest(self, raw, recipient, sender):
        with self.db.transaction() as cur:
            return reports.ingest(cur, raw, recipient, sender)


class LmtpController(Controller):
    def factory(self):
        return LMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        # LMTP answers no HELO/EHLO; the greeting alone tells the server is up.
        import socket
        with socket.create_connection((self.hostname, self.port), timeout=self.ready_timeout) as s:
            s.recv(1024)


def serve(listen):
    host, _, port = listen.rpartition(":")
    db = Database(settings.get("MAILDB_DSN"), maxconn=2)
    # The size check is ours (REPORT_MAX_BYTES, recorded as a rejection):
    # aiosmtpd's own limit would answer 552 and Postfix would bounce. Postfix's
    # message_size_limit bounds what arrives.
    ctl = LmtpController(ReportHandler(db), hostname=host or "127.0.0.1", port=int(port),
                         data_size_limit=None, server_hostname=settings.get("MAIL_HOSTNAME"),
                         ident="emboux-reports")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ctl.start()
    log.info("reports LMTP on %s:%s (addresses %s)", ctl.hostname, ctl.port, ", ".join(sorted(
        reports.report_addresses())))
    stop.wait()
    ctl.stop()
    return 0
