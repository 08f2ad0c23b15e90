"""Outbound scanning on submission: an authenticated user's spam is refused
(5xx) and counted toward the guillotine that bounces and complaints feed; a
hacked account ends with its domain's outbound suspended, the reason
recorded -- and nobody else's.

The spam is known the way the platform learns it: a user who received the
campaign moved it into Junk (IMAPSieve -> Rspamd's Bayes and the platform's
fuzzy storage); the hacked account's copies then score EMBOUX_FUZZY_SPAM.
GTUBE is refused too, but skips every rule (the report included)."""

import smtplib
import uuid

from stack_clients import campaign_text, submission_session

from inbound_helpers import GTUBE_REJECT, PASSWORD, unique, until
from test_junk import _move

SPAM_LIMIT = 5   # GUILLOTINE_SPAM_LIMIT's default (the dev stack does not set it)


def submit(devenv, user, rcpt, body):
    """(code, text) of one message submitted as user (250 when accepted)."""
    subject = f"ob-{uuid.uuid4().hex[:12]}"
    msg = (f"From: {user}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject}@{user.split('@')[1]}>\r\n\r\n{body}\r\n")
    with submission_session(devenv.get("SMTP_HOST") or "127.0.0.1", int(devenv["SUBMISSION_PORT"]),
                            user, PASSWORD) as s:
        try:
            s.sendmail(user, [rcpt], msg)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode(errors="replace")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            return code, text.decode(errors="replace")
    return 250, ""


def learn_campaign(inbound, make_sender, mailbox, text):
    """A hosted user receives the campaign and moves it into Junk."""
    frm, subject, raw = make_sender(policy="none").message(mailbox, body=text + "\r\n")
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    assert inbound.where(mailbox, subject)[0] == "INBOX"
    _move(inbound, mailbox, subject, "INBOX", "Junk")


def outbound_state(api, domain):
    r = api.get(f"/domains/{domain}/outbound")
    assert r.status_code == 200, r.text
    return r.json()


def test_hacked_account_spam_is_refused_and_suspends_its_domain(devenv, api, tenant, make_tenant, inbound,
                                                                 make_sender, mailbox):
    domain = tenant.domain()
    user = tenant.mailbox(domain)
    bystander = make_tenant()
    other = bystander.domain()
    other_user = bystander.mailbox(other)
    text = campaign_text(unique("c"))
    # ordinary mail leaves, the campaign too while nobody has flagged it
    assert submit(devenv, user, "friend@example.org", "See you tomorrow at ten.")[0] == 250
    # a user of the platform receives the campaign and moves it into Junk
    learn_campaign(inbound, make_sender, mailbox, text)
    # the account spams: refused at end of data (once the hash is stored)
    code, reply = until(lambda: (lambda c: c if c[0] != 250 else None)(
        submit(devenv, user, "victim@example.org", text)), what="the campaign refused")
    assert code == 554 and "5.7.1" in reply, (code, reply)
    # ... and so is every later copy, until the refusals add up to the guillotine
    for _ in range(SPAM_LIMIT - 1):
        code, reply = submit(devenv, user, "victim@example.org", text)
        assert code == 554 and "5.7.1" in reply, (code, reply)
    state = until(lambda: (lambda s: s if s["outbound_status"] == "suspended" else None)(outbound_state(api, domain)),
                  what="the domain's outbound suspended")
    assert "refused as spam" in state["outbound_status_reason"], state
    # now even clean mail is refused, with the reason
    code, text = until(lambda: (lambda c: c if c[0] != 250 else None)(
        submit(devenv, user, "friend@example.org", "Sorry about that.")), what="the suspension enforced")
    assert code // 100 == 5 and "suspended" in text, (code, text)
    # another tenant's domain is untouched and still sends
    assert outbound_state(api, other)["outbound_status"] == "active"
    assert submit(devenv, other_user, "friend@example.org", "Hello from next door.")[0] == 250


def test_gtube_is_refused_on_submission(devenv, tenant):
    domain = tenant.domain()
    user = tenant.mailbox(domain)
    code, text = submit(devenv, user, "victim@example.org", GTUBE_REJECT)
    assert code == 554 and "5.7.1" in text, (code, text)


def test_one_spam_refused_does_not_suspend(devenv, api, tenant, inbound, make_sender, mailbox):
    domain = tenant.domain()
    user = tenant.mailbox(domain)
    text = campaign_text(unique("c"))
    learn_campaign(inbound, make_sender, mailbox, text)
    code, reply = until(lambda: (lambda c: c if c[0] != 250 else None)(
        submit(devenv, user, "victim@example.org", text)), what="the campaign refused")
    assert code == 554, (code, reply)
    # the report is counted (spam_count is what the guillotine judged) ...
    import psycopg2
    import psycopg2.extras
    with psycopg2.connect(devenv["MAILDB_DSN"]) as conn, \
            conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        def counted():
            cur.execute("SELECT c.spam_count FROM outbound_counters c JOIN domains d ON d.id = c.domain_id "
                        "WHERE d.name = %s", (domain,))
            conn.commit()
            return cur.fetchone()["spam_count"] == 1
        until(counted, what="the refusal counted")
    # ... and one is not a hacked account
    assert outbound_state(api, domain)["outbound_status"] == "active"
    assert submit(devenv, user, "friend@example.org", "A normal note.")[0] == 250


def test_the_report_endpoint_is_for_rspamd_only(devenv, tenant):
    import http.client
    import json
    from urllib.parse import urlsplit
    domain = tenant.domain()
    user = tenant.mailbox(domain)
    u = urlsplit(devenv["EMBOUX_API_URL"])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10, source_address=("127.0.0.2", 0))
    conn.request("POST", "/mailserver/rspamd/outbound-spam", body=json.dumps({"user": user}),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {tenant.token}"})
    resp = conn.getresponse()
    assert resp.status == 403, resp.read()
    conn.close()
