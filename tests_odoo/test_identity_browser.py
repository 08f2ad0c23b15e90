# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 11 through the back office (Chromium): open a domain, verify it,
check its DNS and see each record with its status, publish exactly what
the DNS records tab shows, see the domain verified, and see the Outbound
tab's counters move after mail is sent through the submission port.
Screenshots of the tabs land in var/screenshots/ (for review)."""

import re
import uuid
from email.message import EmailMessage

import pytest
from playwright.sync_api import expect

from conftest import master_api
from test_browser import form_shot, page, poll  # noqa: F401 (the logged-in Chromium page fixture)


@pytest.fixture
def zones(env):
    from dns_zones import Zones

    class OdooZones(Zones):
        def _wait(self, zone):
            pass  # (no dnspython in Odoo's venv) the test checks again until the records show

    z = OdooZones(env)
    yield z
    z.cleanup()


def shot(pg, name):
    form_shot(pg, f"identity-{name}", width=1600, height=1900)


def dns_check(env, domain):
    r = master_api(env, "GET", f"/domains/{domain}/dns-check")
    return {e["record"]: e for e in r.json()["records"]}


def wait_dns(env, domain, done):
    """NSD loads a zone a moment after it is written: the connector's own
    check until `done(records)` (what the UI then shows at once)."""
    records = poll(lambda: dns_check(env, domain), done)
    assert done(records), records


def open_tab(pg, title):
    pg.locator(".o_notebook .nav-link", has_text=title).click()


def send_mail(env, user, password, to):
    from stack_clients import submission_session

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = user, to, f"outbound counter {uuid.uuid4().hex[:6]}"
    msg.set_content("Counted by the policy daemon.")
    with submission_session(env.get("SMTP_HOST", "127.0.0.1"), int(env["SUBMISSION_PORT"]), user, password) as s:
        s.send_message(msg)


def refresh_figures(pg, field):
    """Click Refresh figures; the field's text once the form has read the record again."""
    with pg.expect_response(lambda r: "web_read" in r.url):
        pg.locator("button[name=action_refresh_outbound]").click()
    return field.inner_text()


