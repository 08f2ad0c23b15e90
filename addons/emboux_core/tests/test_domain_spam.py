# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 17, the domain form's Spam filtering tab against the running
connector: thresholds, greylisting and the allow/block lists go through the
sync queue (`PUT /domains/{name}/spam`, only what changed) and come back as
the platform normalised them; settings changed through the API are read
back on demand; bad input (a threshold that is not a number, a refuse score
not above the Junk score, an entry that is not an address or domain, one on
both lists) is a UserError and nothing is saved or queued."""

import json

from odoo.exceptions import UserError

from .common import EmbouxCase, api


class TestDomainSpam(EmbouxCase):
    def synced_domain(self):
        dom = self.new_domain()
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        return dom

    def remote(self, dom):
        r = api("GET", f"/domains/{dom.name}/spam")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def test_the_form_has_the_spam_filtering_tab(self):
        arch = self.env["emboux.domain"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="spam_filtering"', arch)
        for f in ("spam_junk_score", "spam_reject_score", "spam_greylisting", "spam_allow_senders",
                  "spam_block_senders", "action_refresh_spam"):
            self.assertIn(f, arch)

    def test_settings_go_to_the_platform_and_come_back_normalised(self):
        dom = self.synced_domain()
        self.assertEqual((dom.spam_junk_score, dom.spam_reject_score, dom.spam_greylisting), (6.0, 15.0, False))
        dom.write({"spam_reject_score": 12.5, "spam_greylisting": True,
                   "spam_allow_senders": "Partner@Example.COM\n\n  trusted.example \n@trusted.example",
                   "spam_block_senders": "@Spammer.example"})
        job = self.pending_jobs(dom).filtered(lambda j: j.kind == "domain.spam")
        self.assertEqual((job.method, job.path), ("PUT", f"/domains/{dom.name}/spam"))
        self.assertEqual(json.loads(job.payload), {"reject_score": 12.5, "greylisting": True,
                                       "allow_senders": ["partner@example.com", "@trusted.example"],
                                       "block_senders": ["@spammer.example"]},
                         "only what changed is sent, each list entry once")
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        remote = self.remote(dom)
        self.assertEqual((remote["junk_score"], remote["reject_score"], remote["greylisting"]), (6.0, 12.5, True))
        self.assertEqual(remote["allow_senders"], ["partner@example.com", "@trusted.example"])
        self.assertEqual(remote["block_senders"], ["@spammer.example"])
        self.assertEqual(dom.spam_allow_senders, "partner@example.com\n@trusted.example")
        self.assertTrue(dom.spam_checked_at)

        # emptied lists are sent as empty lists
        dom.write({"spam_allow_senders": "", "spam_junk_score": 4})
        self.flush_queue()
        remote = self.remote(dom)
        self.assertEqual((remote["allow_senders"], remote["junk_score"]), ([], 4.0))

    def test_a_new_domain_with_its_own_settings_sends_them_after_creating_it(self):
        dom = self.new_domain(spam_junk_score=3, spam_block_senders="@bad.example")
        kinds = self.pending_jobs(dom).sorted("id").mapped("kind")
        self.assertEqual(kinds[0], "domain.create")
        self.assertIn("domain.spam", kinds)
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        remote = self.remote(dom)
        self.assertEqual((remote["junk_score"], remote["block_senders"]), (3.0, ["@bad.example"]))
        # a domain with the defaults sends no spam settings at all
        plain = self.new_domain()
        self.assertNotIn("domain.spam", self.pending_jobs(plain).mapped("kind"))

    def test_settings_changed_through_the_api_are_read_back(self):
        dom = self.synced_domain()
        r = api("PUT", f"/domains/{dom.name}/spam", json={"junk_score": 5, "block_senders": ["x@spam.example"]})
        self.assertEqual(r.status_code, 200, r.text)
        dom.action_refresh_spam()
        self.assertEqual((dom.spam_junk_score, dom.spam_block_senders), (5.0, "x@spam.example"))
        self.assertFalse(self.pending_jobs(dom), "what the platform says is not sent back")

    def test_bad_input_is_refused_and_nothing_is_saved(self):
        dom = self.synced_domain()
        bad = [
            ({"spam_junk_score": "a lot"}, "must be a number"),
            ({"spam_reject_score": None}, "must be a number"),
            ({"spam_junk_score": float("nan")}, "must be a number"),
            ({"spam_junk_score": 5000}, "between"),
            ({"spam_reject_score": 4}, "must be below"),             # below the Junk score (6)
            ({"spam_junk_score": 15}, "must be below"),              # equal to the refuse score
            ({"spam_junk_score": 20, "spam_reject_score": 10}, "must be below"),
            ({"spam_allow_senders": "not an address!"}, "not an address or @domain"),
            ({"spam_block_senders": "@"}, "not an address or @domain"),
            ({"spam_block_senders": "a b@example.com"}, "not an address or @domain"),
            ({"spam_allow_senders": "x@example.com", "spam_block_senders": "X@Example.com"}, "both"),
            ({"spam_block_senders": "\n".join(f"u{i}@example.com" for i in range(1001))}, "at most 1000"),
        ]
        for vals, message in bad:
            with self.assertRaisesRegex(UserError, message, msg=repr(vals)):
                dom.write(vals)
        self.assertEqual((dom.spam_junk_score, dom.spam_reject_score, dom.spam_block_senders), (6.0, 15.0, False))
        self.assertFalse(self.pending_jobs(dom))
        remote = self.remote(dom)
        self.assertEqual((remote["junk_score"], remote["reject_score"], remote["block_senders"]), (6.0, 15.0, []))
        # on creation too
        with self.assertRaisesRegex(UserError, "must be below"):
            self.new_domain(spam_junk_score=16)
        # a number typed with a comma or as text is a number
        dom.write({"spam_junk_score": "7,5"})
        self.assertEqual(dom.spam_junk_score, 7.5)
