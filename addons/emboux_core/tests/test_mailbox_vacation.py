# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 17, the mailbox form's Out of office tab against the running
connector: the auto-reply goes through the sync queue whole (`PUT
/users/{email}/vacation`) and is the platform's (GET); one changed through
the API is read back on demand; bad input (last day before the first, a
subject with a line break, turned on without subject or message, days out
of range, too long) is a UserError and nothing is saved or queued; a
refusal of the connector is told by its code; a user without rights on
mailboxes changes nothing."""

import datetime
import json

from odoo.exceptions import AccessError, UserError

from ..services.connector_client import ConnectorRefused, friendly
from .common import EmbouxCase, api, uniq

D = datetime.date


class TestMailboxVacation(EmbouxCase):
    def synced_box(self, **vals):
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create(dict({"domain_id": dom.id, "local_part": "away",
                                                      "password": "correct horse 12"}, **vals))
        self.flush_queue()
        self.assertEqual(box.sync_state, "synced", box.sync_error)
        return box

    def remote(self, box):
        r = api("GET", f"/users/{box.email}/vacation")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def test_the_form_has_the_out_of_office_tab(self):
        views = self.env["emboux.mailbox"].get_views([(False, "form"), (False, "list"), (False, "search")])["views"]
        form = views["form"]["arch"]
        self.assertIn('name="vacation"', form)
        for f in ("vacation_enabled", "vacation_subject", "vacation_body", "vacation_start", "vacation_end",
                  "vacation_days", "action_refresh_vacation"):
            self.assertIn(f, form)
        self.assertIn('name="vacation_state"', views["list"]["arch"])
        self.assertIn('name="vacation_away"', views["search"]["arch"])

    def test_set_sync_and_read_back_from_the_connector(self):
        box = self.synced_box()
        self.assertEqual(self.remote(box)["enabled"], False)
        self.assertEqual((box.vacation_enabled, box.vacation_days, box.vacation_state), (False, 7, "off"))
        today = datetime.date.today()
        box.write({"vacation_enabled": True, "vacation_subject": "  Out of office ",
                   "vacation_body": "Back on Monday.\nUrgent: office@example.com", "vacation_start": today,
                   "vacation_end": today + datetime.timedelta(days=5), "vacation_days": 3})
        job = self.pending_jobs(box)
        self.assertEqual((job.kind, job.method, job.path), ("mailbox.vacation", "PUT", f"/users/{box.email}/vacation"))
        self.assertEqual(json.loads(job.payload), {
            "enabled": True, "subject": "Out of office", "body": "Back on Monday.\nUrgent: office@example.com",
            "start": today.isoformat(), "end": (today + datetime.timedelta(days=5)).isoformat(), "days": 3})
        self.assertEqual(box.vacation_state, "away")
        self.flush_queue()
        self.assertEqual(box.sync_state, "synced", box.sync_error)
        self.assertTrue(box.vacation_checked_at)
        self.assertEqual(self.remote(box), {
            "email": box.email, "enabled": True, "subject": "Out of office",
            "body": "Back on Monday.\nUrgent: office@example.com", "start": today.isoformat(),
            "end": (today + datetime.timedelta(days=5)).isoformat(), "days": 3})
        self.assertIn(box, self.env["emboux.mailbox"].search(self._away_filter()))

        # turned off: the text is kept for next time, on both sides
        box.action_vacation_off()
        self.flush_queue()
        remote = self.remote(box)
        self.assertEqual((remote["enabled"], remote["subject"]), (False, "Out of office"))
        self.assertEqual((box.vacation_state, box.vacation_subject), ("off", "Out of office"))
        self.assertNotIn(box, self.env["emboux.mailbox"].search(self._away_filter()))

    def _away_filter(self):
        """The list's "Out of office" filter, as the web client evaluates it."""
        arch = self.env["emboux.mailbox"].get_views([(False, "search")])["views"]["search"]["arch"]
        self.assertIn("vacation_away", arch)
        today = datetime.date.today().isoformat()
        return [("vacation_enabled", "=", True), "|", ("vacation_start", "=", False),
                ("vacation_start", "<=", today), "|", ("vacation_end", "=", False), ("vacation_end", ">=", today)]

    def test_a_new_mailbox_with_an_auto_reply_sends_it_after_creating_it(self):
        box = self.synced_box(vacation_enabled=True, vacation_subject="Away", vacation_body="Gone fishing.",
                              vacation_start=D(2030, 7, 1))
        remote = self.remote(box)
        self.assertEqual((remote["enabled"], remote["start"], remote["end"]), (True, "2030-07-01", None))
        self.assertEqual(box.vacation_state, "scheduled")
        kinds = self.env["emboux.sync.job"].search([("res_model", "=", box._name), ("res_id", "=", box.id)],
                                                   order="id").mapped("kind")
        self.assertEqual(kinds, ["mailbox.create", "mailbox.vacation"])

    def test_changed_through_the_api_and_read_back(self):
        box = self.synced_box()
        r = api("PUT", f"/users/{box.email}/vacation", json={"enabled": True, "subject": "API", "body": "x",
                                                            "end": "2020-01-31"})
        self.assertEqual(r.status_code, 200, r.text)
        box.action_refresh_vacation()
        self.assertEqual((box.vacation_enabled, box.vacation_subject, box.vacation_end, box.vacation_state),
                         (True, "API", D(2020, 1, 31), "ended"))
        self.assertFalse(self.pending_jobs(box), "what the platform says is not sent back")

    def test_bad_input_is_refused_and_nothing_is_saved(self):
        box = self.synced_box(vacation_subject="Kept", vacation_body="Kept body")
        self.flush_queue()
        bad = [
            ({"vacation_start": D(2030, 5, 2), "vacation_end": D(2030, 5, 1)}, "before its first day"),
            ({"vacation_subject": "Out\nBcc: victim@example.com"}, "one line"),
            ({"vacation_subject": "Out\r"}, "one line"),
            ({"vacation_subject": "x" * 201}, "at most 200"),
            ({"vacation_body": "x" * 10001}, "at most 10,000"),
            ({"vacation_enabled": True, "vacation_subject": ""}, "needs a subject and a message"),
            ({"vacation_enabled": True, "vacation_body": "   \n "}, "needs a subject and a message"),
            ({"vacation_days": 0}, "between 1 and 30"),
            ({"vacation_days": 31}, "between 1 and 30"),
            ({"vacation_days": "many"}, "whole number"),
            ({"vacation_start": "next week"}, "not a date"),
        ]
        for vals, message in bad:
            with self.assertRaisesRegex(UserError, message, msg=repr(vals)):
                box.write(vals)
        # the end before the start, given one at a time
        box.write({"vacation_start": D(2030, 5, 10)})
        with self.assertRaisesRegex(UserError, "before its first day"):
            box.write({"vacation_end": D(2030, 5, 9)})
        self.flush_queue()
        self.assertEqual((box.vacation_enabled, box.vacation_subject, box.vacation_end, box.vacation_days),
                         (False, "Kept", False, 7))
        remote = self.remote(box)
        self.assertEqual((remote["enabled"], remote["subject"], remote["start"], remote["end"]),
                         (False, "Kept", "2030-05-10", None))
        self.assertFalse(self.pending_jobs(box))
        # on creation too: nothing created
        dom = box.domain_id
        with self.assertRaisesRegex(UserError, "needs a subject"):
            self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "x", "password": "correct horse 12",
                                               "vacation_enabled": True})
        self.assertFalse(self.env["emboux.mailbox"].search([("email", "=", f"x@{dom.name}")]))

    def test_a_refusal_of_the_connector_is_told_by_its_code(self):
        """Odoo's checks pass what the connector refuses only when they
        disagree (a job queued by an older Odoo, a changed rule): the job
        fails, the mailbox says why in a sentence chosen by the code."""
        box = self.synced_box()
        job = box._emboux_enqueue("mailbox.vacation", "PUT", f"/users/{box.email}/vacation",
                                  {"enabled": False, "start": "2030-05-02", "end": "2030-05-01"})
        self.flush_queue()
        self.assertEqual(job.state, "failed")
        self.assertEqual(box.sync_state, "error")
        self.assertIn("The auto-reply's last day is before its first day", box.sync_error)
        self.assertEqual(friendly("end: 2030-05-01 is before start 2030-05-02", "vacation_dates"),
                         "The auto-reply's last day is before its first day (end: 2030-05-01 is before start "
                         "2030-05-02).")
        # the code decides, not the English detail
        with self.assertRaises(ConnectorRefused) as caught:
            self.env["emboux.connector"]._client().call("PUT", f"/users/{box.email}/vacation",
                                                        {"enabled": False, "start": "2030-05-02",
                                                         "end": "2030-05-01"})
        self.assertEqual(caught.exception.code, "vacation_dates")
        self.assertEqual(self.remote(box)["start"], None, "nothing written")

    def test_a_user_without_rights_changes_nothing(self):
        box = self.synced_box()
        nobody = self.env["res.users"].with_context(no_reset_password=True).create({
            "name": "No hosting rights", "login": uniq("norights"),
            "group_ids": [(6, 0, [self.env.ref("base.group_user").id])]})
        with self.assertRaises(AccessError):
            box.with_user(nobody).write({"vacation_enabled": True, "vacation_subject": "Hijack",
                                         "vacation_body": "Send me your password."})
        with self.assertRaises(AccessError):
            box.with_user(nobody).action_refresh_vacation()
        self.assertFalse(self.pending_jobs(box))
        self.assertEqual(self.remote(box)["enabled"], False)