def test_verify_check_dns_and_outbound_counters(env, odoo, tenant, page, zones):  # noqa: F811
    base = env["ODOO_URL"]
    domain = f"id{uuid.uuid4().hex[:8]}.emboux-e2e.test"
    password = "Id-" + uuid.uuid4().hex[:12]
    dom_id = odoo("emboux.domain", "create", {"name": domain, "tenant_id": tenant["id"]})
    synced = poll(lambda: odoo("emboux.domain", "read", [dom_id], fields=["sync_state"])[0],
                  lambda d: d["sync_state"] == "synced")
    assert synced["sync_state"] == "synced", synced
    odoo("emboux.domain", "action_vouch_ownership", [dom_id])
    vouched = poll(lambda: odoo("emboux.domain", "read", [dom_id], fields=["ownership", "sync_state"])[0],
                   lambda d: d["ownership"] == "vouched" and d["sync_state"] == "synced")
    assert vouched["ownership"] == "vouched", vouched
    zones.write(domain, [])

    page.goto(f"{base}/odoo/action-emboux_core.emboux_domain_action/{dom_id}")
    expect(page.locator(".o_notebook .nav-link", has_text="Sending identity")).to_be_visible()
    state = page.locator(".o_notebook div[name=verification_state]")
    expect(state).to_contain_text("Not verified")
    page.locator(".o_form_statusbar button[name=action_verify]").click()
    expect(page.locator(".o_notification")).to_contain_text("Pending")
    page.reload()
    expect(state).to_contain_text("Pending")
    expect(page.locator("div[name=dkim_state]")).to_contain_text("Active")
    shot(page, "1-sending-identity")

    # DNS records: empty until checked, then one row per record with its status
    open_tab(page, "DNS records")
    shot(page, "2-dns-records-empty")
    wait_dns(env, domain, lambda recs: not recs["MX"]["lookup_failed"] and not recs["DKIM"]["lookup_failed"])
    rows = page.locator("div[name=dns_record_ids] .o_data_row")
    page.locator(".o_notebook button[name=action_check_dns]").click()
    expect(rows.first).to_be_visible()
    for record in ("MX", "SPF", "DKIM", "DMARC"):
        expect(rows.filter(has_text=record).first.locator("td[name=status]")).to_contain_text("Missing")
    shot(page, "3-dns-records-missing")

    # the customer publishes exactly what the tab shows (the required records)
    records = odoo("emboux.dns.record", "search_read", [("domain_id", "=", dom_id), ("required", "=", True)],
                   fields=["record_type", "name", "expected"])
    zones.write(domain, [(r["name"] + ".", r["record_type"],
                          r["expected"] + ("." if r["record_type"] in ("MX", "CNAME") else ""))
                         for r in records if r["record_type"] in ("MX", "TXT", "CNAME")])
    wait_dns(env, domain, lambda recs: recs["DKIM"]["status"] == "ok")
    page.locator(".o_notebook button[name=action_check_dns]").click()
    for record in ("MX", "SPF", "DKIM", "DMARC"):
        expect(rows.filter(has_text=record).first.locator("td[name=status]")).to_contain_text("OK")
    expect(page.locator(".badge", has_text="Every required record is published")).to_be_visible()
    shot(page, "4-dns-records-ok")

    page.locator(".o_form_statusbar button[name=action_refresh_verification]").click()
    open_tab(page, "Sending identity")
    expect(state).to_contain_text("Verified")

    # Outbound: the counters move after mail goes out through the submission port
    odoo("emboux.mailbox", "create", {"local_part": "sender", "domain_id": dom_id, "password": password})
    box = poll(lambda: odoo("emboux.mailbox", "search_read", [("email", "=", f"sender@{domain}")],
                            fields=["sync_state"]), lambda b: b and b[0]["sync_state"] == "synced")
    assert box and box[0]["sync_state"] == "synced", box
    open_tab(page, "Outbound")
    page.locator("button[name=action_refresh_outbound]").click()
    sent_today = page.locator("div[name=outbound_sent_today]")
    expect(sent_today).to_have_text("0")
    shot(page, "5-outbound-before")
    send_mail(env, f"sender@{domain}", password, "someone@example.org")
    send_mail(env, f"sender@{domain}", password, "other@example.org")
    # the policy daemon counted both at SMTP time (its writes may be batched: refresh until they show)
    counted = poll(lambda: refresh_figures(page, sent_today), lambda text: text.strip() == "2")
    assert counted.strip() == "2", counted
    expect(sent_today).to_have_text("2")
    expect(page.locator("div[name=outbound_sent_month]")).to_have_text("2")
    expect(page.locator("div[name=outbound_bytes_month]")).not_to_have_text("0")
    shot(page, "6-outbound-after")

    # the guillotine suspends its outbound: the form, the list and the kanban card say so, and the filter finds it
    r = master_api(env, "PUT", f"/domains/{domain}/outbound",
                   json={"outbound_status": "suspended", "outbound_status_reason": "bounce rate 6.0% > 0.5%"})
    assert r.status_code == 200, r.text
    page.locator("button[name=action_refresh_outbound]").click()
    expect(page.locator(".alert-danger", has_text="Outbound mail suspended")).to_contain_text("bounce rate 6.0%")
    shot(page, "7-outbound-suspended")
    page.goto(f"{base}/odoo/action-emboux_core.emboux_domain_action")
    page.locator(".o_searchview_input").fill(domain)
    page.locator(".o_searchview_input").press("Enter")
    page.locator(".o_searchview_dropdown_toggler").click()
    page.locator(".o-dropdown-item", has_text="Outbound suspended").click()
    page.locator(".o_searchview_dropdown_toggler").click()   # close the menu
    expect(page.locator(".o_searchview_facet", has_text="Outbound suspended")).to_be_visible()
    row = page.locator(".o_data_row", has_text=domain)
    expect(row).to_have_class(re.compile(r"text-danger"))
    expect(row.locator("td[name=outbound_status]")).to_contain_text("Suspended")
    shot(page, "8-list-outbound-suspended")
    page.locator(".o_switch_view.o_kanban").click()
    card = page.locator(".o_kanban_record", has_text=domain)
    expect(card).to_contain_text("Outbound suspended")
    expect(card).to_contain_text("bounce rate 6.0%")
    shot(page, "9-kanban-outbound-suspended")
