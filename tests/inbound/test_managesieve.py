"""ManageSieve (issue 17, docs/inbound.md "User filters"): a mailbox's own
Sieve filters, uploaded as any client does (RFC 5804 over STARTTLS with the
mailbox's password), apply to the next message that comes in on port 25;
a script that does not compile is refused with the compiler's words and
changes nothing; a login reaches its own scripts only; the platform's Junk
rule (sieve_before) runs first and a user's script cannot undo it."""

import pytest

from inbound_helpers import GTUBE_JUNK, PASSWORD, unique
from managesieve_client import ManageSieve


@pytest.fixture(scope="session")
def sieve_port(devenv):
    port = devenv.get("MANAGESIEVE_PORT")
    if not port:
        pytest.fail("MANAGESIEVE_PORT missing in var/dev.env: the mail stack is not up (./dev up)")
    return int(port)


@pytest.fixture
def connect(devenv, sieve_port):
    opened = []

    def _connect(user=None, password=PASSWORD, source=None, tls=True):
        c = ManageSieve(devenv.get("IMAP_HOST") or "127.0.0.1", sieve_port, source=source)
        opened.append(c)
        if tls:
            r = c.starttls(devenv["MAIL_TLS_CERT"], devenv["MAIL_HOSTNAME"])
            assert r.ok, r
        if user:
            r = c.login(user, password)
            assert r.ok, r
        return c

    yield _connect
    for c in opened:
        c.logout()


def filing(folder, marker):
    return ('require ["fileinto", "mailbox"];\r\n'
            f'if header :contains "Subject" "{marker}" {{\r\n'
            f'  fileinto :create "{folder}";\r\n'
            '}\r\n')


def test_starttls_and_our_passwords(connect, mailbox):
    # From another loopback address (not "the server's own", which Dovecot
    # counts as secured): no login in clear text, STARTTLS offered.
    c = connect(source="127.0.0.2", tls=False)
    assert "STARTTLS" in c.capabilities
    assert "fileinto" in c.capabilities["SIEVE"].split()
    # "vnd.dovecot.pipe" is for the platform's own scripts only
    assert "vnd.dovecot.pipe" not in c.capabilities["SIEVE"].split()
    r = c.login(mailbox, PASSWORD)
    assert not r.ok, r
    c2 = connect(source="127.0.0.2")
    assert "SASL" in c2.capabilities and "PLAIN" in c2.capabilities["SASL"].split()
    assert not c2.login(mailbox, "not the password").ok
    assert c2.login(mailbox, PASSWORD).ok
    assert c2.scripts() == {}


def test_an_uploaded_filter_applies_to_the_next_message(connect, inbound, make_sender, mailbox):
    c = connect(mailbox)
    marker = unique("sieve-")
    folder = unique("Filtered")
    r = c.put("emboux-test", filing(folder, marker))
    assert r.ok, r
    assert c.activate("emboux-test").ok
    assert c.scripts() == {"emboux-test": True}

    sender = make_sender()
    frm, subject, raw = sender.message(mailbox, subject=f"{marker} invoice")
    assert inbound.send(frm, mailbox, raw)[0] == 250
    msg = inbound.wait(mailbox, subject, folder)
    assert msg["Subject"] == subject
    assert inbound.find(mailbox, subject, "INBOX") is None
    # a message the filter does not match stays in the inbox
    frm, other, raw = sender.message(mailbox)
    assert inbound.send(frm, mailbox, raw)[0] == 250
    assert inbound.where(mailbox, other, ("INBOX", folder))[0] == "INBOX"

    # deactivated (SETACTIVE ""), the next message is no longer filed
    assert c.activate("").ok
    assert c.scripts() == {"emboux-test": False}
    frm, subject, raw = sender.message(mailbox, subject=f"{marker} again")
    assert inbound.send(frm, mailbox, raw)[0] == 250
    assert inbound.where(mailbox, subject, ("INBOX", folder))[0] == "INBOX"


