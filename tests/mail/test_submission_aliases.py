"""Submission's own alias map (docker/postfix/pgsql-aliases-submission.cf, issue 15):
an outside address maps to itself so smtpd and cleanup stop after one lookup; hosted
addresses must keep every answer they had -- alias and catch-all expansion, and the
unlisted-recipient refusal at RCPT, which on submission pgsql-forwarding.cf now asks for
(emboux_unlisted) only for addresses of hosted domains and domain literals."""

import contextlib
import smtplib
import uuid

from stack_clients import Sink

PASSWORD = "correct horse 1"   # the default of tests/conftest.py Tenant.mailbox


def test_submission_expands_hosted_aliases_and_leaves_outside_addresses_alone(mail, tenant, devenv):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    bob = tenant.mailbox(domain, "bob")
    for source, destination in ((f"team@{domain}", f"{alice},{bob}"), (f"@{domain}", bob)):
        r = tenant.post("/aliases/", json={"domain_name": domain, "source": source, "destination": destination})
        assert r.status_code == 201, r.text
    outside = f"someone-{uuid.uuid4().hex[:8]}@example.org"
    subject = f"sa-{uuid.uuid4().hex[:12]}"
    msg = (f"From: {alice}\r\nTo: team@{domain}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject}@example.net>\r\n\r\nhello\r\n")
    s = mail.submission(alice, PASSWORD)
    try:
        refused = s.sendmail(alice, [f"team@{domain}", f"stray@{domain}", outside], msg)
    finally:
        s.quit()
    assert not refused, refused
    mail.wait_for(alice, PASSWORD, subject)        # the alias, expanded
    mail.wait_for(bob, PASSWORD, subject)          # the alias and the catch-all (one copy)
    # the outside address leaves as it was given, once
    sent = Sink(devenv["OUTBOUND_SINK_DIR"]).recipients(subject, 1)
    assert [r for m in sent for r in m["rcpt_tos"]] == [outside], sent


def test_submission_still_refuses_an_unknown_hosted_address_at_rcpt(mail, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    s = mail.submission(alice, PASSWORD)
    try:
        s.mail(alice)
        code, text = s.rcpt(f"nobody@{domain}")
        assert code == 550 and b"5.1.1" in text and b"User unknown" in text, (code, text)
        code, text = s.rcpt(f"someone-{uuid.uuid4().hex[:8]}@example.org")   # outside: accepted
        assert code == 250, (code, text)
        # this host's own address as a domain literal: Postfix's local class, still refused
        # (the map's self-answer skips literals; main.cf sends them to reject_unlisted_recipient)
        code, text = s.rcpt("postmaster@[127.0.0.1]")
        assert code == 550 and b"local delivery is disabled" in text, (code, text)
    finally:
        with contextlib.suppress(smtplib.SMTPException):
            s.quit()
