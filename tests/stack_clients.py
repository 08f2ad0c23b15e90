"""Clients of the running dev stack shared by the test suites (tests/ is on
sys.path through tests/conftest.py) and by bench/ (which puts it there)."""

import glob
import json
import os
import random
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


class Sink:
    """What the dev stack's outbound SMTP sink (OUTBOUND_SINK_DIR; the
    providers' relays and the internet) captured: one JSON file a message,
    {mail_from, rcpt_tos, auth, data, ...} (tests/standins/smtp_sink.py)."""

    def __init__(self, directory):
        self.dir = directory

    def messages(self):
        out = []
        for f in sorted(glob.glob(os.path.join(self.dir, "*.json"))):
            try:
                with open(f) as fh:
                    out.append(json.load(fh))
            except (OSError, ValueError):
                continue   # removed meanwhile (the sink writes each file whole, by rename)
        return out

    def with_marker(self, marker):
        """The messages whose text holds `marker`, oldest first."""
        return [m for m in self.messages() if marker in m["data"]]

    def wait_for(self, needle, timeout=20):
        """The latest message holding `needle`, once one arrived; AssertionError after `timeout` s."""
        found = wait_until(lambda: self.with_marker(needle), timeout=timeout, interval=0.2)
        if not found:
            raise AssertionError(f"no message containing {needle!r} reached the sink in {timeout}s")
        return found[-1]

    def recipients(self, marker, expect, timeout=20):
        """The messages that left with `marker`, once `expect` recipients did (else those there are)."""
        got = wait_until(lambda: (lambda ms: ms if sum(len(m["rcpt_tos"]) for m in ms) >= expect else None)(
            self.with_marker(marker)), timeout=timeout)
        return got or self.with_marker(marker)


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


# --- spam campaigns (tests of the filter) ------------------------------------------
CAMPAIGN_WORDS = ("cheap", "watches", "pills", "crypto", "gains", "click", "link", "claim", "prize", "midnight",
                  "offer", "exclusive", "winner", "bonus", "casino", "loan", "credit", "refund", "invoice",
                  "urgent", "account", "verify", "password", "bank", "transfer", "million", "dollars",
                  "inheritance", "lottery", "diet", "miracle", "free", "shipping", "discount")
# English stop words between them: Rspamd decides a text's language by its
# stop words first, and hashes (fuzzy) and tokenises (Bayes) the words
# stemmed for that language. The spam words alone were detected now as
# English, now as Afrikaans or German, so a copy was hashed differently
# from the copy a user had flagged and went through (CI, 1 December 2026).
CAMPAIGN_GLUE = ("the", "and", "you", "your", "of", "to", "for", "with", "this", "is", "are", "will", "our",
                 "now", "have", "not", "we", "it", "on", "at")


def campaign_text(seed):
    """A spam text of its own (fuzzy hashes match similar texts: the words
    in this seed's order, about 2 KB; they want 1 KB), always detected as
    English."""
    rng = random.Random(seed)
    return " ".join(f"{rng.choice(CAMPAIGN_GLUE)} {rng.choice(CAMPAIGN_WORDS)}"
                    + (str(rng.randint(0, 99)) if rng.random() < 0.3 else "") for _ in range(220))


# --- local ports (tests and bench/) ---------------------------------------------
def fresh_loopback():
    """A random 127.x.y.z: every one reaches a listener on 127.0.0.1. The
    connector counts failed authentications per client address (throttle.py,
    once for all its workers): a test that fails on purpose does it from an
    address of its own, so that the rest of the suite (127.0.0.1) is never
    slowed by it."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def session_from(address):
    """A requests.Session whose connections leave from `address`."""
    import requests   # (bench/ imports this module without needing requests)

    class FromAddress(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["source_address"] = (address, 0)
            super().init_poolmanager(*args, **kwargs)
    session = requests.Session()
    session.mount("http://", FromAddress())
    session.mount("https://", FromAddress())
    return session


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
