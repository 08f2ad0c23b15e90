"""Clients of the running dev stack shared by the test suites (tests/ is on
sys.path through tests/conftest.py)."""

import smtplib
import ssl

EHLO = "client.example.net"


def insecure_tls():
    """A TLS context for the dev stack's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def submission_session(host, port, user=None, password=None, timeout=30):
    """An SMTP session on the submission port after STARTTLS, logged in when
    a user is given. The caller closes it (or uses it in a with block)."""
    s = smtplib.SMTP(host, port, timeout=timeout)
    s.ehlo(EHLO)
    s.starttls(context=insecure_tls())
    s.ehlo(EHLO)
    if user:
        s.login(user, password)
    return s
