"""Roundcube (the webmail, issue 13) as a mailbox holder uses it: Debian's
Chromium driven by Playwright (browser_helpers.py). Used
by tests/webmail (dev stack) and tests/deploy/test_deployed_webmail.py (deployment)."""

import time

import browser_helpers
from browser_helpers import chromium  # noqa: F401 (the webmail tests' browser, from here as before)
from playwright.sync_api import expect

# Roundcube's notices may take a moment on a busy machine (a ceiling, not a timed assertion)
expect.set_options(timeout=30_000)


def settle(page, quiet=0.5, ceiling=60):
    """Wait until the page has had no request in flight for `quiet` seconds.
    Roundcube keeps state (e.g. the message being composed) in the session,
    which every request writes back when it ends: a background request of
    the previous page that ends after the next page started may write back a
    session without that state ("Invalid compose ID")."""
    deadline, calm_since = time.monotonic() + ceiling, None
    while time.monotonic() < deadline:
        if page.emboux_inflight:
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        page.wait_for_timeout(100)


def new_page(browser):
    page = browser_helpers.new_page(browser, 60000)
    page.emboux_inflight = set()
    page.on("request", lambda r: page.emboux_inflight.add(r))
    page.on("requestfinished", lambda r: page.emboux_inflight.discard(r))
    page.on("requestfailed", lambda r: page.emboux_inflight.discard(r))
    return page


def login(browser, url, user, password):
    """A page logged into the webmail's mail view (Dovecot accepted the login)."""
    page = new_page(browser)
    page.goto(url + "/")
    page.fill("#rcmloginuser", user)
    page.fill("#rcmloginpwd", password)
    page.click("#rcmloginsubmit")
    # the mail view (an empty message list is hidden, hence "attached")
    page.locator("#messagelist").wait_for(state="attached")
    settle(page)
    return page


def send(page, url, to, subject, body):
    """Compose and send; returns the message stack (Roundcube's notices) to assert on."""
    settle(page)
    page.goto(url + "/?_task=mail&_action=compose")
    page.locator("#compose-subject").wait_for()
    settle(page)
    to_box = page.locator(".recipient-input input").first
    to_box.fill(to)
    to_box.press("Enter")
    page.fill("#compose-subject", subject)
    page.fill("#composebody", body)
    page.locator("button.send, a.send").first.click()
    return page.locator("#messagestack")


def sent_ok(page):
    # (a generous ceiling: the submission goes through the policy daemon and OpenDKIM)
    expect(page.locator("#messagestack")).to_contain_text("Message sent successfully", timeout=60000)


def change_password(page, url, current, new):
    """The password plugin's form; returns the message stack to assert on."""
    if "plugin.password" not in page.url:
        settle(page)
        page.goto(url + "/?_task=settings&_action=plugin.password")
        page.locator("#curpasswd").wait_for()
        settle(page)
    page.fill("#curpasswd", current)
    page.fill("#newpasswd", new)
    page.fill("#confpasswd", new)
    page.locator(".formbuttons .submit").first.click()
    return page.locator("#messagestack")
