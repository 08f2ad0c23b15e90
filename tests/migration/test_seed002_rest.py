"""Seed 002's REST API (`/mail/account/`, `/mail/alias/`), its examples as the
seed writes them: alice and bob at example.com, the alias office, and alice's
spoofing whitelist 'office@example.com,skylime.net' -- enforced by Postfix on
the dev stack's submission port, not only stored. From the other tenant's
side: nothing of example.com is visible or changeable."""

import imaplib
import smtplib
import uuid

import pytest

from stack_clients import submission_session

DOMAIN = "example.com"
ALICE, BOB, OFFICE = "alice@example.com", "bob@example.com", "office@example.com"
PASSWORD = "alice's password 1"


def _submission(devenv, user, password):
    return submission_session(devenv.get("SMTP_HOST") or "127.0.0.1", int(devenv["SUBMISSION_PORT"]),
                              user, password)


def _may_send_as(devenv, user, sender, rcpt):
    """Postfix's answer to alice using `sender` as envelope sender (the
    sender-login check answers at RCPT)."""
    s = _submission(devenv, user, PASSWORD)
    try:
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt(rcpt)
        return code, text
    finally:
        s.quit()


def _inbox_has(devenv, user, subject):
    import time
    deadline = time.monotonic() + 20
    while True:
        m = imaplib.IMAP4(devenv.get("IMAP_HOST") or "127.0.0.1", int(devenv["IMAP_PORT"]), timeout=30)
        try:
            m.login(user, PASSWORD)
            m.select("INBOX")
            found = m.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
        finally:
            m.logout()
        if found:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


