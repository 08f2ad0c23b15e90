"""Implicit TLS, what mail clients expect and the mailbox form advertises:
submission on SUBMISSIONS_PORT (465 in production) and IMAPS on IMAPS_PORT
(993), verified against the stack's certificate (MAIL_TLS_CERT), with the
same rules as 587 and 143."""

import imaplib
import smtplib
import socket
import ssl

import pytest

PASSWORD = "correct horse 1"


@pytest.fixture
def tls(devenv):
    for key in ("SUBMISSIONS_PORT", "IMAPS_PORT", "MAIL_TLS_CERT"):
        if not devenv.get(key):
            pytest.fail(f"{key} missing in var/dev.env: the mail stack is not up (./dev up)")
    return ssl.create_default_context(cafile=devenv["MAIL_TLS_CERT"])


def test_submit_on_465_and_read_on_993_with_a_verified_certificate(mail, tenant, devenv, tls):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    bob = tenant.mailbox(domain, "bob")
    host = mail.smtp_host
    with smtplib.SMTP_SSL(host, int(devenv["SUBMISSIONS_PORT"]), context=tls, timeout=30) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("auth")
        s.login(alice, PASSWORD)
        subject = "implicit-tls-" + domain[:10]
        assert not s.sendmail(alice, [bob], f"From: {alice}\r\nTo: {bob}\r\nSubject: {subject}\r\n\r\nhi\r\n")
        # the same sender rule as 587: not as another mailbox
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused)) as exc:
            s.sendmail(bob, [alice], "Subject: forged\r\n\r\nx\r\n")
        assert "not owned by user" in str(exc.value)
    m = imaplib.IMAP4_SSL(mail.imap_host, int(devenv["IMAPS_PORT"]), ssl_context=tls, timeout=30)
    assert m.login(bob, PASSWORD)[0] == "OK"
    m.logout()
    mail.wait_for(bob, PASSWORD, subject)


def test_465_relays_nothing_without_auth_and_993_refuses_a_wrong_password(mail, tenant, devenv, tls):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    with smtplib.SMTP_SSL(mail.smtp_host, int(devenv["SUBMISSIONS_PORT"]), context=tls, timeout=30) as s:
        s.ehlo("anonymous.example.net")
        with pytest.raises((smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)):
            s.sendmail(alice, ["victim@example.org"], "Subject: relay\r\n\r\nx\r\n")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(alice, "wrong password")
    m = imaplib.IMAP4_SSL(mail.imap_host, int(devenv["IMAPS_PORT"]), ssl_context=tls, timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(alice, "wrong password")
    m.shutdown()


def test_465_speaks_tls_first_not_plaintext(mail, devenv):
    """A plaintext client gets no SMTP banner: the port expects a TLS ClientHello."""
    with socket.create_connection((mail.smtp_host, int(devenv["SUBMISSIONS_PORT"])), timeout=5) as sock:
        sock.settimeout(3)
        try:
            first = sock.recv(100)
        except TimeoutError:
            first = b""
    assert not first.startswith(b"220")
