# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Archiving is a real disable on the mail platform, reversible: an archived
mailbox refuses logins (IMAP, SMTP AUTH) and new mail, keeps its mail; an
archived domain is suspended. End to end: Odoo -> connector -> mail DB ->
Dovecot and Postfix of the dev stack."""

import imaplib
import os
import smtplib

from .common import EmbouxCase, api, maildb

HOST = os.environ.get("IMAP_HOST", "127.0.0.1")


def imap_login_ok(user, password):
    try:
        m = imaplib.IMAP4(HOST, int(os.environ["IMAP_PORT"]), timeout=30)
    except OSError as exc:
        raise AssertionError(f"IMAP of the dev stack unreachable: {exc}") from None
    try:
        m.login(user, password)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def rcpt_code(rcpt):
    """The MX's answer to RCPT TO from an anonymous sender (port 25)."""
    with smtplib.SMTP(os.environ.get("SMTP_HOST", "127.0.0.1"), int(os.environ["SMTP_PORT"]), timeout=30) as s:
        s.ehlo("tester.example.net")
        s.mail("someone@example.net")
        return s.rcpt(rcpt)


class TestArchive(EmbouxCase):

    def routed_domain(self):
        """A domain the platform routes: created from Odoo, then vouched for
        by the operator through the API (ownership proof is not this test's)."""
        dom = self.new_domain()
        self.flush_queue()
        r = api("PUT", f"/domains/{dom.name}/ownership/vouch", json={})
        assert r.status_code == 200, r.text
        return dom

    def mailbox_active(self, email):
        return maildb("SELECT active FROM mailboxes WHERE email = %s", (email,))

    def test_archived_mailbox_refuses_logins_and_mail_until_unarchived(self):
        dom = self.routed_domain()
        box = self.env["emboux.mailbox"].create(
            {"domain_id": dom.id, "local_part": "leaver", "password": "Leaver-Passw0rd"})
        self.flush_queue()
        self.assertTrue(imap_login_ok(box.email, "Leaver-Passw0rd"))
        self.assertEqual(rcpt_code(box.email)[0], 250)

        box.action_archive()
        self.assertEqual(self.pending_jobs(box).mapped("kind"), ["mailbox.active"])
        self.flush_queue()
        self.assertEqual(box.sync_state, "synced", box.sync_error)
        self.assertEqual(self.mailbox_active(box.email), [(False,)], "kept, disabled")
        self.assertFalse(imap_login_ok(box.email, "Leaver-Passw0rd"), "an archived mailbox logs in")
        code, text = rcpt_code(box.email)
        self.assertEqual(code, 550, text)
        self.assertIn(b"disabled", text.lower())

        box.action_unarchive()
        self.flush_queue()
        self.assertEqual(self.mailbox_active(box.email), [(True,)])
        self.assertTrue(imap_login_ok(box.email, "Leaver-Passw0rd"))
        self.assertEqual(rcpt_code(box.email)[0], 250)
        # a write that does not change it sends nothing
        box.write({"active": True})
        self.assertFalse(self.pending_jobs(box))

    def test_archived_domain_is_suspended_until_unarchived(self):
        dom = self.routed_domain()
        box = self.env["emboux.mailbox"].create(
            {"domain_id": dom.id, "local_part": "staff", "password": "Staff-Passw0rd1"})
        self.flush_queue()
        dom.action_archive()
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2], "suspended")
        self.assertEqual(dom.state, "active", "archiving is not the Odoo suspension")
        self.assertFalse(imap_login_ok(box.email, "Staff-Passw0rd1"))
        self.assertGreaterEqual(rcpt_code(box.email)[0], 400)
        dom.action_unarchive()
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2], "active")
        self.assertTrue(imap_login_ok(box.email, "Staff-Passw0rd1"))
        # suspended in Odoo too: unarchiving keeps it suspended, activating it does not resume an archived one
        dom.action_suspend()
        dom.action_archive()
        dom.action_unarchive()
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2], "suspended")
        dom.action_archive()
        dom.action_activate()
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2], "suspended")
        dom.action_unarchive()
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2], "active")

    def test_pulled_echo_of_an_archive_keeps_it_archived(self):
        dom = self.new_domain()
        self.flush_queue()
        dom.action_archive()
        self.flush_queue()
        feed = self.env["emboux.change.feed"]
        current = {"id": dom.remote_id, "name": dom.name, "partner_ref": self.tenant.partner_ref,
                   "status": "suspended", "retention_days": 7, "transfer_monthly_mb": 0}
        feed._apply_change({"resource": "domain", "key": dom.name, "current": current})
        self.assertFalse(dom.active, "the platform's suspension is our own archive: still archived")
        self.assertEqual((dom.state, dom.retention_days), ("active", 7))
        # activated through the API by someone else: back in Odoo too
        feed._apply_change({"resource": "domain", "key": dom.name, "current": dict(current, status="active")})
        self.assertTrue(dom.active)
        self.assertEqual(dom.state, "active")

    def test_a_pull_before_the_delete_is_sent_does_not_bring_the_domain_back(self):
        """Deleted in Odoo, its delete job still queued: the feed's older news of
        the domain must not re-create it (the delete is on its way and wins)."""
        dom = self.new_domain()
        self.flush_queue()
        name, remote_id = dom.name, dom.remote_id
        dom.unlink()
        feed = self.env["emboux.change.feed"]
        current = {"id": remote_id, "name": name, "partner_ref": self.tenant.partner_ref,
                   "status": "active", "retention_days": 0, "transfer_monthly_mb": 0}
        self.assertEqual(feed._apply_change({"resource": "domain", "key": name, "current": current}), 0)
        Domain = self.env["emboux.domain"].with_context(active_test=False)
        self.assertFalse(Domain.search([("name", "=", name)]))
        self.flush_queue()
        self.assertIsNone(self.mail_domain(name), "the delete reached the platform")
        # once it is sent, news of a domain of that name is news again
        self.assertEqual(feed._apply_change({"resource": "domain", "key": name, "current": current}), 1)
        self.assertTrue(Domain.search([("name", "=", name)]))