def test_seed_examples_verbatim(devenv, tenant, seed_domain):
    # POST /mail/account/ {name, domain, password}: alice and bob
    for name in ("alice", "bob"):
        r = tenant.post("/mail/account/", json={"name": name, "domain": "example.com", "password": PASSWORD})
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["id"] == f"{name}@example.com" and got["name"] == name and got["domain"] == "example.com"
        assert got["submission_disabled"] is False and got["spoofing_whitelist"] == ""
        # readable only as a hash
        assert got["password"].startswith("$6$") and PASSWORD not in r.text
    # the same mailbox rows as the native API
    assert tenant.get(f"/users/{ALICE}").status_code == 200
    # POST /mail/alias/ office -> alice, bob
    r = tenant.post("/mail/alias/", json={"name": "office", "domain": "example.com",
                                          "to": "alice@example.com,bob@example.com"})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": OFFICE, "name": "office", "domain": "example.com",
                        "to": "alice@example.com,bob@example.com"}
    assert tenant.get("/aliases/").json()[0]["source"] == OFFICE
    # GET lists, with and without ?domain=
    assert [a["id"] for a in tenant.get("/mail/account/", params={"domain": "example.com"}).json()] == [ALICE, BOB]
    assert [a["id"] for a in tenant.get("/mail/account/").json()] == [ALICE, BOB]
    assert tenant.get("/mail/account/", params={"domain": "other.example.org"}).json() == []
    assert [a["id"] for a in tenant.get("/mail/alias/", params={"domain": "example.com"}).json()] == [OFFICE]
    assert tenant.get(f"/mail/alias/{OFFICE}/").json()["to"] == "alice@example.com,bob@example.com"

    # the whitelist, as the seed writes it
    r = tenant.post(f"/mail/account/{ALICE}/set_spoofing_whitelist/",
                    json={"spoofing_whitelist": "office@example.com,skylime.net"})
    assert r.status_code == 200, r.text
    assert set(r.json()["spoofing_whitelist"].split(",")) == {"office@example.com", "skylime.net"}
    assert tenant.get(f"/users/{ALICE}").json()["spoofing_whitelist"] == ["@skylime.net", OFFICE]
    # alice can send from alice@, office@, someone@skylime.net ...
    for sender in (ALICE, OFFICE, "someone@skylime.net"):
        code, text = _may_send_as(devenv, ALICE, sender, BOB)
        assert code == 250, (sender, code, text)
    # ... but not from bob@example.com nor anyone@frubar.net
    for sender in (BOB, "anyone@frubar.net"):
        code, text = _may_send_as(devenv, ALICE, sender, BOB)
        assert code == 553 and b"not owned by user" in text, (sender, code, text)
    # a whole message as someone@skylime.net, through the office alias, reaches both
    subject = f"seed002-{uuid.uuid4().hex[:10]}"
    with _submission(devenv, ALICE, PASSWORD) as s:
        refused = s.sendmail("someone@skylime.net", [OFFICE],
                             f"From: someone@skylime.net\r\nTo: {OFFICE}\r\nSubject: {subject}\r\n\r\nhi\r\n")
    assert not refused, refused
    assert _inbox_has(devenv, ALICE, subject) and _inbox_has(devenv, BOB, subject)

    # '*' permits every address; '' only the own one again
    tenant.post(f"/mail/account/{ALICE}/set_spoofing_whitelist/", json={"spoofing_whitelist": "*"})
    assert _may_send_as(devenv, ALICE, "anyone@frubar.net", BOB)[0] == 250
    r = tenant.post(f"/mail/account/{ALICE}/set_spoofing_whitelist/", json={"spoofing_whitelist": ""})
    assert r.json()["spoofing_whitelist"] == ""
    assert _may_send_as(devenv, ALICE, "someone@skylime.net", BOB)[0] == 553

    # disable_submission: alice can no longer send, still receives; enable again
    r = tenant.post(f"/mail/account/{ALICE}/disable_submission/")
    assert r.status_code == 200 and r.json()["submission_disabled"] is True, r.text
    code, text = _may_send_as(devenv, ALICE, ALICE, BOB)
    assert code == 554 and b"Sending is disabled" in text, (code, text)
    subject = f"seed002-in-{uuid.uuid4().hex[:10]}"
    with _submission(devenv, BOB, PASSWORD) as s:
        assert not s.sendmail(BOB, [ALICE], f"From: {BOB}\r\nSubject: {subject}\r\n\r\nstill here\r\n")
    assert _inbox_has(devenv, ALICE, subject)
    r = tenant.post(f"/mail/account/{ALICE}/enable_submission/")
    assert r.status_code == 200 and r.json()["submission_disabled"] is False
    assert _may_send_as(devenv, ALICE, ALICE, BOB)[0] == 250

    # set_password: the new one logs in, the old one no longer
    r = tenant.post(f"/mail/account/{BOB}/set_password/", json={"password": "bob's new password"})
    assert r.status_code == 200 and "bob's new password" not in r.text
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _submission(devenv, BOB, PASSWORD)
    _submission(devenv, BOB, "bob's new password").quit()

    # PUT /mail/alias/{id}/ replaces `to`; DELETE removes alias and account
    r = tenant.put(f"/mail/alias/{OFFICE}/", json={"to": "alice@example.com"})
    assert r.status_code == 200 and r.json()["to"] == "alice@example.com", r.text
    assert tenant.delete(f"/mail/alias/{OFFICE}/").status_code == 204
    assert tenant.get(f"/mail/alias/{OFFICE}/").status_code == 404
    assert tenant.delete(f"/mail/account/{BOB}/").status_code == 204
    assert tenant.get(f"/mail/account/{BOB}/").status_code == 404
    assert tenant.get(f"/users/{BOB}").status_code == 404


