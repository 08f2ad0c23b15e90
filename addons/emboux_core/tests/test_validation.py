# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A change the platform would refuse is refused at once, with a sentence,
and leaves nothing behind: no Odoo record, no queued job, no mail DB row."""

from odoo.exceptions import UserError

from .common import TEST_TLD, EmbouxCase, api, maildb, uniq


class TestValidation(EmbouxCase):

    def assertNothingQueued(self, before):
        self.assertEqual(self.env["emboux.sync.job"].search_count([]), before, "no job may be queued")

    def test_invalid_domain_name(self):
        before = self.env["emboux.sync.job"].search_count([])
        for bad in ("not a domain", "nodot", "-bad-.com", "x..y.com", "a.123"):
            with self.assertRaisesRegex(UserError, "not a valid domain name"):
                self.env["emboux.domain"].create({"name": bad, "tenant_id": self.tenant.id})
        self.assertNothingQueued(before)
        self.assertFalse(self.env["emboux.domain"].search([("name", "in", ["nodot", "a.123"])]))

    def test_international_domain_is_stored_in_idna_form(self):
        name = f"bücher-{uniq()}.{TEST_TLD}"
        self.addCleanup(api, "DELETE", f"/domains/{name.encode('idna').decode()}")
        dom = self.env["emboux.domain"].create({"name": name, "tenant_id": self.tenant.id})
        self.assertTrue(dom.name.startswith("xn--"))
        self.flush_queue()
        self.assertTrue(self.mail_domain(dom.name))

    def test_domain_hosted_elsewhere_is_refused_before_commit(self):
        name = f"{uniq('elsewhere')}.{TEST_TLD}"
        other = uniq("other-")
        self.assertEqual(api("POST", "/domains/", json={"name": name, "partner_ref": other}).status_code, 201)
        self.addCleanup(api, "DELETE", f"/domains/{name}")
        before = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "already hosted on the mail platform"):
            self.env["emboux.domain"].create({"name": name, "tenant_id": self.tenant.id})
        self.assertNothingQueued(before)
        self.assertFalse(self.env["emboux.domain"].search([("name", "=", name)]))
        self.assertEqual(self.mail_domain(name)[1], other, "the other customer's domain is untouched")

    def test_domain_quota(self):
        self.tenant.domains_allowed = self.tenant.domains_used + 1
        self.new_domain()
        before = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "may host .* domain"):
            self.new_domain()
        self.assertNothingQueued(before)

    def test_mailbox_quota_name_and_password(self):
        dom = self.new_domain()
        self.flush_queue()
        Mailbox = self.env["emboux.mailbox"]
        before = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "not allowed before @"):
            Mailbox.create({"domain_id": dom.id, "local_part": "two words", "password": "Passw0rd-ok"})
        with self.assertRaisesRegex(UserError, "8 to 256 characters"):
            Mailbox.create({"domain_id": dom.id, "local_part": "short", "password": "short"})
        with self.assertRaisesRegex(UserError, "password is required"):
            Mailbox.create({"domain_id": dom.id, "local_part": "nopw"})
        self.assertNothingQueued(before)
        # quota: 5 mailboxes per domain (see EmbouxCase)
        Mailbox.create([{"domain_id": dom.id, "local_part": f"u{i}", "password": "Passw0rd-ok"} for i in range(5)])
        before = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "may have 5 mailbox"):
            Mailbox.create({"domain_id": dom.id, "local_part": "u5", "password": "Passw0rd-ok"})
        self.assertNothingQueued(before)
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
                                "WHERE d.name = %s", (dom.name,))[0][0], 5)

    def test_mailbox_taken_on_the_platform(self):
        dom = self.new_domain()
        self.flush_queue()
        r = api("POST", "/users/", json={"domain_name": dom.name, "email": f"taken@{dom.name}",
                                         "password": "Passw0rd-api"})
        self.assertEqual(r.status_code, 201, r.text)
        before = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "already exists on the mail platform"):
            self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "taken", "password": "Passw0rd-x1"})
        self.assertNothingQueued(before)

    def test_alias_rules(self):
        dom = self.new_domain()
        self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "box", "password": "Passw0rd-box"})
        Alias = self.env["emboux.alias"]
        with self.assertRaisesRegex(UserError, "must end with"):
            Alias.create({"domain_id": dom.id, "source": "x@example.org", "destinations": "a@example.org"})
        with self.assertRaisesRegex(UserError, "is a mailbox"):
            Alias.create({"domain_id": dom.id, "source": "box", "destinations": "a@example.org"})
        with self.assertRaisesRegex(UserError, "at least one destination"):
            Alias.create({"domain_id": dom.id, "source": "empty", "destinations": " , "})
        # 3 aliases per mailbox, 1 mailbox
        Alias.create([{"domain_id": dom.id, "source": f"a{i}", "destinations": "a@example.org"} for i in range(3)])
        with self.assertRaisesRegex(UserError, "may have 3 alias"):
            Alias.create({"domain_id": dom.id, "source": "a3", "destinations": "a@example.org"})

    def test_refusal_after_commit_is_shown_on_the_record(self):
        """A 4xx that could not be foreseen (a race with another integrator)
        marks the record in error with the connector's reason, in words."""
        dom = self.new_domain()
        # someone else takes the name between our check and our commit
        other = uniq("race-")
        self.assertEqual(api("POST", "/domains/", json={"name": dom.name, "partner_ref": other}).status_code, 201)
        self.flush_queue()
        self.assertEqual(dom.sync_state, "error")
        self.assertIn("already hosted", dom.sync_error)
        self.assertIn("already hosted", dom.message_ids[:1].body)
        self.assertEqual(self.mail_domain(dom.name)[1], other)

    def test_renames_are_refused(self):
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "r", "password": "Passw0rd-r1"})
        with self.assertRaisesRegex(UserError, "cannot be renamed"):
            dom.name = f"other.{TEST_TLD}"
        with self.assertRaisesRegex(UserError, "cannot be renamed"):
            box.local_part = "s"

    def test_quota_used_through_the_api_counts(self):
        """Mailboxes the tenant created through its own API key, not pulled
        into Odoo yet, count against the quota before anything is saved."""
        dom = self.new_domain()
        self.flush_queue()
        for i in range(5):  # the tenant's quota: 5 mailboxes per domain
            r = api("POST", "/users/", json={"domain_name": dom.name, "email": f"api{i}@{dom.name}",
                                             "password": "Passw0rd-api"})
            self.assertEqual(r.status_code, 201, r.text)
        before = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "already has 5 on the mail platform"):
            self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "odoo", "password": "Passw0rd-ok"})
        self.assertNothingQueued(before)
        # the same for domains
        self.tenant.domains_allowed = self.env["emboux.domain"].search_count([("tenant_id", "=", self.tenant.id)]) + 1
        self.flush_queue()
        name = f"{uniq('api')}.{TEST_TLD}"
        self.addCleanup(api, "DELETE", f"/domains/{name}")
        self.assertEqual(api("POST", "/domains/", json={"name": name, "partner_ref": self.tenant.partner_ref}
                             ).status_code, 201)
        with self.assertRaisesRegex(UserError, "may host"):
            self.new_domain()
        self.assertNothingQueued(before + 1)
