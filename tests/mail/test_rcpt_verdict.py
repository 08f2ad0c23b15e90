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


UNKNOWN = "550 5.1.1 User unknown in virtual mailbox table"   # Postfix's own words


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
    assert _decision(sql, "nobody", domain) == UNKNOWN        # hosted, not listed (migration 0031)
    assert _decision(sql, local, "not-hosted.example") is None
    for routed in (f"{local}%x", f"{local}!x", "x@y"):
        assert _decision(sql, routed, domain) is None
    assert _decision(sql, "x'); DROP TABLE mailserver.quota_usage; --", domain) == UNKNOWN
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


# --- unlisted recipients: the decision answers them itself (migration 0031) ---------------
# Port 25 runs no reject_unlisted_recipient any more (master.cf): the decision must refuse
# exactly what Postfix's alias and mailbox maps refused, read live at every RCPT.

USER_UNKNOWN = b"Recipient address rejected: User unknown in virtual mailbox table"


def _rcpt(conn, address):
    """RCPT TO:<address> sent as is (smtplib's own rcpt() parses it: a '(' starts a comment)."""
    conn.rset()
    assert conn.mail("someone@example.net")[0] == 250
    return conn.docmd(f"RCPT TO:<{address}>")


def _refused_unknown(mail, address, conn):
    code, text = _rcpt(conn, address)
    assert code == 550 and text.startswith(b"5.1.1 <") and text.endswith(USER_UNKNOWN), (address, code, text)


def _accepted(mail, address, conn):
    code, text = _rcpt(conn, address)
    assert code == 250, (address, code, text)


def _alias(tenant, source, destination):
    r = tenant.post("/aliases/", json={"domain_name": source.split("@")[1], "source": source,
                                       "destination": destination})
    assert r.status_code == 201, r.text
    return source


def _delete_alias(tenant, source):
    r = tenant.delete(f"/aliases/{source}")
    assert r.status_code == 204, r.text


def test_unlisted_recipients_on_a_held_connection(mail, tenant, sql):
    """Unknown users are refused with Postfix's answer, listed ones accepted, and a new or
    deleted mailbox, alias or catch-all counts at the next RCPT of a warm smtpd."""
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice", quota_mb=0)
    _alias(tenant, f"team@{domain}", alice)
    _alias(tenant, f"chain@{domain}", f"team@{domain}")
    held = mail.mx()
    try:
        for listed in (alice, f"ALICE@{domain.upper()}", f'"alice"@{domain}', f"team@{domain}",
                       f"Chain@{domain}", f"alice@{domain}."):
            _accepted(mail, listed, held)
        for unknown in (f"nobody@{domain}", f"postmaster@{domain}", f"a+b@{domain}"):
            _refused_unknown(mail, unknown, held)
        code, text = mail.rcpt(f"nobody@{domain}", conn=held)
        assert text == f"5.1.1 <nobody@{domain}>: ".encode() + USER_UNKNOWN, text

        # a new alias: refused a moment ago, accepted now; deleted: refused again
        sales = _alias(tenant, f"sales@{domain}", alice)
        _accepted(mail, f"sales@{domain}", held)
        _delete_alias(tenant, sales)
        _refused_unknown(mail, f"sales@{domain}", held)

        # a new mailbox, then deleted
        _refused_unknown(mail, f"bob@{domain}", held)
        bob = tenant.mailbox(domain, "bob", quota_mb=0)
        _accepted(mail, bob, held)
        r = tenant.delete(f"/users/{bob}")
        assert r.status_code == 204, r.text
        _refused_unknown(mail, bob, held)

        # a catch-all accepts every plain local part of its domain, and only while it exists
        catch_all = _alias(tenant, f"@{domain}", alice)
        for caught in (f"nobody@{domain}", f"bob@{domain}", f'"no body"@{domain}', f"o'brien@{domain}"):
            _accepted(mail, caught, held)
        _delete_alias(tenant, catch_all)
        _refused_unknown(mail, f"nobody@{domain}", held)
        _accepted(mail, alice, held)
    finally:
        held.quit()
    assert _decision(sql, "nobody", domain) == UNKNOWN
    assert _decision(sql, "ALICE", domain.upper()) == "OK"


def test_unlisted_across_tenants_and_domains(mail, tenant, make_tenant):
    """Another tenant's addresses are listed by its own rows only: a catch-all covers its
    own domain, never another tenant's, a subdomain or a pending domain."""
    mine = tenant.domain()
    alice = tenant.mailbox(mine, "alice", quota_mb=0)
    _alias(tenant, f"@{mine}", alice)
    other = make_tenant()
    theirs = other.domain()
    oscar = other.mailbox(theirs, "oscar", quota_mb=0)
    _alias(other, f"info@{theirs}", oscar)
    pending = tenant.domain(prove=False)
    held = mail.mx()
    try:
        _accepted(mail, f"nobody@{mine}", held)             # my catch-all
        _accepted(mail, oscar, held)                          # their mailbox and alias
        _accepted(mail, f"info@{theirs}", held)
        _refused_unknown(mail, f"nobody@{theirs}", held)     # not caught by my catch-all
        _refused_unknown(mail, f"alice@{theirs}", held)
        for foreign in (f"nobody@sub.{mine}", f"alice@{pending}", f"nobody@{pending}"):
            code, text = mail.rcpt(foreign, conn=held)
            assert code == 554 and b"Relay access denied" in text, (foreign, code, text)
    finally:
        held.quit()


def test_hostile_local_parts(mail, tenant, sql):
    """Quotes, SQL, routing characters and over-long local parts: refused as unknown (or as
    relaying), never accepted, never an error; with a catch-all the plain ones are caught,
    the routed ones still refused. (A connection per address: smtpd slows down and then
    drops a client after 10 and 20 refusals.)"""
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice", quota_mb=0)
    plain = ['"no body"', "o'brien", "\"x'); DROP TABLE mailserver.aliases; --\"", '"a\\"b"', "*", "_",
             "a" * 64, "a" * 65, "a" * 300, '"alice "', "alice\\'"]
    routed = ["alice%example.org", "alice!example.org", '"alice@example.org"', "%", "a%b%c"]

    def each(addresses, check):
        for address in addresses:
            conn = mail.mx()
            try:
                check(conn, address)
            finally:
                conn.quit()

    def relay_denied(conn, address):
        code, text = _rcpt(conn, address)
        assert code == 554 and b"Relay access denied" in text, (address, code, text)

    each([f"{local}@{domain}" for local in plain], lambda c, a: _refused_unknown(mail, a, c))
    each([f"{local}@{domain}" for local in routed], relay_denied)
    # this host's own address as a domain literal: Postfix's local class, refused
    conn = mail.mx()
    try:
        code, text = _rcpt(conn, "alice@[127.0.0.1]")
        assert code == 550 and b"local delivery is disabled" in text, (code, text)
    finally:
        conn.quit()
    _alias(tenant, f"@{domain}", alice)
    each([f"{local}@{domain}" for local in plain], lambda c, a: _accepted(mail, a, c))
    each([f"{local}@{domain}" for local in routed], relay_denied)
    assert sql("SELECT count(*) AS n FROM mailserver.aliases WHERE source = %s", (alice,))[0]["n"] == 1
    for local in ("%", "_", "a%", "'; SELECT 1; --", "a\\", ""):
        assert _decision(sql, local, domain) in (None, "OK"), local     # the catch-all, or routed
