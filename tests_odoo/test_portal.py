# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The customer portal (/my/email, emboux_saas) as two customers' portal
users would use it in Chromium: the first adds a domain and sees the DNS
record that proves ownership, creates a mailbox, resets its password and
logs in over IMAP with the new one; the second sees none of it, and posting
the first one's mailbox id changes nothing."""

import imaplib
import time
import uuid

import pytest
from browser_helpers import launch, new_page
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT
from test_browser import imap_login, odoo_login

SHOTS = ROOT / "var" / "screenshots"


def wait_for(fn, what):
    for _ in range(100):
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(what)


@pytest.fixture
def customers(odoo):
    """Two tenants, each with a portal user (login, password)."""
    made = []
    for _ in range(2):
        ref = "e2e-portal-" + uuid.uuid4().hex[:8]
        company = odoo("res.partner", "create", {"name": f"E2E portal {ref}", "is_company": True})
        contact = odoo("res.partner", "create", {"name": f"Contact {ref}", "parent_id": company,
                                                 "email": f"{ref}@example.com"})
        tid = odoo("emboux.tenant", "create", {"name": f"E2E portal {ref}", "partner_id": company,
                                              "partner_ref": ref, "mailboxes_per_domain": 0, "domains_allowed": 0})
        password = "Pw-" + uuid.uuid4().hex[:14]
        uid = odoo("res.users", "create", {"name": f"Contact {ref}", "login": f"{ref}@example.com",
                                           "partner_id": contact, "password": password,
                                           "group_ids": [(6, 0, [odoo("ir.model.data", "check_object_reference",
                                                                      "base", "group_portal")[1]])]},
                   context={"no_reset_password": True})
        made.append({"tenant": tid, "login": f"{ref}@example.com", "password": password, "uid": uid})
    yield made
    for c in made:
        domains = odoo("emboux.domain", "search", [("tenant_id", "=", c["tenant"])], context={"active_test": False})
        if domains:
            odoo("emboux.domain", "unlink", domains)
        odoo("res.users", "write", [c["uid"]], {"active": False})
        odoo("emboux.tenant", "unlink", [c["tenant"]])


def portal_page(p, env, login, password):
    browser = launch(p)
    page = new_page(browser, 60000)
    odoo_login(page, env, login, password, "**/my**")
    return browser, page


@pytest.fixture
def zones(env):
    """The dev stack's DNS (NSD): a zone for the test's domain."""
    from dns_zones import Zones

    class PortalZones(Zones):
        def _wait(self, zone):
            pass  # (no dnspython in Odoo's venv) the test reloads the page until the record shows

    z = PortalZones(env)
    yield z
    z.cleanup()


def test_portal_domain_mailbox_password_and_isolation(env, odoo, customers, zones):
    base = env["ODOO_URL"]
    alice, bob = customers
    domain = f"portal{uuid.uuid4().hex[:8]}.emboux-e2e.test"
    first_pw, new_pw = "First-" + uuid.uuid4().hex[:10], "Second-" + uuid.uuid4().hex[:10]
    with sync_playwright() as p:
        browser, page = portal_page(p, env, alice["login"], alice["password"])
        try:
            page.goto(f"{base}/my")
            page.locator("a[href='/my/email']").first.click()
            page.locator("form[action='/my/email/domain/add'] input[name=name]").fill(domain)
            page.get_by_role("button", name="Add a domain").click()
            expect(page.locator(".alert-success")).to_contain_text("TXT record")
            dom = wait_for(lambda: odoo("emboux.domain", "search_read", [("name", "=", domain),
                                                                         ("ownership_record_value", "!=", False)],
                                        fields=["ownership", "ownership_record_value", "ownership_record_name"]),
                           "the platform never gave the ownership record")[0]
            assert dom["ownership"] == "pending"
            page.reload()
            row = page.locator(f"tr[data-domain='{domain}']")
            expect(row).to_contain_text(dom["ownership_record_name"])
            expect(row).to_contain_text(dom["ownership_record_value"])
            # nobody can publish DNS for a test name: the operator vouches
            domain_id = odoo("emboux.domain", "search", [("name", "=", domain)])[0]
            odoo("emboux.domain", "action_vouch_ownership", [domain_id])

            # live DNS status: nothing published yet, then the MX record appears in DNS
            page.goto(f"{base}/my/email")
            dns = page.locator(f"details.emboux-dns[data-domain='{domain}']")
            mx = dns.locator("tr[data-record=MX]")
            expect(mx).to_have_attribute("data-status", "missing")
            expect(page.locator(f"tr[data-domain='{domain}'] .emboux-dns-summary")).to_contain_text("to fix")
            expected_mx = mx.locator("td").nth(3).inner_text().strip()
            zones.write(domain, [("@", "MX", expected_mx.split()[0] + " " + expected_mx.split()[1].rstrip(".") + ".")])
            wait_for(lambda: (page.reload(), mx.get_attribute("data-status") == "ok")[1],
                     "the published MX record never showed as OK")
            expect(page.locator(".emboux-usage [data-usage=domains] .emboux-used")).to_have_text("1")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "portal-my-email.png"), full_page=True)

            page.locator("form[action='/my/email/mailbox/create'] input[name=local_part]").fill("desk")
            create_form = "form[action='/my/email/mailbox/create']"
            page.locator(f"{create_form} select[name=domain_id]").select_option(label="@" + domain)
            page.locator("form[action='/my/email/mailbox/create'] input[name=password]").fill(first_pw)
            page.get_by_role("button", name="Create a mailbox").click()
            expect(page.locator(".alert-success")).to_contain_text("Mailbox created")
            email = f"desk@{domain}"
            box_row = page.locator(f"tr[data-mailbox='{email}']")
            box_row.locator("input[name=password]").fill(new_pw)
            box_row.get_by_role("button", name="Reset password").click()
            expect(page.locator(".alert-success")).to_contain_text("Password changed")
            wait_for(lambda: odoo("emboux.mailbox", "search_count", [("email", "=", email),
                                                                      ("sync_state", "=", "synced")])
                     and odoo("emboux.domain", "search_count", [("name", "=", domain),
                                                                ("sync_state", "=", "synced")]),
                     "the mailbox never reached the platform")
            box_id = odoo("emboux.mailbox", "search", [("email", "=", email)])[0]
        finally:
            browser.close()

        imap = wait_for(lambda: _try_login(env, email, new_pw), "the new password does not open the mailbox")
        imap.logout()
        with pytest.raises(imaplib.IMAP4.error):
            imap_login(env, email, first_pw)

        # the other customer sees none of it, and cannot act on it
        browser, page = portal_page(p, env, bob["login"], bob["password"])
        try:
            page.goto(f"{base}/my/email")
            expect(page.locator("body")).not_to_contain_text(domain)
            page.evaluate("""([id, token]) => { const f = document.createElement('form'); f.method = 'post';
                f.action = '/my/email/mailbox/' + id + '/delete'; const i = document.createElement('input');
                i.name = 'csrf_token'; i.value = token; f.appendChild(i); document.body.appendChild(f);
                f.submit(); }""",
                          [box_id, page.locator("input[name=csrf_token]").first.get_attribute("value")
                           if page.locator("input[name=csrf_token]").count() else ""])
            expect(page.locator(".alert-danger")).to_contain_text("not one of your records")
        finally:
            browser.close()
    assert odoo("emboux.mailbox", "search_count", [("id", "=", box_id)]) == 1


def _try_login(env, email, password):
    try:
        return imap_login(env, email, password)
    except imaplib.IMAP4.error:
        return None
