"""Suspension, passwords and deletion take effect at once: no reload, no restart."""

import os

PASSWORD = "correct horse 1"   # the default of tests/conftest.py Tenant.mailbox


def test_suspension_on_warm_smtpd_and_activation(mail, api, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    alias = f"info@{domain}"
    assert tenant.post("/aliases/", json={"domain_name": domain, "source": alias,
                                          "destination": alice}).status_code == 201
    before = [mail.send(alice), mail.send(alias)]
    for s in before:
        mail.wait_for(alice, PASSWORD, s)
    stored = mail.subjects(alice, PASSWORD)

    # Warm the smtpd processes: one kept-open connection and several
    # consecutive ones, all of which have classified the addresses already.
    held = mail.mx()
    for _ in range(3):
        assert mail.rcpt(alice, conn=held)[0] == 250
    for _ in range(5):
        assert mail.rcpt(alice)[0] == 250
        assert mail.rcpt(alias)[0] == 250

    r = api.put(f"/domains/{domain}/suspend")
    assert r.status_code == 200, r.text
    assert r.json()["suspended"] is True

    # the very next transaction, on the warm connection and on new ones
    code, text = mail.rcpt(alice, conn=held)
    assert code in (450, 550) or code >= 400, (code, text)
    assert b"suspended" in text.lower(), text
    for _ in range(6):
        for rcpt in (alice, alias, f"whoever@{domain}"):
            code, text = mail.rcpt(rcpt)
            assert code >= 400, (rcpt, code, text)
    assert not mail.login_ok(alice, PASSWORD), "IMAP login while suspended"
    assert not mail.auth_ok(alice, PASSWORD), "SMTP AUTH while suspended"

    r = api.put(f"/domains/{domain}/activate")
    assert r.status_code == 200, r.text
    assert mail.rcpt(alice, conn=held)[0] == 250
    held.quit()
    for _ in range(5):
        assert mail.rcpt(alice)[0] == 250
    assert mail.login_ok(alice, PASSWORD)
    assert mail.auth_ok(alice, PASSWORD)
    after = mail.send(alice)
    got = mail.wait_for(alice, PASSWORD, after)
    # nothing lost across suspend/activate
    assert set(stored) <= set(got) and len(got) == len(stored) + 1


def test_password_change_takes_effect_at_next_login(mail, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    assert mail.login_ok(alice, PASSWORD)
    r = tenant.put(f"/users/{alice}", json={"password": "a new one 2"})
    assert r.status_code == 200, r.text
    assert not mail.login_ok(alice, PASSWORD)
    assert not mail.auth_ok(alice, PASSWORD)
    assert mail.login_ok(alice, "a new one 2")
    assert mail.auth_ok(alice, "a new one 2")


def test_disabled_mailbox_keeps_its_mail_refuses_new_mail_and_logins(mail, api, tenant, make_tenant,
                                                                    domain_name):
    """PUT /users/{email} {"active": false} (Odoo's archive): logins and mail
    refused at once, even on a warm connection, never accepted and dropped,
    nor caught by the catch-all; the stored mail is kept; reversible."""
    r = api.post("/domains/", json={"name": domain_name, "partner_ref": tenant.partner_ref})
    assert r.status_code == 201, r.text
    alice = tenant.mailbox(domain_name, "alice")
    bob = tenant.mailbox(domain_name, "bob")
    assert tenant.post("/aliases/", json={"domain_name": domain_name, "source": f"@{domain_name}",
                                          "destination": bob}).status_code == 201
    kept = mail.send(alice)
    mail.wait_for(alice, PASSWORD, kept)
    held = mail.mx()
    assert mail.rcpt(alice, conn=held)[0] == 250

    assert make_tenant().put(f"/users/{alice}", json={"active": False}).status_code == 404
    assert tenant.put(f"/users/{alice}", json={"active": "no"}).status_code == 400
    r = tenant.put(f"/users/{alice}", json={"active": False})
    assert r.status_code == 200 and r.json() == {"email": alice, "active": False,
                                                 "message": "User disabled"}, r.text
    code, text = mail.rcpt(alice, conn=held)
    assert code == 550 and b"5.2.1" in text and b"disabled" in text.lower(), (code, text)
    held.quit()
    assert mail.rcpt(alice)[0] == 550
    assert not mail.login_ok(alice, PASSWORD), "IMAP login of a disabled mailbox"
    assert not mail.auth_ok(alice, PASSWORD), "SMTP AUTH of a disabled mailbox"
    assert tenant.get(f"/users/{alice}").json()["active"] is False
    assert mail.rcpt(bob)[0] == 250 and mail.login_ok(bob, PASSWORD), "the rest of the domain works"

    r = tenant.put(f"/users/{alice}", json={"active": True})
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    assert mail.login_ok(alice, PASSWORD) and mail.auth_ok(alice, PASSWORD)
    again = mail.send(alice)
    got = mail.wait_for(alice, PASSWORD, again)
    assert kept in got and again in got, got
    assert again not in mail.subjects(bob, PASSWORD)


def test_deleted_mailbox_refused_and_store_removed(mail, devenv, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    mail.wait_for(alice, PASSWORD, mail.send(alice))
    store = os.path.join(devenv["VMAIL_DIR"], domain, "alice")
    assert os.path.isdir(store)

    # a warm connection that accepted the address before
    held = mail.mx()
    assert mail.rcpt(alice, conn=held)[0] == 250
    r = tenant.delete(f"/users/{alice}")
    assert r.status_code == 204, r.text
    assert mail.rcpt(alice, conn=held)[0] == 550
    held.quit()
    assert mail.rcpt(alice)[0] == 550
    assert not mail.login_ok(alice, PASSWORD)
    assert not mail.auth_ok(alice, PASSWORD)
    assert not os.path.exists(store), "stored mail of a deleted mailbox left behind"


def test_deleted_domain_store_removed(mail, devenv, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    bob = tenant.mailbox(domain, "bob")
    s = mail.send([alice, bob])
    mail.wait_for(alice, PASSWORD, s)
    mail.wait_for(bob, PASSWORD, s)
    store = os.path.join(devenv["VMAIL_DIR"], domain)
    assert os.path.isdir(store)
    r = tenant.delete(f"/domains/{domain}")
    assert r.status_code == 204, r.text
    code, _ = mail.rcpt(alice)
    assert code >= 500
    assert not mail.login_ok(bob, PASSWORD)
    assert not os.path.exists(store), "stored mail of a deleted domain left behind"
