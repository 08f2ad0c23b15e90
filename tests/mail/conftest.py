"""Helpers for the end-to-end mail-server tests: SMTP (MX and submission) and
IMAP against the Postfix and Dovecot that ./dev up runs (see var/dev.env).

The shared fixtures (devenv, api, make_tenant, sql) come from tests/conftest.py.
"""

import imaplib
import smtplib
import time
import uuid

import pytest

from stack_clients import submission_session


class Mail:
    def __init__(self, env):
        self.env = env
        self.smtp_host = env.get("SMTP_HOST") or "127.0.0.1"
        self.smtp_port = int(env["SMTP_PORT"])
        self.submission_port = int(env["SUBMISSION_PORT"])
        self.imap_host = env.get("IMAP_HOST") or "127.0.0.1"
        self.imap_port = int(env["IMAP_PORT"])

    # --- SMTP -------------------------------------------------------------------
    def mx(self):
        s = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30)
        s.ehlo("tester.example.net")
        return s

    def rcpt(self, rcpt, sender="someone@example.net", size=None, conn=None):
        """(code, text) of RCPT TO on the inbound port (a new connection unless conn)."""
        s = conn or self.mx()
        try:
            s.rset()
            code, msg = s.mail(sender, [f"SIZE={size}"] if size else [])
            assert code == 250, (code, msg)
            return s.rcpt(rcpt)
        finally:
            if conn is None:
                s.quit()

    def send(self, rcpts, subject=None, body="hello\r\n", sender="someone@example.net"):
        """Send through the MX; returns the subject. Raises on any refusal."""
        subject = subject or f"t-{uuid.uuid4().hex[:12]}"
        rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
        msg = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject}@example.net>\r\n\r\n{body}")
        with self.mx() as s:
            refused = s.sendmail(sender, rcpts, msg)
        assert not refused, refused
        return subject

    def submission(self, user=None, password=None):
        return submission_session(self.smtp_host, self.submission_port, user, password)

    # --- IMAP -------------------------------------------------------------------
    def imap(self, user, password):
        m = imaplib.IMAP4(self.imap_host, self.imap_port, timeout=30)
        m.login(user, password)
        return m

    def login_ok(self, user, password):
        try:
            m = self.imap(user, password)
        except imaplib.IMAP4.error:
            return False
        m.logout()
        return True

    def auth_ok(self, user, password):
        s = self.submission()
        try:
            s.login(user, password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False
        finally:
            s.quit()

    def subjects(self, user, password, mailbox="INBOX"):
        m = self.imap(user, password)
        try:
            m.select(mailbox)
            typ, data = m.search(None, "ALL")
            out = []
            for num in data[0].split():
                typ, parts = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                raw = parts[0][1].decode()
                out.append(raw.split(":", 1)[1].strip() if ":" in raw else "")
            return out
        finally:
            m.logout()

    def wait_for(self, user, password, subject, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            got = self.subjects(user, password)
            if subject in got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{subject} not delivered to {user} within {timeout}s; inbox: {got}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def mail(devenv):
    for key in ("SMTP_PORT", "SUBMISSION_PORT", "IMAP_PORT"):
        if not devenv.get(key):
            pytest.fail(f"{key} missing in var/dev.env: the mail stack is not up (./dev up)")
    return Mail(devenv)


@pytest.fixture
def mailserver_module(devenv, monkeypatch):
    """emboux_connector.mailserver with the dev stack's settings in os.environ."""
    for key in ("SMTP_HOST", "SMTP_PORT", "IMAP_HOST", "IMAP_PORT", "DOVECOT_CONFIG",
                "VMAIL_DIR", "MAILDB_DSN"):
        if devenv.get(key):
            monkeypatch.setenv(key, devenv[key])
    from emboux_connector import mailserver
    return mailserver


PASSWORD = "correct horse 1"