def test_a_script_that_does_not_compile_is_refused_and_changes_nothing(connect, inbound, make_sender, mailbox):
    c = connect(mailbox)
    marker = unique("sieve-")
    good = filing("Kept", marker)
    assert c.put("filters", good).ok
    assert c.activate("filters").ok

    broken = 'require ["fileinto"];\r\nif header :contains "Subject" "x" { fileinto "Oops" \r\n'
    r = c.put("filters", broken)                       # replacing the active script
    assert r.status == "NO", r
    assert "error" in r.text.lower() and "line" in r.text.lower(), r   # the compiler's words
    r = c.put("other", 'require ["nosuchextension"];\r\nkeep;\r\n')
    assert r.status == "NO" and "nosuchextension" in r.text, r
    r = c.check(broken)
    assert r.status == "NO", r

    assert c.scripts() == {"filters": True}            # nothing added, nothing deactivated
    r, text = c.get("filters")
    assert r.ok and text.decode() == good, (r, text)
    # and the stored filter still works on the next message
    sender = make_sender()
    frm, subject, raw = sender.message(mailbox, subject=f"{marker} still filtered")
    assert inbound.send(frm, mailbox, raw)[0] == 250
    assert inbound.where(mailbox, subject, ("INBOX", "Kept"))[0] == "Kept"


def test_a_login_reaches_its_own_scripts_only(connect, inbound, make_sender, tenant, make_tenant):
    domain = tenant.domain()
    a, b = tenant.mailbox(domain), tenant.mailbox(domain)
    marker = unique("sieve-")
    cb = connect(b)
    b_script = filing("ForB", marker)
    assert cb.put("b-private", b_script).ok and cb.activate("b-private").ok
    cb.logout()

    ca = connect(a)
    assert ca.scripts() == {}                          # B's script is not listed
    r, _ = ca.get("b-private")
    assert r.status == "NO", r
    for name in ("../" + b.split("@")[0] + "/sieve/b-private", "/etc/passwd", "a/b"):
        r = ca.put(name, "keep;\r\n")
        assert r.status == "NO", (name, r)
    assert ca.delete("b-private").status == "NO"
    assert ca.activate("b-private").status == "NO"
    ca.logout()

    # A's password with B as the authorization identity (no master users)
    c = connect()
    assert not c.login(a, PASSWORD, authzid=b).ok
    # a mailbox of another tenant, likewise
    other = make_tenant()
    c2 = connect(other.mailbox(other.domain()))
    assert c2.scripts() == {}
    assert c2.get("b-private")[0].status == "NO"

    # B's filter is intact and still applies
    cb = connect(b)
    assert cb.scripts() == {"b-private": True}
    assert cb.get("b-private")[1].decode() == b_script
    sender = make_sender()
    frm, subject, raw = sender.message(b, subject=f"{marker} for b")
    assert inbound.send(frm, b, raw)[0] == 250
    assert inbound.where(b, subject, ("INBOX", "ForB"))[0] == "ForB"


def test_a_users_script_runs_after_the_junk_rule_and_cannot_undo_it(connect, inbound, make_sender, mailbox):
    c = connect(mailbox)
    # Everything to the inbox, explicitly, and the X-Spam header ignored:
    # spam still goes to Junk (sieve_before stops before this script runs).
    script = ('require ["fileinto", "mailbox"];\r\n'
              'if header :is "X-Spam" "Yes" { fileinto "INBOX"; stop; }\r\n'
              'fileinto "INBOX";\r\n')
    assert c.put("inbox-everything", script).ok and c.activate("inbox-everything").ok
    sender = make_sender()
    subject = unique("junk-")
    frm, subject, raw = sender.message(mailbox, subject=subject, body=GTUBE_JUNK + "\r\n" + subject + "\r\n")
    assert inbound.send(frm, mailbox, raw)[0] == 250
    assert inbound.where(mailbox, subject)[0] == "Junk"
    # and the platform's rule is not among the user's scripts to delete
    assert set(c.scripts()) == {"inbox-everything"}


@pytest.mark.parametrize("script", [
    'require "vacation";\r\nvacation :days 1 "away";\r\n',
    'require "reject";\r\nreject "no";\r\n',
    'require ["enotify"];\r\nnotify "mailto:someone@example.net";\r\n',
])
def test_a_script_cannot_send_mail(connect, mailbox, script):
    """Mail a script would send (auto-replies, refusals, notifications)
    would pass no cap and no suspension: those extensions do not exist."""
    c = connect(mailbox)
    r = c.put("sends", script)
    assert not r.ok, r
    assert c.scripts() == {}


def test_a_redirect_keeps_the_message_instead_of_sending_it(connect, inbound, make_sender, mailbox):
    c = connect(mailbox)
    assert c.put("forward", 'redirect "elsewhere@example.net";\r\n').ok
    assert c.activate("forward").ok
    sender = make_sender()
    frm, subject, raw = sender.message(mailbox, subject=unique("redirected-"))
    assert inbound.send(frm, mailbox, raw)[0] == 250
    # delivered here (implicit keep), not deferred in Postfix's queue nor sent on
    assert inbound.wait(mailbox, subject, "INBOX")["Subject"] == subject
