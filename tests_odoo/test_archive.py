# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Archiving a mailbox in the back office is a real disable on the mail
platform: the confirmation says so, and once confirmed the mailbox no longer
logs in over IMAP; unarchiving lets it in again."""

import imaplib
import time
import uuid

import pytest
from playwright.sync_api import expect

from conftest import master_api
from test_browser import imap_login, page  # noqa: F401 (the logged-in Chromium page fixture)


def wait_synced(odoo, model, rec_id):
    for _ in range(150):
        rec = odoo(model, "read", [rec_id], ["sync_state", "sync_error"], context={"active_test": False})[0]
        if rec["sync_state"] != "pending":
            break
        time.sleep(0.2)
    assert rec["sync_state"] == "synced", rec
    return rec


def imap_ok(env, user, password):
    try:
        imap_login(env, user, password).logout()
        return True
    except imaplib.IMAP4.error:
        return False


@pytest.fixture
def mailbox(env, odoo, tenant):
    """A routed domain (created in Odoo, vouched for by the operator through
    the API) with one mailbox, synced."""
    domain = f"ar{uuid.uuid4().hex[:8]}.emboux-e2e.test"
    password = "Ar-" + uuid.uuid4().hex[:12]
    dom_id = odoo("emboux.domain", "create", {"name": domain, "tenant_id": tenant["id"]})
    wait_synced(odoo, "emboux.domain", dom_id)
    r = master_api(env, "PUT", f"/domains/{domain}/ownership/vouch", json={})
    assert r.status_code == 200, r.text
    box_id = odoo("emboux.mailbox", "create", {"domain_id": dom_id, "local_part": "leaver", "password": password})
    wait_synced(odoo, "emboux.mailbox", box_id)
    return {"id": box_id, "email": f"leaver@{domain}", "password": password}


def test_archive_confirmation_says_it_disables_and_logins_stop(env, odoo, mailbox, page):  # noqa: F811
    assert imap_ok(env, mailbox["email"], mailbox["password"])
    page.goto(f"{env['ODOO_URL']}/odoo/action-emboux_core.emboux_mailbox_action/{mailbox['id']}")
    expect(page.locator(".o_form_view div[name=local_part]")).to_be_visible()
    page.locator(".o_cp_action_menus button").first.click()
    page.locator(".o-dropdown--menu .o-dropdown-item", has_text="Archive").click()
    dialog = page.locator(".modal-dialog")
    expect(dialog).to_contain_text("disables this mailbox on the mail platform")
    expect(dialog).to_contain_text("the mail it holds is kept")
    dialog.locator(".modal-footer button.btn-primary").click()
    expect(page.locator(".o_widget_web_ribbon")).to_contain_text("Archived")
    wait_synced(odoo, "emboux.mailbox", mailbox["id"])
    assert not imap_ok(env, mailbox["email"], mailbox["password"]), "an archived mailbox still logs in"
    odoo("emboux.mailbox", "write", [mailbox["id"]], {"active": True})
    wait_synced(odoo, "emboux.mailbox", mailbox["id"])
    assert imap_ok(env, mailbox["email"], mailbox["password"])


def test_delete_confirmation_says_the_mailbox_and_its_mail_are_destroyed(env, odoo, mailbox, page):  # noqa: F811
    page.goto(f"{env['ODOO_URL']}/odoo/action-emboux_core.emboux_mailbox_action/{mailbox['id']}")
    expect(page.locator(".o_form_view div[name=local_part]")).to_be_visible()
    page.locator(".o_cp_action_menus button").first.click()
    menu = page.locator(".o-dropdown--menu")
    expect(menu).to_contain_text("Delete")
    expect(menu).not_to_contain_text("Duplicate")   # a mailbox address is unique
    menu.locator(".o-dropdown-item", has_text="Delete").click()
    dialog = page.locator(".modal-dialog")
    expect(dialog).to_contain_text("Destroy this mailbox?")
    expect(dialog).to_contain_text("with all the mail it holds")
    dialog.locator(".modal-footer button", has_text="No, keep it").click()
    expect(dialog).to_have_count(0)
    assert odoo("emboux.mailbox", "search_count", [("id", "=", mailbox["id"])]) == 1
