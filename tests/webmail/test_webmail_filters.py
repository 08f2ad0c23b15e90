"""Webmail filters (issue 17, docs/inbound.md "User filters"): Roundcube's
managesieve plugin talks to the dev stack's ManageSieve (STARTTLS, the
mailbox's own login): a filter set uploaded by another client shows in
Roundcube's Settings > Filters."""

import pathlib
import uuid

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
