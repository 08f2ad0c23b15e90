# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 17 through the back office (Chromium): the domain form's Spam
filtering tab -- a Junk score above the refuse score is refused with a
sentence and nothing reaches the platform; valid thresholds and a block
list, saved, are the platform's settings (GET /domains/{name}/spam).
Screenshots in var/screenshots/ (for review)."""

import uuid

from playwright.sync_api import expect

from conftest import master_api
from test_browser import form_shot, page, poll, save  # noqa: F401 (the logged-in Chromium page fixture)


def shot(pg, name):
    form_shot(pg, f"spam-{name}")


def remote(env, domain):
    r = master_api(env, "GET", f"/domains/{domain}/spam")
    assert r.status_code == 200, r.text
    return r.json()


def test_spam_filtering_tab(env, odoo, tenant, page):  # noqa: F811
    domain = f"sp{uuid.uuid4().hex[:8]}.emboux-e2e.test"
    dom_id = odoo("emboux.domain", "create", {"name": domain, "tenant_id": tenant["id"]})
    synced = poll(lambda: odoo("emboux.domain", "read", [dom_id], fields=["sync_state"])[0],
                  lambda d: d["sync_state"] == "synced")
    assert synced["sync_state"] == "synced", synced

    page.goto(f"{env['ODOO_URL']}/odoo/action-emboux_core.emboux_domain_action/{dom_id}")
    page.locator(".o_notebook .nav-link", has_text="Spam filtering").click()
    junk = page.locator("div[name=spam_junk_score] input")
    expect(junk).to_have_value("6.00")

    # a Junk score above the refuse score: refused, said why, nothing sent
    junk.fill("20")
    page.locator(".o_form_button_save").click()
    expect(page.locator(".modal")).to_contain_text("must be below the refuse score")
    shot(page, "1-refused")
    page.locator(".modal .btn-primary, .modal .btn-close").first.click()
    assert remote(env, domain)["junk_score"] == 6.0

    junk.fill("4.5")
    page.locator("div[name=spam_reject_score] input").fill("12")
    page.locator("div[name=spam_greylisting] input").check()
    page.locator("div[name=spam_block_senders] textarea").fill("Spammer.example\nbad@Example.org")
    try:
        save(page)
    except AssertionError:
        shot(page, "failed-save")
        raise
    got = poll(lambda: remote(env, domain), lambda s: s["reject_score"] == 12.0)
    assert (got["junk_score"], got["reject_score"], got["greylisting"]) == (4.5, 12.0, True), got
    assert got["block_senders"] == ["@spammer.example", "bad@example.org"], got
    page.reload()
    page.locator(".o_notebook .nav-link", has_text="Spam filtering").click()
    expect(page.locator("div[name=spam_block_senders] textarea")).to_have_value("@spammer.example\nbad@example.org")
    shot(page, "2-saved")
