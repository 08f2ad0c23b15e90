"""Brute force is slowed (issue 9), with the production templates: Postfix's anvil
refuses the 21st AUTH a minute from one address, right password or not; Dovecot
delays every failure and makes an address that keeps failing wait before each next
attempt is even checked. Each test attacks from a fresh loopback address (every
127.x.y.z reaches the servers on 127.0.0.1), so the rest of the suite, which logs
in from 127.0.0.1 (exempt: the host itself), is not slowed."""

import concurrent.futures
import imaplib
import random
import smtplib
import socket

import pytest

from stack_clients import EHLO, insecure_tls
import contextlib

PASSWORD = "correct horse 1"


def fresh_address():
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@pytest.fixture
def victim(api, tenant, domain_name):
    """A mailbox on a domain the operator vouched for (it works at once)."""
    r = api.post("/domains/", json={"name": domain_name, "partner_ref": tenant.partner_ref})
    assert r.status_code == 201, r.text
    return tenant.mailbox(domain_name, "victim", password=PASSWORD)


def smtp_auth(devenv, source, user, password, timeout=60):
    """(code, text) of AUTH on the submission port, from `source`."""
    s = smtplib.SMTP(devenv.get("SMTP_HOST") or "127.0.0.1", int(devenv["SUBMISSION_PORT"]),
                     timeout=timeout, source_address=(source, 0))
    try:
        s.ehlo(EHLO)
        s.starttls(context=insecure_tls())
        s.ehlo(EHLO)
        try:
            code, text = s.login(user, password)
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text.decode(errors="replace") if isinstance(text, bytes) else text
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            s.quit()


def imap_login(devenv, source, user, password, timeout=60):
    """True / False (refused); socket.timeout when no answer within `timeout`."""
    class FromSource(imaplib.IMAP4):
        def _create_socket(self, t):
            return socket.create_connection((self.host, self.port), t, source_address=(source, 0))
    m = FromSource(devenv.get("IMAP_HOST") or "127.0.0.1", int(devenv["IMAP_PORT"]), timeout=timeout)
    try:
        m.starttls(insecure_tls())     # only 127.0.0.1 talking to itself counts as secured
        try:
            m.login(user, password)
        except imaplib.IMAP4.error:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            m.shutdown()


def test_30_failed_smtp_auths_then_the_right_password_is_refused(devenv, victim):
    attacker = fresh_address()
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda i: smtp_auth(devenv, attacker, victim, f"guess {i}"), range(30)))
    assert all(code != 235 for code, _ in results), results
    throttled = [text for code, text in results if code == 450]
    # 20 AUTH commands a minute per address reach Dovecot; the rest is refused by anvil
    assert len(throttled) >= 10 and all("too many AUTH commands" in t for t in throttled), results
    # the right password from the same address is refused too: a guess that is
    # right cannot be told from the others
    code, text = smtp_auth(devenv, attacker, victim, PASSWORD)
    assert code == 450 and "too many AUTH commands" in text, (code, text)
    # another address is not affected, nor is the host itself
    assert smtp_auth(devenv, fresh_address(), victim, PASSWORD)[0] == 235
    assert smtp_auth(devenv, "127.0.0.1", victim, PASSWORD)[0] == 235


def test_30_failed_imap_logins_then_the_right_password_waits(devenv, victim):
    attacker = fresh_address()
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda i: imap_login(devenv, attacker, victim, f"guess {i}"), range(30)))
    assert results == [False] * 30
    # the right password is not accepted at once: Dovecot holds the attempt
    # (penalty of this address) before checking it
    with pytest.raises(socket.timeout):
        imap_login(devenv, attacker, victim, PASSWORD, timeout=1)
    # ... then it is: the owner is slowed, not locked out
    assert imap_login(devenv, attacker, victim, PASSWORD) is True
    # other addresses, and the host itself, are not refused because of it
    assert imap_login(devenv, fresh_address(), victim, PASSWORD) is True
    assert imap_login(devenv, "127.0.0.1", victim, PASSWORD) is True


def test_the_host_itself_fails_without_delay(devenv, victim):
    """127.0.0.1 is exempt (dovecot-sql-local.conf.ext): its failures are
    answered at once and leave no penalty, so a right password follows at once."""
    # (a delayed failure would take 2 s, a penalised attempt 2 to 15 s more)
    for i in range(5):
        assert imap_login(devenv, "127.0.0.1", victim, f"wrong {i}", timeout=1.9) is False
        assert smtp_auth(devenv, "127.0.0.1", victim, f"wrong {i}", timeout=1.9)[0] == 535
    assert imap_login(devenv, "127.0.0.1", victim, PASSWORD, timeout=1.9) is True