def test_other_tenant_sees_and_changes_nothing(tenant, make_tenant, seed_domain):
    assert tenant.post("/mail/account/", json={"name": "alice", "domain": DOMAIN,
                                               "password": PASSWORD}).status_code == 201
    assert tenant.post("/mail/alias/", json={"name": "office", "domain": DOMAIN,
                                             "to": ALICE}).status_code == 201
    other = make_tenant()
    assert other.get("/mail/account/").json() == []
    assert other.get("/mail/account/", params={"domain": DOMAIN}).json() == []
    assert other.get("/mail/alias/").json() == []
    for method, path, body in (
            ("GET", f"/mail/account/{ALICE}/", None),
            ("POST", f"/mail/account/{ALICE}/set_password/", {"password": "taken over 12"}),
            ("POST", f"/mail/account/{ALICE}/disable_submission/", None),
            ("POST", f"/mail/account/{ALICE}/set_spoofing_whitelist/", {"spoofing_whitelist": "*"}),
            ("DELETE", f"/mail/account/{ALICE}/", None),
            ("POST", "/mail/account/", {"name": "mallory", "domain": DOMAIN, "password": PASSWORD}),
            ("POST", "/mail/alias/", {"name": "sales", "domain": DOMAIN, "to": "x@frubar.net"}),
            ("POST", "/mail/alias/", {"name": "office", "domain": DOMAIN, "to": "x@frubar.net"}),
            ("GET", f"/mail/alias/{OFFICE}/", None),
            ("PUT", f"/mail/alias/{OFFICE}/", {"to": "x@frubar.net"}),
            ("DELETE", f"/mail/alias/{OFFICE}/", None)):
        r = other.api.request(method, path, token=other.token, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    got = tenant.get(f"/mail/account/{ALICE}/").json()
    assert got["spoofing_whitelist"] == "" and got["submission_disabled"] is False
    assert tenant.get(f"/mail/alias/{OFFICE}/").json()["to"] == ALICE
    assert [a["id"] for a in tenant.get("/mail/account/").json()] == [ALICE]


def test_bad_input(tenant, seed_domain):
    for body, field in (({"name": "al ice", "domain": DOMAIN, "password": PASSWORD}, "name"),
                        ({"name": "alice", "domain": "not a domain", "password": PASSWORD}, "domain"),
                        ({"name": "alice", "domain": DOMAIN}, "password"),
                        ({"name": "alice", "domain": DOMAIN, "password": "short"}, "password"),
                        ({"name": "alice", "domain": DOMAIN, "password": PASSWORD,
                          "spoofing_whitelist": "ok.net,{bad}"}, "spoofing_whitelist"),
                        ({"name": "alice", "domain": DOMAIN, "password": PASSWORD,
                          "submission_disabled": "yes"}, "submission_disabled")):
        r = tenant.post("/mail/account/", json=body)
        assert r.status_code == 400 and r.json()["detail"].startswith(field), (body, r.text)
    assert tenant.get("/mail/account/").json() == []
    assert tenant.post("/mail/account/", json={"name": "alice", "domain": DOMAIN,
                                               "password": PASSWORD}).status_code == 201
    r = tenant.post("/mail/account/", json={"name": "alice", "domain": DOMAIN, "password": PASSWORD})
    assert r.status_code == 400 and r.json()["code"] == "email_exists"
    r = tenant.post("/mail/alias/", json={"name": "alice", "domain": DOMAIN, "to": BOB})
    assert r.status_code == 400 and r.json()["code"] == "alias_exists"
    assert tenant.post("/mail/alias/", json={"name": "office", "domain": DOMAIN, "to": ALICE}).status_code == 201
    r = tenant.post("/mail/alias/", json={"name": "office", "domain": DOMAIN, "to": BOB})
    assert r.status_code == 409 and r.json()["code"] == "alias_exists"
    r = tenant.put(f"/mail/alias/{OFFICE}/", json={"to": "not an address"})
    assert r.status_code == 400 and r.json()["detail"].startswith("destination")
    assert tenant.get(f"/mail/alias/{OFFICE}/").json()["to"] == ALICE
    r = tenant.post(f"/mail/account/{ALICE}/set_spoofing_whitelist/", json={"spoofing_whitelist": "a@b@c"})
    assert r.status_code == 400 and tenant.get(f"/mail/account/{ALICE}/").json()["spoofing_whitelist"] == ""
