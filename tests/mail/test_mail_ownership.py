"""Ownership before routing (issue 9), from the attacker's side, through the
real Postfix (port 25 and submission) and Dovecot: a domain whose owner has
not proved control of it changes nothing on the mail server -- mail to it
from outside is refused, other tenants' mail to it relays out as to any
foreign domain (not into the squatter's catch-all), its aliases grant no
sending right, its mailboxes cannot log in -- and once proved (the TXT
record in the dev stack's DNS server, then the check) it works at once."""

import uuid

from dns_zones import prove_ownership
from stack_clients import Sink

PASSWORD = "correct horse 1"   # the default of tests/conftest.py Tenant.mailbox


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def sink_has(devenv, needle, timeout=20):
    """The message holding `needle` that reached the SMTP sink (the internet
    of the dev stack), waiting for it up to timeout seconds."""
    return Sink(devenv["OUTBOUND_SINK_DIR"]).wait_for(needle, timeout)


def squat(tenant, name=None):
    """The squatter's setup: a domain it cannot prove, a mailbox and a
    catch-all on it, the catch-all delivering into a mailbox of the
    squatter's own (proved) domain so that any rewrite would land there."""
    home = tenant.domain()
    loot = tenant.mailbox(home, "loot")
    target = name or f"{unique('victim')}.emboux-test.net"
    r = tenant.post("/domains/", json={"name": target})
    assert r.status_code == 201 and r.json()["ownership"] == "pending", r.text
    box = tenant.mailbox(target, "ceo")
    for source in (f"@{target}", f"boss@{target}"):
        r = tenant.post("/aliases/", json={"domain_name": target, "source": source, "destination": loot})
        assert r.status_code == 201, r.text
    return r.json(), target, box, loot


def test_pending_domain_receives_nothing_from_outside(mail, tenant, sql):
    _, target, box, loot = squat(tenant)
    for rcpt in (box, f"boss@{target}", f"anyone@{target}"):
        code, text = mail.rcpt(rcpt)
        assert code == 554 and b"Relay access denied" in text, (rcpt, code, text)
    assert not mail.login_ok(box, PASSWORD), "IMAP login on a pending domain"
    assert not mail.auth_ok(box, PASSWORD), "SMTP AUTH on a pending domain"
    # the mail server's views do not know it at all
    for view, col in (("domains", "name"), ("mailbox_emails", "email"), ("mailbox_logins", "email"),
                      ("aliases", "source"), ("sender_logins", "sender")):
        key = target if col == "name" else (box if view != "aliases" else f"@{target}")
        assert sql(f"SELECT 1 FROM mailserver.{view} WHERE {col} = %s", (key,)) == [], view
    assert mail.subjects(loot, PASSWORD) == []


def test_other_tenants_mail_to_a_squatted_domain_relays_out(mail, tenant, make_tenant, devenv):
    """A tenant's mail to the squatted name leaves for the internet (the
    sink), as before the squatter came: no alias or catch-all rewrites it."""
    _, target, box, loot = squat(tenant)
    victim = make_tenant()
    vdom = victim.domain()
    alice = victim.mailbox(vdom, "alice")
    subject = f"to-the-real-{uuid.uuid4().hex[:10]}"
    with mail.submission(alice, PASSWORD) as s:
        refused = s.sendmail(alice, [f"someone@{target}", f"boss@{target}", box],
                             f"From: {alice}\r\nTo: someone@{target}\r\nSubject: {subject}\r\n\r\nhi\r\n")
    assert not refused, refused
    got = sink_has(devenv, subject)
    assert sorted(got["rcpt_tos"]) == sorted([f"someone@{target}", f"boss@{target}", box])
    # nothing landed with the squatter (the sink got it: delivery is done)
    assert subject not in mail.subjects(loot, PASSWORD)


def test_alias_of_a_pending_domain_grants_no_sender_right(mail, tenant):
    """boss@<squatted> -> the squatter's own mailbox: that alias would let the
    mailbox send as boss@<squatted>; while pending it does not."""
    _, target, _, loot = squat(tenant)
    with mail.submission(loot, PASSWORD) as s:
        code, text = s.mail(f"boss@{target}")
        if code == 250:
            code, text = s.rcpt("someone@example.org")
    assert code == 553 and b"not owned" in text, (code, text)


def test_once_proved_the_domain_works_at_once(mail, tenant, dns_zones):
    row, target, box, loot = squat(tenant)
    assert mail.rcpt(box)[0] == 554
    domain = tenant.get(f"/domains/{target}").json()
    prove_ownership(dns_zones, tenant, domain)
    assert mail.rcpt(box)[0] == 250
    assert mail.login_ok(box, PASSWORD)
    direct, stray = mail.send(box), mail.send(f"stray@{target}")
    mail.wait_for(box, PASSWORD, direct)
    mail.wait_for(loot, PASSWORD, stray)


def test_operator_vouch_opens_a_domain_it_asked_proof_for(mail, api, tenant):
    d = f"{unique('v')}.emboux-test.net"
    r = api.post("/domains/", json={"name": d, "partner_ref": tenant.partner_ref,
                                    "require_ownership_proof": True})
    assert r.status_code == 201 and r.json()["ownership"] == "pending", r.text
    box = tenant.mailbox(d, "info")
    assert mail.rcpt(box)[0] == 554
    assert api.put(f"/domains/{d}/ownership/vouch", json={"vouched_by": "test"}).status_code == 200
    assert mail.rcpt(box)[0] == 250
    mail.wait_for(box, PASSWORD, mail.send(box))


def test_master_domain_receives_at_once(mail, api, tenant):
    """The contract's 'picked up immediately' holds for the operator."""
    d = f"{unique('m')}.emboux-test.net"
    assert api.post("/domains/", json={"name": d, "partner_ref": tenant.partner_ref}).status_code == 201
    box = tenant.mailbox(d, "info")
    mail.wait_for(box, PASSWORD, mail.send(box))


def test_squatters_outbound_settings_never_apply_to_others(mail, tenant, make_tenant, devenv):
    """The policy daemon counts a message on its sender's domain when that is
    hosted here: a pending squatted name is not, so its (tiny) limit cannot
    stop another tenant allowed to send as that name."""
    _, target, _, _ = squat(tenant)
    r = tenant.put(f"/domains/{target}/outbound", json={"outbound_daily_limit": 1})
    assert r.status_code == 200, r.text
    victim = make_tenant()
    vdom = victim.domain()
    alice = victim.mailbox(vdom, "alice")
    r = victim.put(f"/users/{alice}", json={"spoofing_whitelist": [f"@{target}"]})
    assert r.status_code == 200, r.text
    subjects = [f"as-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    with mail.submission(alice, PASSWORD) as s:
        for subject in subjects:
            refused = s.sendmail(f"news@{target}", ["reader@example.org"],
                                 f"From: news@{target}\r\nTo: reader@example.org\r\nSubject: {subject}\r\n\r\nhi\r\n")
            assert not refused, refused
    for subject in subjects:
        sink_has(devenv, subject)
    r = tenant.get(f"/domains/{target}/outbound")
    assert r.json()["outbound_sent_today"] == 0, r.json()
