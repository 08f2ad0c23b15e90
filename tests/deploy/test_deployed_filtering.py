"""The deployment's inbound filter (issue 17, docs/inbound.md): the rspamd
and redis services of docker/compose.yaml, configured from the templates the
dev stack runs (tests/inbound tests them there in depth). Seen from outside
like a real installation: GTUBE refused or filed into Junk, Rspamd's
Authentication-Results (a sender's forged one removed), a domain's block
list served to Rspamd by the connector and to no one else, a filter outage
deferring mail (nothing accepted unscanned, nothing lost), a move into Junk
training Rspamd, and a hacked account's spam through submission suspending
its domain's outbound (the guillotine)."""

import email
import smtplib
import uuid

import requests

from deploy_stack import PASSWORD, run, wait_until
from stack_clients import campaign_text

GTUBE_REJECT = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_JUNK = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SPAM_LIMIT = 5   # GUILLOTINE_SPAM_LIMIT's default (the test's env file does not set it)


def message(frm, rcpt, body, subject=None, extra=""):
    subject = subject or f"f-{uuid.uuid4().hex[:12]}"
    raw = (f"From: {frm}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject}@{frm.split('@')[1]}>\r\n{extra}"
           f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
    return subject, raw


def send25(d, frm, rcpt, raw):
    """(code, text) of port 25's answer: (250, '') when accepted."""
    try:
        with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=120) as s:
            s.ehlo("mx.outside-sender.test")
            s.sendmail(frm, [rcpt], raw)
    except smtplib.SMTPRecipientsRefused as e:
        (code, text), = e.recipients.values()
        return code, text.decode(errors="replace")
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPHeloError) as e:
        return e.smtp_code, e.smtp_error.decode(errors="replace")
    return 250, ""


def submit(d, user, rcpt, body):
    """(code, text) of one message submitted as user over 465."""
    _, raw = message(user, rcpt, body)
    try:
        with smtplib.SMTP_SSL("127.0.0.1", d.ports["SUBMISSIONS"], context=d.tls(), timeout=120) as s:
            s.login(user, PASSWORD)
            s.sendmail(user, [rcpt], raw)
    except smtplib.SMTPRecipientsRefused as e:
        (code, text), = e.recipients.values()
        return code, text.decode(errors="replace")
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
        return e.smtp_code, e.smtp_error.decode(errors="replace")
    return 250, ""


def find(d, user, subject, folders=("INBOX", "Junk")):
    """(folder, message) where the message with this subject is, or None."""
    m = d.imaps(user)
    try:
        for folder in folders:
            if m.select(f'"{folder}"', readonly=True)[0] != "OK":
                continue
            nums = m.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
            if nums:
                return folder, email.message_from_bytes(m.fetch(nums[-1], "(BODY.PEEK[])")[1][0][1])
        return None
    finally:
        m.logout()


def move(d, user, subject, src, dst):
    m = d.imaps(user)
    try:
        m.select(f'"{src}"')
        uid = m.uid("SEARCH", None, "SUBJECT", f'"{subject}"')[1][0].split()[-1]
        typ, resp = m.uid("MOVE", uid, f'"{dst}"')
        assert typ == "OK", resp
    finally:
        m.logout()


def learned_spam(d):
    """How many messages Rspamd's Bayes learned as spam (its counter in Redis)."""
    out = d.exec("redis", "redis-cli", "-s", "/run/emboux-redis/redis.sock", "HGET", "RS", "learns_spam").stdout
    return int(out.strip() or 0)


def learn_campaign(d, user, text):
    """The campaign reaches user's INBOX on port 25 and user moves it into Junk
    (IMAPSieve -> rspamd-learn -> the controller's socket: Bayes, fuzzy)."""
    subject, raw = message("offers@campaign-sender.test", user, text)
    assert send25(d, "offers@campaign-sender.test", user, raw) == (250, "")
    assert wait_until(lambda: (find(d, user, subject) or ("",))[0] == "INBOX", timeout=120), d.logs()
    move(d, user, subject, "INBOX", "Junk")


def test_gtube_is_refused_or_filed_into_junk(deployment, hosted):
    d, alice = deployment, hosted["alice"]
    _, raw = message("someone@outside-sender.test", alice, GTUBE_REJECT)
    code, text = send25(d, "someone@outside-sender.test", alice, raw)
    assert code == 554 and "5.7.1" in text, (code, text)
    subject, raw = message("someone@outside-sender.test", alice, GTUBE_JUNK)
    assert send25(d, "someone@outside-sender.test", alice, raw) == (250, "")
    got = wait_until(lambda: find(d, alice, subject), timeout=120)
    assert got and got[0] == "Junk" and got[1]["X-Spam"] == "Yes", (got and got[0], d.logs())


def test_a_normal_message_arrives_with_rspamds_authentication_results(deployment, hosted):
    """Scanned: one Authentication-Results, Rspamd's, and one X-Spam-Status;
    the sender's forged ones are removed."""
    d, bob = deployment, hosted["bob"]
    forged = ("Authentication-Results: mail.deploy.test; dkim=pass header.d=bank.example; dmarc=pass\r\n"
              "X-Spam-Status: No, score=-100\r\n")
    subject, raw = message("someone@outside-sender.test", bob, "See you at ten tomorrow.", extra=forged)
    assert send25(d, "someone@outside-sender.test", bob, raw) == (250, "")
    got = wait_until(lambda: find(d, bob, subject), timeout=120)
    assert got and got[0] == "INBOX", d.logs()
    results = got[1].get_all("Authentication-Results")
    assert results and len(results) == 1 and "bank.example" not in results[0], results
    status = got[1].get_all("X-Spam-Status")
    assert "spf=" in results[0] and status and len(status) == 1 and "-100" not in status[0], dict(got[1])


