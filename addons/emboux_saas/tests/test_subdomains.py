# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""SaaS subdomains (seed changelog v5.3): a subdomain created in Odoo under a
wildcard parent is linked to it and registered with the provider at its
creation, whatever its siblings' state here; deleting it removes what the
provider (the dev stack's Mailgun stand-in) held for it. Bulk creation
reports each bad row and creates nothing for it. Another customer cannot
hang a name under the parent."""

import base64
import os

import requests

from odoo.exceptions import UserError

from .common import SaasCase, api, maildb, uniq

MAILGUN_API_URL = os.environ.get("MAILGUN_API_URL", "")


def mailgun_domain(name):
    """What the Mailgun stand-in holds for `name` (None: nothing)."""
    r = requests.get(f"{MAILGUN_API_URL}/_domains/{name}", timeout=10)
    return r.json() if r.status_code == 200 else None


class TestSubdomains(SaasCase):

    def new_parent(self, provider=None):
        parent = self.new_domain(wildcard=True)
        self.flush_queue()
        self.assertEqual(parent.sync_state, "synced", parent.sync_error)
        r = api("PUT", f"/domains/{parent.name}/ownership/vouch", json={"vouched_by": "test"})
        self.assertEqual(r.status_code, 200, r.text)
        if provider:
            r = api("PUT", f"/domains/{parent.name}/outbound", json={"provider": provider})
            self.assertEqual(r.status_code, 200, r.text)
            r = api("POST", f"/domains/{parent.name}/verify")
            self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(api("GET", f"/domains/{parent.name}").json()["wildcard"])
        return parent

    def sub(self, parent, label, **kw):
        name = f"{label}.{parent.name}"
        self.addCleanup(api, "DELETE", f"/domains/{name}")
        return self.env["emboux.domain"].create(dict({"name": name}, **kw))

    def test_registered_at_creation_whatever_the_siblings_and_cleaned_on_delete(self):
        self.assertTrue(MAILGUN_API_URL, "MAILGUN_API_URL (var/dev.env) is required")
        parent = self.new_parent(provider="mailgun")
        # a sibling whose sync failed here: no bearing on the next one (v5.3)
        sibling = self.sub(parent, "broken")
        self.flush_queue()
        sibling.with_context(emboux_no_sync=True).write({"sync_state": "error", "sync_error": "test"})
        sub = self.sub(parent, "shop")          # no parent_id, no tenant given: found by name
        self.assertEqual((sub.parent_id, sub.tenant_id), (parent, parent.tenant_id))
        jobs = self.pending_jobs(sub)
        self.assertEqual(jobs.mapped("kind"), ["domain.create", "domain.register_subdomain"])
        self.flush_queue()
        self.assertEqual(sub.sync_state, "synced", sub.sync_error)
        self.assertTrue(sub.subdomain_registered)
        remote = api("GET", f"/domains/{sub.name}").json()
        self.assertEqual(remote["parent"], parent.name)
        self.assertIn(remote["ownership"], ("vouched", "verified"), "inherited from the parent")
        self.assertTrue(mailgun_domain(sub.name), "registered at the provider at creation")
        self.assertIn(sub, parent.child_ids)
        self.assertEqual(parent.subdomain_count, 2)
        # deleting it removes the provider-side state too
        name = sub.name
        sub.unlink()
        self.flush_queue()
        self.assertEqual(api("GET", f"/domains/{name}").status_code, 404)
        self.assertIsNone(mailgun_domain(name), "the provider's domain is gone")
        # and it can be created again, registered again
        again = self.sub(parent, "shop")
        self.flush_queue()
        self.assertTrue(again.subdomain_registered, again.sync_error)
        self.assertTrue(mailgun_domain(name))

    def test_local_provider_subdomain_signs_with_the_parent(self):
        parent = self.new_parent()
        sub = self.sub(parent, "app", tenant_id=parent.tenant_id.id, parent_id=parent.id)
        self.flush_queue()
        self.assertTrue(sub.subdomain_registered, sub.sync_error)
        # the connector's dns-check expects the parent's DKIM record for it: the parent's key signs it
        r = api("GET", f"/domains/{sub.name}/dns-check")
        self.assertEqual(r.status_code, 200, r.text)
        dkim = [c for c in r.json()["records"] if c["record"] == "DKIM"]
        self.assertTrue(dkim, r.json()["records"])
        self.assertTrue(all(c["name"].endswith("._domainkey." + parent.name) for c in dkim), dkim)
        self.assertEqual(maildb("SELECT count(*) FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
                                "WHERE d.name = %s AND k.status = 'active'", (parent.name,)), [(1,)])

    def test_parent_rules_other_customer_refused_nothing_written(self):
        parent = self.new_parent()
        other = self.new_tenant()
        jobs = self.env["emboux.sync.job"].search_count([])
        Domain = self.env["emboux.domain"]
        with self.assertRaisesRegex(UserError, "belongs to another customer"):
            Domain.create({"name": f"x.{parent.name}", "tenant_id": other.id})
        with self.assertRaisesRegex(UserError, "not a subdomain"):
            Domain.create({"name": f"{uniq('y')}.emboux-odoo.test", "parent_id": parent.id})
        # the portal of the other customer: refused as well
        with self.assertRaisesRegex(UserError, "belongs to another customer"):
            other.portal_add_domain(f"z.{parent.name}")
        self.assertFalse(Domain.search([("name", "like", parent.name), ("id", "!=", parent.id)]))
        self.assertEqual(self.env["emboux.sync.job"].search_count([]), jobs, "nothing queued")
        # a parent with subdomains is not deleted before them
        child = self.sub(parent, "c1")
        with self.assertRaisesRegex(UserError, "delete them first"):
            parent.unlink()
        self.assertTrue(parent.exists() and child.exists())

    def test_bulk_rows_reported_bad_rows_write_nothing(self):
        parent = self.new_parent()
        taken = self.sub(parent, "taken")
        self.flush_queue()
        rows = ["shop1", "Shop2", "", "bad_label!", f"ok3.{parent.name}", "taken", "other.example.org", "shop1"]
        for label in ("shop1", "shop2", "ok3"):
            self.addCleanup(api, "DELETE", f"/domains/{label}.{parent.name}")
        jobs_before = self.env["emboux.sync.job"].search_count([])
        wiz = self.env["emboux.subdomain.import"].create({"parent_id": parent.id, "names": "\n".join(rows)})
        wiz.action_import()
        report = {ln.row: (ln.name, bool(ln.domain_id), ln.error) for ln in wiz.line_ids}
        self.assertEqual(sorted(report), [1, 2, 4, 5, 6, 7, 8], "blank lines skipped, line numbers kept")
        created = wiz.line_ids.filtered("domain_id")
        self.assertEqual(sorted(created.mapped("name")),
                         sorted(f"{x}.{parent.name}" for x in ("shop1", "shop2", "ok3")))
        self.assertEqual((wiz.created_count, wiz.error_count), (3, 4))
        self.assertIn("already managed", report[6][2])
        self.assertIn("not under", report[7][2])
        self.assertIn("already managed", report[8][2], "a duplicate row")
        self.assertTrue(report[4][2])
        # bad rows wrote nothing: no domain, no queued call; good ones: create + register each
        self.assertEqual(self.env["emboux.domain"].search_count([("parent_id", "=", parent.id)]), 4)
        self.assertEqual(self.env["emboux.sync.job"].search_count([]) - jobs_before, 6)
        self.assertEqual((wiz.synced_count, wiz.waiting_count), (0, 3))
        self.flush_queue()
        wiz.invalidate_recordset()
        self.assertEqual((wiz.synced_count, wiz.waiting_count, wiz.sync_error_count), (3, 0, 0),
                         created.mapped("sync_error"))
        self.assertEqual(wiz.progress, 100.0)
        self.assertTrue(all(created.mapped("domain_id.subdomain_registered")))
        for dom in created.domain_id:
            self.assertEqual(api("GET", f"/domains/{dom.name}").json()["parent"], parent.name)

    def test_bulk_csv_and_quota(self):
        tenant = self.new_tenant(domains_allowed=3)
        parent = self.env["emboux.domain"].create({"name": f"{uniq('q')}.emboux-odoo.test",
                                                   "tenant_id": tenant.id, "wildcard": True})
        self.addCleanup(api, "DELETE", f"/domains/{parent.name}")
        self.flush_queue()
        api("PUT", f"/domains/{parent.name}/ownership/vouch", json={"vouched_by": "test"})
        for label in ("a", "b", "c"):
            self.addCleanup(api, "DELETE", f"/domains/{label}.{parent.name}")
        csv_text = "name,comment\na,first\nb,second\nc,over the quota\n"
        wiz = self.env["emboux.subdomain.import"].create({
            "parent_id": parent.id, "file": base64.b64encode(csv_text.encode()), "file_name": "subs.csv"})
        wiz.action_import()
        report = {ln.row: ln for ln in wiz.line_ids}
        self.assertEqual(sorted(report), [2, 3, 4])
        self.assertTrue(report[2].domain_id and report[3].domain_id)
        self.assertFalse(report[4].domain_id)
        self.assertIn("may host 3 domain", report[4].error)
        self.flush_queue()
        self.assertEqual(report[3].domain_id.sync_state, "synced", report[3].domain_id.sync_error)
