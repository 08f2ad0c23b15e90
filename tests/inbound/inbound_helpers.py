"""Helpers of tests/inbound (see conftest.py): outside senders published in
the test DNS, and the MX/IMAP side of the mail server."""

import base64
import email
import email.utils
import imaplib
import smtplib
import time
import uuid

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PASSWORD = "correct horse 1"   # tests/conftest.py Tenant.mailbox's default
GTUBE_REJECT = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_JUNK = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Sender:
    """An outside sending domain published in the test DNS: SPF allows (or
    not) 127.0.0.1, a DKIM key under selector 'sel', a DMARC policy."""

    def __init__(self, zones, policy="reject", spf_allows_us=True, dkim_key=True):
        self.domain = f"{unique('s')}.sender-test.net"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=1024) if dkim_key else None
        records = [("@", "TXT", "v=spf1 ip4:127.0.0.0/8 -all" if spf_allows_us else "v=spf1 ip4:192.0.2.1 -all"),
                   ("_dmarc", "TXT", f"v=DMARC1; p={policy}")]
        if self.key:
            pub = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
            records.append(("sel._domainkey", "TXT", "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()))
        zones.write(self.domain, records)

    def message(self, rcpt, subject=None, body=None, local="news",
                sign=True, extra_headers="", bare=False):
        subject = subject or f"t-{uuid.uuid4().hex[:12]}"
        # a body of its own: greylisting and Bayes key on the body
        body = body or f"Hello, this is a normal message ({subject}).\r\n"
        frm = f"{local}@{self.domain}"
        raw = (f"From: {frm}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
               + ("" if bare else f"Date: {email.utils.formatdate()}\r\n"
                                  f"Message-ID: <{uuid.uuid4().hex}@{self.domain}>\r\n")
               + f"{extra_headers}"
               f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()
        if sign and self.key:
            pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
            sig = dkim.sign(raw, b"sel", self.domain.encode(), pem,
                            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
            raw = sig + raw
        return frm, subject, raw


def until(check, timeout=60, what="condition"):
    """check() until it returns a true value (returned), or fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.3)


class Inbound:
    def __init__(self, env):
        self.env = env
        self.scanner = f"http://127.0.0.1:{env['RSPAMD_NORMAL_PORT']}"
        self.host = env.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(env["SMTP_PORT"])
        self.imap_port = int(env["IMAP_PORT"])

    def send(self, sender, rcpts, raw):
        """Send raw through the MX. Returns (code, text) of the refusal, or
        (250, b'') when accepted."""
        rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
        with smtplib.SMTP(self.host, self.port, timeout=60) as s:
            s.ehlo("mx.sender-test.net")
            try:
                refused = s.sendmail(sender, rcpts, raw)
            except smtplib.SMTPDataError as e:
                return e.smtp_code, e.smtp_error
            except smtplib.SMTPSenderRefused as e:
                return e.smtp_code, e.smtp_error
            except smtplib.SMTPRecipientsRefused as e:
                (code, text), = e.recipients.values()
                return code, text
        assert not refused, refused
        return 250, b""

    def scan(self, sender, rcpt, raw):
        """Rspamd's verdict on raw (its scanner worker, the same settings map as
        the milter): {"action", "score", "symbols"}."""
        import requests
        r = requests.post(f"{self.scanner}/checkv2", data=raw, timeout=30,
                          headers={"From": sender, "Rcpt": rcpt, "IP": "127.0.0.1", "Helo": "mx.sender-test.net"})
        r.raise_for_status()
        return r.json()

    def imap(self, user):
        m = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        m.login(user, PASSWORD)
        return m

    def find(self, user, subject, mailbox="INBOX"):
        """The message with this subject in mailbox (bytes), or None."""
        m = self.imap(user)
        try:
            typ, _ = m.select(f'"{mailbox}"')
            if typ != "OK":
                return None
            typ, data = m.search(None, "SUBJECT", f'"{subject}"')
            nums = data[0].split()
            if not nums:
                return None
            typ, parts = m.fetch(nums[-1], "(BODY.PEEK[])")
            return parts[0][1]
        finally:
            m.logout()

    def wait(self, user, subject, mailbox="INBOX", timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            got = self.find(user, subject, mailbox)
            if got is not None:
                return email.message_from_bytes(got)
            if time.monotonic() > deadline:
                raise AssertionError(f"{subject} not in {user}'s {mailbox} within {timeout}s")
            time.sleep(0.2)

    def where(self, user, subject, mailboxes=("INBOX", "Junk"), timeout=30):
        """(mailbox, message) of the first mailbox the message lands in."""
        deadline = time.monotonic() + timeout
        while True:
            for box in mailboxes:
                got = self.find(user, subject, box)
                if got is not None:
                    return box, email.message_from_bytes(got)
            if time.monotonic() > deadline:
                raise AssertionError(f"{subject} delivered to none of {mailboxes} of {user} within {timeout}s")
            time.sleep(0.2)


