# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""SaaS subdomains in the back office, as an operator scripts and clicks
them: a subdomain created by XML-RPC under a wildcard parent is registered
with the provider at once; the parent's form lists it in its Subdomains
tab; "Add subdomains" creates a list of them, reports the bad row by its
line number, and the good ones reach the platform."""

import uuid

from playwright.sync_api import expect

from conftest import ROOT
from conftest import master_api as api
from test_browser import page as admin_page  # noqa: F401  (the logged-in back-office page, a fixture)
from test_browser import poll

SHOTS = ROOT / "var" / "screenshots"


def test_wildcard_parent_rpc_subdomain_tab_and_bulk(env, odoo, tenant, admin_page):  # noqa: F811
    page = admin_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = env["ODOO_URL"]
    parent = f"app{uuid.uuid4().hex[:8]}.emboux-e2e.test"
    parent_id = odoo("emboux.domain", "create", {"name": parent, "tenant_id": tenant["id"], "wildcard": True})
    done = poll(lambda: odoo("emboux.domain", "read", [parent_id], ["sync_state"])[0],
                lambda d: d["sync_state"] != "pending")
    assert done["sync_state"] == "synced", done
    odoo("emboux.domain", "action_vouch_ownership", [parent_id])
    assert api(env, "GET", f"/domains/{parent}").json()["wildcard"] is True

    # by RPC: no parent given, found by name, registered at creation
    sub_id = odoo("emboux.domain", "create", {"name": f"rpc.{parent}"})
    sub = poll(lambda: odoo("emboux.domain", "read", [sub_id], ["sync_state", "subdomain_registered",
                                                              "parent_id", "tenant_id", "sync_error"])[0],
               lambda d: d["sync_state"] != "pending")
    assert sub["subdomain_registered"] and sub["parent_id"][0] == parent_id, sub
    assert sub["tenant_id"][0] == tenant["id"]
    assert api(env, "GET", f"/domains/rpc.{parent}").json()["parent"] == parent

    page.goto(f"{base}/odoo/action-emboux_core.emboux_domain_action/{parent_id}")
    page.get_by_role("tab", name="Subdomains").click()
    expect(page.locator("div[name=child_ids]")).to_contain_text(f"rpc.{parent}")
    page.screenshot(path=str(SHOTS / "domain-subdomains-tab.png"), full_page=True)

    page.locator("button", has_text="Add subdomains").click()
    dialog = page.locator(".modal")
    dialog.locator("div[name=names] textarea").fill("shop1\nshop2\n\nbad_label!\nshop3")
    page.screenshot(path=str(SHOTS / "subdomain-import-form.png"))
    dialog.get_by_role("button", name="Create the subdomains").click()
    report = dialog.locator("div[name=line_ids]")
    expect(report).to_contain_text(f"shop3.{parent}")
    rows = report.locator("tr.o_data_row")
    expect(rows).to_have_count(4)
    bad = rows.filter(has_text="bad_label!")
    expect(bad.locator("td[name=row]")).to_have_text("4")
    expect(bad.locator("td[name=error]")).not_to_be_empty()
    created = poll(lambda: odoo("emboux.domain", "search_read", [("parent_id", "=", parent_id)],
                                fields=["name", "sync_state", "subdomain_registered"]),
                   lambda rows: len(rows) == 4 and all(r["sync_state"] != "pending" for r in rows))
    assert sorted(r["name"] for r in created) == sorted(f"{x}.{parent}" for x in ("rpc", "shop1", "shop2", "shop3"))
    assert all(r["sync_state"] == "synced" and r["subdomain_registered"] for r in created), created
    dialog.get_by_role("button", name="Refresh").click()
    expect(dialog.locator("div[name=progress]")).to_contain_text("100")
    page.screenshot(path=str(SHOTS / "subdomain-import-report.png"))  # the page: Refresh re-renders the dialog
