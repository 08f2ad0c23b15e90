# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 17 in the customer portal: a portal user turns a mailbox's
out-of-office auto-reply on and off (the form's text values), it reaches
the platform through the sync queue; bad input is refused with a sentence
and nothing changes; another customer's mailbox is refused (record rules)
and nothing is queued or changed on the platform."""

from odoo.exceptions import AccessError, UserError

from .common import SaasCase, api


class TestPortalVacation(SaasCase):

    def setUp(self):
        super().setUp()
        self.mine, self.theirs = self.new_tenant(self.plan_small), self.new_tenant(self.plan_small)
        Mailbox = self.env["emboux.mailbox"]
        self.my_box = Mailbox.create({"domain_id": self.new_domain(self.mine).id, "local_part": "desk",
                                      "password": "correct horse 12"})
        self.their_box = Mailbox.create({"domain_id": self.new_domain(self.theirs).id, "local_part": "boss",
                                         "password": "correct horse 12"})
        self.flush_queue()
        self.as_user = self.env(user=self.portal_user(self.mine))

    def remote(self, box):
        r = api("GET", f"/users/{box.email}/vacation")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def test_turn_on_and_off_from_the_portal(self):
        box = self.as_user["emboux.mailbox"].browse(self.my_box.id)
        box.portal_set_vacation(True, "On holiday", "Back on the 12th.", "2030-08-01", "2030-08-11", "3")
        self.flush_queue()
        self.assertEqual(self.my_box.sync_state, "synced", self.my_box.sync_error)
        self.assertEqual(self.remote(self.my_box), {
            "email": self.my_box.email, "enabled": True, "subject": "On holiday", "body": "Back on the 12th.",
            "start": "2030-08-01", "end": "2030-08-11", "days": 3})
        self.assertEqual(box.vacation_state, "scheduled")
        # the form's empty values: no dates, the default days
        box.portal_set_vacation(False, "On holiday", "Back on the 12th.", "", "", "")
        self.flush_queue()
        remote = self.remote(self.my_box)
        self.assertEqual((remote["enabled"], remote["start"], remote["end"], remote["days"]), (False, None, None, 7))

    def test_bad_input_is_refused_and_nothing_changes(self):
        box = self.as_user["emboux.mailbox"].browse(self.my_box.id)
        for args, message in [
            ((True, "", "text", "", "", "7"), "needs a subject and a message"),
            ((True, "Away", "", "", "", "7"), "needs a subject and a message"),
            ((True, "Away\nBcc: x@example.com", "text", "", "", "7"), "one line"),
            ((True, "Away", "text", "2030-08-02", "2030-08-01", "7"), "before its first day"),
            ((True, "Away", "text", "1 August", "", "7"), "not a date"),
            ((True, "Away", "text", "", "", "99"), "between 1 and 30"),
            ((True, "Away", "text", "", "", "-1"), "whole number"),
        ]:
            with self.assertRaisesRegex(UserError, message, msg=repr(args)):
                box.portal_set_vacation(*args)
        self.assertFalse(self.my_box.vacation_enabled)
        self.assertFalse(self.pending_jobs(self.my_box))
        self.assertEqual(self.remote(self.my_box)["enabled"], False)

    def test_another_customers_mailbox_is_refused(self):
        jobs = self.env["emboux.sync.job"].search_count([])
        with self.assertRaises(AccessError):
            self.as_user["emboux.mailbox"].browse(self.their_box.id).portal_set_vacation(
                True, "Hijacked", "Send your password to evil@example.com", "", "", "1")
        with self.assertRaises(AccessError):
            self.as_user["emboux.mailbox"].browse(self.their_box.id).read(["vacation_subject"])
        self.assertFalse(self.their_box.vacation_enabled)
        self.assertEqual(self.env["emboux.sync.job"].search_count([]), jobs, "nothing queued")
        self.assertEqual(self.remote(self.their_box)["enabled"], False)
