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


def wait_until(fn, timeout=10, interval=0.05):
    """fn() until it returns a true value or `timeout` s have passed; its last value (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class DomainOutbound:
    """The outbound settings and counters of `self.domain`, through the master's `self.api`
    (tests/conftest.py's Api)."""

    def set(self, **fields):
        r = self.api.put(f"/domains/{self.domain}/outbound", json=fields)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self):
        r = self.api.get(f"/domains/{self.domain}/outbound")
        assert r.status_code == 200, r.text
        return r.json()

    def settle(self, **expected):
        """The outbound state once the counters show `expected`: the daemon
        confirms what it served from its lease in the DB within moments."""
        state = wait_until(lambda: (lambda s: s if all(s[k] == v for k, v in expected.items()) else None)(
            self.get()), timeout=5)
        if state is None:
            state = self.get()
            got = {k: state[k] for k in expected}
            assert got == expected, f"outbound counters {got}, expected {expected}; whole state {state}"
        return state


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
