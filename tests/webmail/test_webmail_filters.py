"""Webmail filters (issue 17, docs/inbound.md "User filters"): Roundcube's
managesieve plugin talks to the dev stack's ManageSieve (STARTTLS, the
mailbox's own login): a filter set uploaded by another client shows in
Roundcube's Settings > Filters, and a filter made in Roundcube's form is the
mailbox's active script for any other client and files the next message."""

import imaplib
import pathlib
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage

import pytest
from managesieve_client import ManageSieve
from playwright.sync_api import expect
from webmail_browser import chromium, login, settle

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "webmail horse 1"


@pytest.fixture(scope="module")
def webmail_url(devenv):
    url = devenv.get("WEBMAIL_URL")
    if not url or not devenv.get("MANAGESIEVE_PORT"):
        pytest.fail("WEBMAIL_URL or MANAGESIEVE_PORT missing in var/dev.env: the stack is not up (./dev up)")
    return url


def sieve(devenv, user):
    c = ManageSieve(devenv["IMAP_HOST"], int(devenv["MANAGESIEVE_PORT"]))
    assert c.starttls(devenv["MAIL_TLS_CERT"], devenv["MAIL_HOSTNAME"]).ok
    assert c.login(user, PASSWORD).ok
    return c


def test_filters_uploaded_elsewhere_show_in_roundcube(devenv, webmail_url, tenant):
    user = tenant.mailbox(tenant.domain(), password=PASSWORD)
    rule = f"Invoices {uuid.uuid4().hex[:6]}"
    c = sieve(devenv, user)
    # the format Roundcube writes itself (a "# rule:[name]" comment per filter)
    script = ('require ["fileinto"];\r\n'
              f'# rule:[{rule}]\r\n'
              'if header :contains "subject" "invoice"\r\n{\r\n\tfileinto "Invoices";\r\n}\r\n')
    assert c.put("roundcube", script).ok and c.activate("roundcube").ok
    c.logout()

    with chromium() as browser:
        page = login(browser, webmail_url, user, PASSWORD)
        page.goto(webmail_url + "/?_task=settings&_action=plugin.managesieve")
        settle(page)
        expect(page.locator("#filterslist")).to_contain_text(rule)
        expect(page.locator("#filtersetslist")).to_contain_text("roundcube")
        page.screenshot(path=str(ROOT / "var" / "screenshots" / "webmail-filters.png"))


def test_a_filter_made_in_roundcube_files_the_next_message(devenv, webmail_url, tenant):
    user = tenant.mailbox(tenant.domain(), password=PASSWORD)
    marker = f"rc-{uuid.uuid4().hex[:8]}"
    with chromium() as browser:
        page = login(browser, webmail_url, user, PASSWORD)
        page.goto(webmail_url + "/?_task=settings&_action=plugin.managesieve")
        settle(page)
        page.locator("a.create, button.create").first.click()
        # the filter form: Roundcube's frame beside the list
        page.locator("iframe").first.wait_for()
        form = None
        for _ in range(300):
            form = next((f for f in page.frames if "managesieve-action" in f.url), None)
            if form is not None:
                break
            page.wait_for_timeout(100)
        assert form is not None, [f.url for f in page.frames]
        form.wait_for_selector("#_name")
        form.fill("#_name", "Move to Trash")
        form.select_option("#header0", "subject")
        form.select_option("#rule_op0", "contains")
        form.fill("input[name='_rule_target[0][]']", marker)
        form.select_option("#action_type0", "fileinto")
        form.select_option("#action_mailbox0", "Trash")
        form.locator("button.submit, button:has-text('Save')").first.click()
        expect(page.locator("#filterslist")).to_contain_text("Move to Trash")
        page.screenshot(path=str(ROOT / "var" / "screenshots" / "webmail-filter-created.png"))

    c = sieve(devenv, user)
    active = [name for name, on in c.scripts().items() if on]
    assert len(active) == 1, c.scripts()
    text = c.get(active[0])[1].decode()
    c.logout()
    assert marker in text and 'fileinto "Trash"' in text, text

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = user, user, f"{marker} goes to Trash"
    msg.set_content("Filed by the filter made in Roundcube.")
    with smtplib.SMTP(devenv["SMTP_HOST"], int(devenv["SMTP_PORT"]), timeout=60) as s:
        s.send_message(msg)
    ctx = ssl.create_default_context(cafile=devenv["MAIL_TLS_CERT"])
    deadline = time.monotonic() + 60    # a ceiling for delivery, not a timed assertion
    while True:
        imap = imaplib.IMAP4(devenv["IMAP_HOST"], int(devenv["IMAP_PORT"]), timeout=30)
        imap.starttls(ssl_context=ctx)
        imap.login(user, PASSWORD)
        imap.select("Trash", readonly=True)
        found = imap.search(None, "SUBJECT", f'"{marker}"')[1][0].split()
        imap.logout()
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert found, "the message did not reach Trash"
