"""Webmail (issue 13): Debian's Roundcube of the dev stack (WEBMAIL_URL), as a
mailbox holder uses it in Chromium: log in (against our Dovecot), send a
message that arrives in another mailbox (through our submission service:
OpenDKIM signs it, and the outbound policy applies -- a mailbox whose
submission is disabled cannot send from webmail either), and change the
password (Roundcube's password plugin -> POST /mailbox/password), then log
in over IMAP with the new one. Roundcube holds no mail-DB credential."""

import imaplib
import pathlib
import ssl
import uuid

import pytest
from browser_helpers import poll
from playwright.sync_api import expect
from webmail_browser import change_password, chromium, login, send, sent_ok

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "webmail horse 1"


def imap_login(env, user, password):
    imap = imaplib.IMAP4(env["IMAP_HOST"], int(env["IMAP_PORT"]), timeout=30)
    ctx = ssl.create_default_context(cafile=env["MAIL_TLS_CERT"])   # the dev stack's self-signed certificate
    ctx.check_hostname = False
    imap.starttls(ssl_context=ctx)
    imap.login(user, password)
    return imap


def headers_of(env, user, password, subject):
    """The header block of the INBOX message with this subject, or None."""
    imap = imap_login(env, user, password)
    try:
        imap.select("INBOX", readonly=True)
        nums = imap.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
        return imap.fetch(nums[0], "(BODY.PEEK[HEADER])")[1][0][1].decode() if nums else None
    finally:
        imap.logout()


def stored_hash(sql, email):
    return sql("SELECT password_hash FROM mailboxes WHERE email = %s", (email,))[0]["password_hash"]


@pytest.fixture(scope="module")
def webmail_url(devenv):
    url = devenv.get("WEBMAIL_URL")
    if not url:
        pytest.fail("WEBMAIL_URL missing in var/dev.env: the webmail is not up (./dev up)")
    return url


@pytest.fixture
def boxes(tenant):
    d = tenant.domain()
    # the domain's DKIM key (made by its first verify): OpenDKIM signs what its mailboxes submit
    assert tenant.post(f"/domains/{d}/verify").status_code == 200
    return tenant.mailbox(d, "alice", password=PASSWORD), tenant.mailbox(d, "bob", password=PASSWORD)


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


def test_log_in_send_and_change_the_password(devenv, webmail_url, boxes, browser, sql):
    alice, bob = boxes
    page = login(browser, webmail_url, alice, PASSWORD)
    subject = f"webmail-{uuid.uuid4().hex[:8]}"
    send(page, webmail_url, bob, subject, "sent from Roundcube")
    sent_ok(page)
    got = poll(lambda: headers_of(devenv, bob, PASSWORD, subject), lambda h: h is not None, tries=150)
    assert got is not None, "the message sent from webmail did not arrive"
    # signed by OpenDKIM for alice's domain, as mail from any client of the submission service
    assert "DKIM-Signature:" in got and f"d={alice.split('@')[1]};" in got, got
    # it went out through the submission service, authenticated as alice
    assert f"sasl_username={alice}" in (ROOT / "var" / "log" / "postfix.log").read_text(errors="replace")

    # a wrong current password is refused and changes nothing
    before = stored_hash(sql, alice)
    expect(change_password(page, webmail_url, "not my password", "webmail horse 22")) \
        .to_contain_text("incorrect", ignore_case=True)
    assert stored_hash(sql, alice) == before
    # a new one too short for the connector's rule (8) is refused by the form
    expect(change_password(page, webmail_url, PASSWORD, "short")).to_contain_text("at least 8")
    assert stored_hash(sql, alice) == before
    # the right one: the connector stores the new hash
    expect(change_password(page, webmail_url, PASSWORD, "webmail horse 22")).to_contain_text("Successfully saved")
    assert stored_hash(sql, alice) != before
    imap_login(devenv, alice, "webmail horse 22").logout()
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(devenv, alice, PASSWORD)


def test_outbound_policy_applies_to_webmail(webmail_url, boxes, browser, tenant):
    alice, bob = boxes
    assert tenant.put(f"/users/{alice}", json={"submission_disabled": True}).status_code == 200
    page = login(browser, webmail_url, alice, PASSWORD)
    stack = send(page, webmail_url, bob, f"refused-{uuid.uuid4().hex[:8]}", "must not leave")
    # refused at RCPT by the policy daemon and shown to the user (nothing queued, nothing lost)
    expect(stack).to_contain_text(f"Sending is disabled for {alice}")


def test_a_wrong_password_does_not_log_in(webmail_url, boxes, browser):
    alice, _ = boxes
    page = browser.new_page()
    page.goto(webmail_url + "/")
    page.fill("#rcmloginuser", alice)
    page.fill("#rcmloginpwd", "not the password")
    page.click("#rcmloginsubmit")
    expect(page.locator("#messagestack")).to_contain_text("Login failed")
    assert page.locator("#rcmloginuser").is_visible()


def test_roundcube_holds_no_mail_db_credential(devenv):
    conf = (ROOT / "var" / "webmail" / "etc" / "config.inc.php").read_text()
    for key in ("MAILDB_PASSWORD", "MAILDB_DOVECOT_PASSWORD", "MAILDB_POSTFIX_PASSWORD", "EMBOUX_API_KEY"):
        assert devenv[key] not in conf, key
    assert "sqlite:///" in conf and "pgsql" not in conf
