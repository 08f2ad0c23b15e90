"""Clients of the running dev stack shared by the test suites (tests/ is on
sys.path through tests/conftest.py) and by bench/ (which puts it there)."""

import smtplib
import socket
import ssl
import time

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


# --- local ports (tests and bench/) ---------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