def test_a_domains_block_list_reaches_rspamd_and_the_map_is_rspamds_alone(deployment, hosted):
    """PUT /domains/{name}/spam -> the connector's settings map -> Rspamd
    (RSPAMD_MAP_CLIENTS=rspamd): the blocked sender is refused. Anyone else
    asking for the map, or reporting outbound spam, is refused."""
    d, alice = deployment, hosted["alice"]
    blocked = f"@blocked-{uuid.uuid4().hex[:8]}.test"
    r = d.api("PUT", f"/domains/{hosted['domain']}/spam", json={"block_senders": [blocked]})
    assert r.status_code == 200, r.text
    frm = f"promo{blocked}"
    _, raw = message(frm, alice, "A perfectly ordinary note.")
    got = wait_until(lambda: (lambda c: c if c[0] != 250 else None)(send25(d, frm, alice, raw)), timeout=180)
    assert got and got[0] == 554 and "5.7.1" in got[1], (got, d.logs())
    # the host (through the published API port) is not Rspamd
    r = requests.get(d.url + "/mailserver/rspamd/settings", timeout=30)
    assert r.status_code == 403, r.text
    r = requests.post(d.url + "/mailserver/rspamd/outbound-spam", json={"user": alice}, timeout=30,
                      headers={"Authorization": f"Bearer {d.api_key}"})
    assert r.status_code == 403, r.text
    assert d.api("GET", f"/domains/{hosted['domain']}/outbound").json()["outbound_status"] == "active"


def test_rspamd_down_defers_and_the_mail_arrives_once_it_is_back(deployment, hosted):
    d, bob = deployment, hosted["bob"]
    subject, raw = message("someone@outside-sender.test", bob, "Sent while the filter was down.")
    run("podman", "stop", "-t", "30", d.container("rspamd"))
    try:
        code, text = send25(d, "someone@outside-sender.test", bob, raw)
        assert code // 100 == 4 and "4.7.1" in text, (code, text)
        assert find(d, bob, subject) is None
    finally:
        run("podman", "start", d.container("rspamd"))
    assert wait_until(d.filter_ready, timeout=600, step=3), d.logs()
    # the sender's retry goes through, scanned
    assert wait_until(lambda: send25(d, "someone@outside-sender.test", bob, raw) == (250, ""), timeout=120)
    got = wait_until(lambda: find(d, bob, subject), timeout=120)
    assert got and got[0] == "INBOX" and got[1]["Authentication-Results"] and got[1]["X-Spam-Status"], d.logs()


def test_moving_a_message_into_junk_trains_rspamd(deployment, hosted):
    d, bob = deployment, hosted["bob"]
    before = learned_spam(d)
    learn_campaign(d, bob, campaign_text(uuid.uuid4().hex))
    assert wait_until(lambda: learned_spam(d) > before, timeout=120), d.logs()


def test_a_hacked_accounts_spam_is_refused_and_suspends_its_domain(deployment, hosted):
    """As tests/inbound/test_outbound_spam.py in the dev stack: a user of the
    platform flags the campaign; the hacked account's copies are refused on
    submission (554), reported by Rspamd to the connector and counted by the
    guillotine until the domain's outbound is suspended, the reason recorded."""
    d, bob = deployment, hosted["bob"]
    ref = f"h{uuid.uuid4().hex[:8]}"
    r = d.api("POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 1, "mailboxes_per_domain": 1})
    assert r.status_code == 201, r.text
    domain = f"{uuid.uuid4().hex[:10]}.hacked-test.net"
    assert d.api("POST", "/domains/", json={"name": domain, "partner_ref": ref}).status_code == 201
    hacked = f"sales@{domain}"
    r = d.api("POST", "/users/", json={"domain_name": domain, "email": hacked, "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert submit(d, hacked, bob, "Lunch on Friday?")[0] == 250
    text = campaign_text(ref)
    learn_campaign(d, bob, text)
    # The account keeps sending; the refusals add up (a copy accepted between
    # them was a copy Rspamd took for another language: campaign_text).
    refused, tries = 0, 0
    while refused < SPAM_LIMIT:
        tries += 1
        assert tries <= 40, f"{refused} refusals in {tries} tries\n" + d.logs()
        code, reply = submit(d, hacked, bob, text)
        if code == 250:
            continue
        assert code == 554 and "5.7.1" in reply, (code, reply)
        refused += 1
    state = wait_until(lambda: (lambda s: s if s["outbound_status"] == "suspended" else None)(
        d.api("GET", f"/domains/{domain}/outbound").json()), timeout=120)
    assert state and "refused as spam" in state["outbound_status_reason"], (state, d.logs())
    code, reply = submit(d, hacked, bob, "Sorry about that.")
    assert code // 100 == 5 and "suspended" in reply, (code, reply)
    # the tenant next door still sends
    assert d.api("GET", f"/domains/{hosted['domain']}/outbound").json()["outbound_status"] == "active"
    assert submit(d, hosted["alice"], bob, "Hello from next door.")[0] == 250
