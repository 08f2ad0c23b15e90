"""Port 25's one RCPT lookup (migration 0021, mailserver.recipient_verdict;
docs/mail-server.md "One RCPT"): what the optimisation could break.

quota-status is asked only when the mailbox's usage, as Dovecot's quota_clone
copied it into mailserver.quota_usage, leaves less room than the largest
message Postfix accepts. So: the usage must be written after each delivery,
a limit lowered through the API must reach quota-status at the very next
transaction on an smtpd that accepted mail for the mailbox a moment before,
and a suspension / disabled mailbox must still be refused on that connection.
"""

import time

PASSWORD = "correct horse 1"   # the default of tests/conftest.py Tenant.mailbox
MB = 1024 * 1024


def _usage(sql, email, timeout=10):
    """Dovecot's usage row for email, once quota_clone has written it."""
    deadline = time.monotonic() + timeout
    while True:
        rows = sql("SELECT bytes, messages FROM mailserver.quota_usage WHERE email = %s", (email,))
        if rows and rows[0]["messages"] > 0:
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no usage row for {email} after a delivery (quota_clone, dovecot.conf)")
        time.sleep(0.1)


def _verdict(sql, email):
    return sql("SELECT mailserver.recipient_verdict(%s, 52428800) AS v", (email,))[0]["v"]


def test_usage_is_copied_after_delivery_and_spares_quota_status(mail, tenant, sql):
    domain = tenant.domain()
    roomy = tenant.mailbox(domain, "roomy", quota_mb=1024)
    # no usage known yet: quota-status decides
    assert _verdict(sql, roomy) == "emboux_quota"
    subject = mail.send(roomy, body="hello\r\n" * 100)
    mail.wait_for(roomy, PASSWORD, subject)
    usage = _usage(sql, roomy)
    assert 500 < usage["bytes"] < 100_000, usage
    # room for the largest message Postfix accepts: no quota-status at all
    assert _verdict(sql, roomy) is None
    # a hostile recipient address is data, not SQL
    assert _verdict(sql, "x'); DROP TABLE mailserver.quota_usage; --@" + domain) is None
    assert sql("SELECT count(*) AS n FROM mailserver.quota_usage")[0]["n"] >= 1


def test_lowered_quota_applies_at_the_next_rcpt_on_a_warm_smtpd(mail, tenant, sql):
    domain = tenant.domain()
    bob = tenant.mailbox(domain, "bob", quota_mb=1024)
    subject = mail.send(bob, body="hello\r\n" * 100)
    mail.wait_for(bob, PASSWORD, subject)
    _usage(sql, bob)

    held = mail.mx()
    try:
        # the same smtpd (and proxymap session) accepts a 3 MB message for bob...
        for _ in range(3):
            code, text = mail.rcpt(bob, size=3 * MB, conn=held)
            assert code == 250, (code, text)
        # ...then the limit drops to 1 MB through the API: refused at the next RCPT
        r = tenant.put(f"/users/{bob}/quota", json={"quota_mb": 1})
        assert r.status_code == 200, r.text
        code, text = mail.rcpt(bob, size=3 * MB, conn=held)
        assert code == 452 and text.startswith(b"4.2.2"), (code, text)
        # a message that fits still goes through, on the same connection
        assert mail.rcpt(bob, size=10_000, conn=held)[0] == 250
        # and raised again: accepted again at once
        r = tenant.put(f"/users/{bob}/quota", json={"quota_mb": 1024})
        assert r.status_code == 200, r.text
        assert mail.rcpt(bob, size=3 * MB, conn=held)[0] == 250
    finally:
        held.quit()


def test_usage_grown_near_the_quota_sends_the_next_rcpt_to_quota_status(mail, tenant, sql):
    """The copied usage follows the mailbox: once a delivery leaves less room
    than the announced size, the next RCPT on a warm smtpd is refused."""
    domain = tenant.domain()
    carol = tenant.mailbox(domain, "carol", quota_mb=1)
    held = mail.mx()
    try:
        assert mail.rcpt(carol, size=500_000, conn=held)[0] == 250
        subject = mail.send(carol, body=("x" * 76 + "\r\n") * 9000)      # ~700 KB
        mail.wait_for(carol, PASSWORD, subject)
        assert _usage(sql, carol)["bytes"] > 600_000
        code, text = mail.rcpt(carol, size=500_000, conn=held)
        assert code == 452, (code, text)
    finally:
        held.quit()


def test_suspension_and_disabled_mailbox_on_the_smtpd_that_just_accepted(mail, api, tenant, sql):
    domain = tenant.domain()
    dave = tenant.mailbox(domain, "dave")
    erin = tenant.mailbox(domain, "erin")
    for who in (dave, erin):
        subject = mail.send(who)
        mail.wait_for(who, PASSWORD, subject)
    held = mail.mx()
    try:
        assert mail.rcpt(dave, conn=held)[0] == 250
        assert mail.rcpt(erin, conn=held)[0] == 250

        r = tenant.put(f"/users/{erin}", json={"active": False})
        assert r.status_code == 200, r.text
        code, text = mail.rcpt(erin, conn=held)
        assert code == 550 and b"disabled" in text.lower(), (code, text)
        assert mail.rcpt(dave, conn=held)[0] == 250

        r = api.put(f"/domains/{domain}/suspend")
        assert r.status_code == 200, r.text
        code, text = mail.rcpt(dave, conn=held)
        assert code == 450 and b"suspended" in text.lower(), (code, text)

        r = api.put(f"/domains/{domain}/activate")
        assert r.status_code == 200, r.text
        assert mail.rcpt(dave, conn=held)[0] == 250
        assert mail.rcpt(erin, conn=held)[0] == 550
    finally:
        held.quit()


def _decision(sql, local, domain):
    return sql("SELECT mailserver.rcpt_decision(%s, %s, 52428800) AS v", (local, domain))[0]["v"]


def test_one_lookup_is_also_the_relay_check(mail, api, tenant, sql):
    """pgsql-recipient.cf (migration 0030) answers the relay check and the
    verdict at once: OK for a plain address of a hosted domain, the verdict
    where there is one, nothing for a routed address or a domain not hosted
    (reject_unauth_destination then refuses it on port 25)."""
    domain = tenant.domain()
    frank = tenant.mailbox(domain, "frank", quota_mb=0)
    local = frank.split("@")[0]
    assert _decision(sql, local, domain) == "OK"
    assert _decision(sql, "nobody", domain) == "OK"          # hosted: reject_unlisted_recipient says 550
    assert _decision(sql, local, "not-hosted.example") is None
    for routed in (f"{local}%x", f"{local}!x", "x@y"):
        assert _decision(sql, routed, domain) is None
    assert _decision(sql, "x'); DROP TABLE mailserver.quota_usage; --", domain) == "OK"
    r = api.put(f"/domains/{domain}/suspend")
    assert r.status_code == 200, r.text
    assert _decision(sql, local, domain).startswith("450 ")
    api.put(f"/domains/{domain}/activate")

    # and on port 25: still no relay through a hosted domain or to another
    held = mail.mx()
    try:
        assert mail.rcpt(frank, conn=held)[0] == 250
        assert mail.rcpt(f"{local}%somewhere.example@{domain}", conn=held)[0] == 554
        assert mail.rcpt(f"{local}@not-hosted.example", conn=held)[0] == 554
        assert mail.rcpt(f"nobody@{domain}", conn=held)[0] == 550
        assert mail.rcpt(frank, conn=held)[0] == 250
    finally:
        held.quit()
