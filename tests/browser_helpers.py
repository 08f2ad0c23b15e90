"""What every browser test shares: Debian's Chromium driven by Playwright (its
own browsers are never downloaded), a page, a screenshot, and the wait for a
state the browser's action causes elsewhere. Used by the back-office and
portal tests (tests_odoo/, Odoo's venv; its conftest.py puts tests/ on
sys.path) and by the webmail's (webmail_browser.py: tests/webmail,
tests/deploy)."""

import contextlib
import time

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 900}


def launch(p):
    """A headless Debian Chromium of the Playwright `p` (sync_playwright())."""
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


@contextlib.contextmanager
def chromium():
    """with chromium() as browser: ...; closed at the end."""
    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, timeout):
    """A page in a fresh context (its own cookies) whose steps wait at most `timeout` ms."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(timeout)
    return page


def screenshot(page, path, width, height):
    """The whole page at `path` (a .png) in a viewport of width x height (Odoo
    scrolls inside its own pane: a tall viewport for the picture); the page
    keeps its own viewport afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": width, "height": height})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def poll(fetch, done, tries=50):
    """fetch() until done(value), `tries` attempts 0.2 s apart; the last value (the caller asserts)."""
    for _ in range(tries):
        value = fetch()
        if done(value):
            break
        time.sleep(0.2)
    return value
