"""Inbound delivery through the real Postfix -> LMTP -> Dovecot, and no open relay."""

import smtplib
import uuid

import pytest

PASSWORD = "correct horse 1"   # the default of tests/conftest.py Tenant.mailbox


def test_mailbox_alias_and_catch_all(mail, api, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    bob = tenant.mailbox(domain, "bob")
    r = tenant.post("/aliases/", json={"domain_name": domain, "source": f"team@{domain}",
                                       "destination": f"{alice},{bob}"})
    assert r.status_code == 201, r.text
    r = tenant.post("/aliases/", json={"domain_name": domain, "source": f"@{domain}",
                                       "destination": bob})
    assert r.status_code == 201, r.text

    direct = mail.send(alice)                       # a real mailbox
    team = mail.send(f"team@{domain}")               # multi-recipient alias
    stray = mail.send(f"nobody-{domain[:6]}@{domain}")  # catch-all

    mail.wait_for(alice, PASSWORD, direct)
    mail.wait_for(alice, PASSWORD, team)
    mail.wait_for(bob, PASSWORD, team)
    mail.wait_for(bob, PASSWORD, stray)
    # the catch-all never swallows a real mailbox
    assert direct not in mail.subjects(bob, PASSWORD)
    assert stray not in mail.subjects(alice, PASSWORD)


def test_unknown_recipient_refused_without_catch_all(mail, tenant):
    domain = tenant.domain()
    tenant.mailbox(domain, "alice")
    code, text = mail.rcpt(f"nobody@{domain}")
    assert code == 550, text


def test_no_open_relay_even_from_loopback(mail, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    # a catch-all must not turn routed addresses into relaying either
    assert tenant.post("/aliases/", json={"domain_name": domain, "source": f"@{domain}",
                                          "destination": alice}).status_code == 201
    # an outside recipient, from an outside and from a hosted sender
    code, text = mail.rcpt("victim@example.org")
    assert code == 554 and b"Relay access denied" in text, (code, text)
    code, text = mail.rcpt("victim@example.org", sender=alice)
    assert code == 554, (code, text)
    # source-routing and percent tricks via a hosted domain
    for trick in (f"victim%example.org@{domain}", f"@{domain}:victim@example.org",
                  f"victim!example.org@{domain}", f'"victim@example.org"@{domain}',
                  "victim@example.org@[127.0.0.1]", "victim@[127.0.0.1]"):
        try:
            code, text = mail.rcpt(trick)
        except smtplib.SMTPException as e:
            code, text = 500, str(e).encode()
        assert code >= 500, (trick, code, text)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mail.send("victim@example.org")
    # nor on the submission port without authentication
    s = mail.submission()
    try:
        s.mail(alice)
        code, text = s.rcpt("victim@example.org")
        assert code >= 500, (code, text)
    finally:
        s.quit()


def test_submission_needs_starttls_then_auth(mail, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    bob = tenant.mailbox(domain, "bob")
    plain = smtplib.SMTP(mail.smtp_host, mail.submission_port, timeout=30)
    plain.ehlo("client.example.net")
    assert not plain.has_extn("auth"), "AUTH offered before STARTTLS"
    plain.quit()

    s = mail.submission(alice, PASSWORD)
    subject = "submitted-" + domain[:10]
    assert not s.sendmail(alice, [bob], f"From: {alice}\r\nSubject: {subject}\r\n\r\nhi\r\n")
    # an authenticated user may not send as another mailbox
    # (refused at RCPT: Postfix delays sender restrictions until then)
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused)) as exc:
        s.sendmail(bob, [alice], "Subject: forged\r\n\r\nx\r\n")
    assert "not owned by user" in str(exc.value)
    s.quit()
    mail.wait_for(bob, PASSWORD, subject)


def test_new_domain_accepted_by_a_warm_smtpd(mail, tenant):
    """smtpd caches address classification: a domain created after warm smtpd
    processes refused one of its addresses is still accepted at once."""
    domain = f"{uuid.uuid4().hex[:10]}.emboux-test.net"
    held = mail.mx()
    assert mail.rcpt(f"alice@{domain}", conn=held)[0] == 554          # not ours yet
    for _ in range(5):
        assert mail.rcpt(f"alice@{domain}")[0] == 554
    tenant.domain(domain)
    alice = tenant.mailbox(domain, "alice")
    assert mail.rcpt(alice, conn=held)[0] == 250
    held.quit()
    for _ in range(5):
        assert mail.rcpt(alice)[0] == 250
        assert mail.rcpt(f"nobody@{domain}")[0] == 550
    mail.wait_for(alice, PASSWORD, mail.send(alice))


def test_imap_starttls_with_the_generated_certificate(mail, tenant, devenv):
    import imaplib
    import ssl
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    ctx = ssl.create_default_context(cafile=devenv["MAIL_TLS_CERT"])
    # verified: the certificate names MAIL_HOSTNAME, localhost and 127.0.0.1
    m = imaplib.IMAP4(mail.imap_host, mail.imap_port, timeout=30)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=ctx)
    typ, _ = m.login(alice, PASSWORD)
    assert typ == "OK"
    m.logout()
