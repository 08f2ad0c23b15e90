# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Through the back office, as a user would: create a domain (it waits for its
ownership proof; the manager vouches for it) and a mailbox with the catch-all
ticked in Odoo's forms (Debian's Chromium driven by Playwright), then log in
over IMAP with that password and receive mail sent to an unknown address of
the domain (the catch-all)."""

import imaplib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage

import psycopg2
import pytest
from browser_helpers import launch, new_page, poll, screenshot  # noqa: F401 (poll: the other browser tests take it from here)
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT

SHOTS = ROOT / "var" / "screenshots"


def odoo_login(page, env, login, password, landing):
    """Log in on Odoo's login form; wait for the page it lands on (a glob: '**/odoo**', '**/my**')."""
    page.goto(f"{env['ODOO_URL']}/web/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(landing)


def form_shot(page, name, width=1400, height=1500):
    """var/screenshots/<name>.png of the whole form or page (browser_helpers.screenshot)."""
    screenshot(page, SHOTS / f"{name}.png", width, height)


@pytest.fixture
def page(env):
    with sync_playwright() as p:
        browser = launch(p)
        page = new_page(browser, 30000)
        odoo_login(page, env, env["ODOO_LOGIN"], env["ODOO_PASSWORD"], "**/odoo**")
        # The first page after a module install or update builds Odoo's asset
        # bundles, which takes longer than one step may on a busy 2-core box:
        # wait for the web client itself before the test's steps start.
        page.locator(".o_main_navbar").wait_for(timeout=180_000)
        yield page
        browser.close()


def pick_many2one(page, field, text):
    box = page.locator(f"div[name={field}] input")
    box.fill(text)
    page.locator(".o-autocomplete--dropdown-menu li a", has_text=text).first.click()


def save(page):
    page.locator(".o_form_button_save").click()
    expect(page.locator(".o_form_button_save")).to_be_hidden()
    expect(page.locator(".o_notification.border-danger, .modal .o_error_dialog")).to_have_count(0)


def catch_all_destinations(env, domain):
    conn = psycopg2.connect(env["MAILDB_DSN"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT destination FROM aliases WHERE source = %s", (f"@{domain}",))
            return cur.fetchall()
    finally:
        conn.close()


def imap_login(env, user, password):
    imap = imaplib.IMAP4(env.get("IMAP_HOST", "127.0.0.1"), int(env["IMAP_PORT"]))
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the dev stack's self-signed certificate
    imap.starttls(ssl_context=ctx)
    imap.login(user, password)
    return imap


def test_domain_and_catch_all_mailbox_through_the_forms(env, odoo, tenant, page):
    base = env["ODOO_URL"]
    domain = f"ui{uuid.uuid4().hex[:8]}.emboux-e2e.test"
    password = "Ui-" + uuid.uuid4().hex[:12]

    page.goto(f"{base}/odoo/action-emboux_core.emboux_domain_action/new")
    page.locator("div[name=name] input").fill(domain)
    pick_many2one(page, "tenant_id", tenant["name"])
    save(page)
    # Odoo asked the platform for an ownership proof: once the create is
    # applied, the form shows the TXT record to publish
    dom = poll(lambda: odoo("emboux.domain", "search_read", [("name", "=", domain)],
                            fields=["sync_state", "ownership", "ownership_record_value"]),
               lambda dom: dom[0]["sync_state"] != "pending")
    assert dom[0]["ownership"] == "pending" and dom[0]["ownership_record_value"].startswith("emboux-verify="), dom
    page.reload()
    expect(page.locator("div[name=ownership_record_value]")).to_contain_text(dom[0]["ownership_record_value"])
    # nobody can publish DNS for this test name: the manager vouches, explicitly
    page.locator("button[name=action_vouch_ownership]").click()
    page.locator(".modal-footer .btn-primary").click()
    dom = poll(lambda: odoo("emboux.domain", "search_read", [("name", "=", domain)],
                            fields=["sync_state", "ownership"]),
               lambda dom: dom[0]["ownership"] == "vouched" and dom[0]["sync_state"] == "synced")
    assert dom[0]["ownership"] == "vouched" and dom[0]["sync_state"] == "synced", dom

    page.goto(f"{base}/odoo/action-emboux_core.emboux_mailbox_action/new")
    page.locator("div[name=local_part] input").fill("Boss")
    pick_many2one(page, "domain_id", domain)
    page.locator("div[name=password] input").fill(password)
    page.locator("div[name=catch_all] input").check()
    save(page)
    expect(page.locator("div[name=client_settings]")).to_contain_text("993")

    email = f"boss@{domain}"
    # Odoo sent the change right after its commit: the records say so
    box = odoo("emboux.mailbox", "search_read", [("email", "=", email)], fields=["sync_state", "catch_all"])
    assert box and box[0]["catch_all"], box
    box = poll(lambda: odoo("emboux.mailbox", "search_read", [("email", "=", email)],
                            fields=["sync_state", "sync_error"]),
               lambda box: box[0]["sync_state"] != "pending")
    assert box[0]["sync_state"] == "synced", box
    # ... and so does the mail DB
    assert catch_all_destinations(env, domain) == [(email,)]

    # on the saved mailbox the catch-all is a toggle that applies at once (no Save)
    page.locator("div[name=catch_all] input").uncheck()
    left = poll(lambda: catch_all_destinations(env, domain), lambda left: not left)
    assert left == [], "unticking the catch-all did not remove it"
    page.locator("div[name=catch_all] input").check()
    expect(page.locator(".o_form_button_save")).to_be_hidden()
    box = poll(lambda: odoo("emboux.mailbox", "search_read", [("email", "=", email)],
                            fields=["sync_state", "catch_all"]),
               lambda box: box[0]["catch_all"] and box[0]["sync_state"] == "synced")
    assert box[0]["catch_all"] and box[0]["sync_state"] == "synced", box

    # the password typed in the form opens the mailbox over IMAP
    imap = imap_login(env, email, password)
    try:
        assert imap.select("INBOX")[0] == "OK"
        # the catch-all delivers mail for an address that does not exist
        msg = EmailMessage()
        msg["From"], msg["To"] = "sender@example.org", f"nobody-{uuid.uuid4().hex[:6]}@{domain}"
        msg["Subject"] = "catch-all check"
        msg.set_content("hello")
        with smtplib.SMTP(env.get("SMTP_HOST", "127.0.0.1"), int(env["SMTP_PORT"]), timeout=15) as smtp:
            smtp.send_message(msg)
        for _ in range(300):  # up to a minute
            imap.noop()
            status, data = imap.search(None, '(SUBJECT "catch-all check")')
            if data and data[0]:
                break
            time.sleep(0.2)
        assert data and data[0], "mail to an unknown address did not reach the catch-all mailbox"
    finally:
        imap.logout()
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(env, email, password + "-wrong")
