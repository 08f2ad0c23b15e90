# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The "pull" cron (issue 11): outbound counters, the daily history and the
suppression list come from the connector's incremental feeds, one request
per page; a pull with nothing new writes nothing; a manager -- only a
manager -- lifts a suppressed address through the sync queue.

The mail DB is shared with other work: what the feeds answer about domains
this Odoo does not manage is skipped, so "writes nothing" is measured on
this transaction's own row counts (pg_stat_xact_user_tables). A change shows
in a feed once every transaction of the mail DB begun before it has ended:
pulls are repeated until it shows, never timed."""

import time

import psycopg2

from odoo.exceptions import AccessError

from .common import MAILDB_DSN, EmbouxCase, api, maildb, uniq

TABLES = ("emboux_domain", "emboux_outbound_day", "emboux_suppression", "mail_message", "mail_tracking_value")


def maildb_write(sql, params=()):
    conn = psycopg2.connect(MAILDB_DSN)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
    finally:
        conn.close()


class TestOutboundPull(EmbouxCase):

    def setUp(self):
        super().setUp()
        self.Pull = self.env["emboux.outbound.pull"]
        self.dom = self.new_domain()
        self.flush_queue()
        self.assertEqual(self.dom.sync_state, "synced", self.dom.sync_error)
        self.email = f"{uniq('r')}@example.org"
        self.addCleanup(api, "DELETE", f"/suppression/{self.email}")

    def pull_until(self, done, what):
        """Pull until `done()` holds (at most 60 s); returns the merged stats."""
        total = {}
        deadline = time.monotonic() + 60
        while True:
            stats = self.Pull._pull()
            for k, v in stats.items():
                total[k] = total.get(k, 0) + v
            self.env.invalidate_all()
            if done():
                return total
            self.assertLess(time.monotonic(), deadline, f"the pull never brought {what}; last pull {stats}")
            time.sleep(0.2)

    def writes(self):
        """Rows inserted, updated or deleted by this transaction so far, per table."""
        self.env.flush_all()
        self.env.cr.execute("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
                            "WHERE relname = ANY(%s)", (list(TABLES),))
        return dict(self.env.cr.fetchall())

    def days(self):
        return self.env["emboux.outbound.day"].search([("domain_id", "=", self.dom.id)], order="day")

    def suppression(self):
        return self.env["emboux.suppression"].search([("email", "=", self.email)])

    def test_first_incremental_and_idle_pulls(self):
        dom = self.dom
        r = api("POST", f"/domains/{dom.name}/outbound/increment", json={"count": 4, "bytes": 2000})
        self.assertEqual(r.status_code, 200, r.text)
        for i, day in enumerate(("2026-01-01", "2026-01-02")):
            maildb_write("INSERT INTO outbound_history (domain_id, day, sent, bytes, overage, bounces, complaints) "
                         "SELECT id, %s, %s, %s, 0, %s, 0 FROM domains WHERE name = %s",
                         (day, 10 * (i + 1), 100 * (i + 1), i, dom.name))
        maildb_write("INSERT INTO suppression (email, reason, source_domain, provider) "
                     "VALUES (%s, 'bounce', %s, 'ses')", (self.email, dom.name))

        # first pull: everything so far, one request per page of up to 5,000 entries
        first = self.Pull._pull()
        for feed in ("counters", "history", "suppression"):
            self.assertEqual(first[f"{feed}_pages"], max(1, -(-first[f"{feed}_entries"] // 5000)), first)
        stats = self.pull_until(lambda: dom.outbound_sent_today == 4 and len(self.days()) == 2
                                and self.suppression(), "the domain's counters, history and suppression")
        self.assertGreaterEqual(stats["counters"] + first["counters"], 1)
        self.assertEqual((dom.outbound_sent_month, dom.outbound_bytes_month), (4, 2000))
        self.assertTrue(dom.outbound_checked_at)
        self.assertEqual([(str(d.day), d.sent, d.bytes, d.bounces) for d in self.days()],
                         [("2026-01-01", 10, 100, 0), ("2026-01-02", 20, 200, 1)])
        self.assertEqual(self.days()[1].bounce_rate, 5.0)
        self.assertEqual(self.days().tenant_id, self.tenant)
        entry = self.suppression()
        self.assertEqual((entry.reason, entry.source_domain, entry.domain_id, entry.provider),
                         ("bounce", dom.name, dom, "ses"))
        self.assertTrue(entry.created_at)

        # a second pull with nothing new writes nothing
        before = self.writes()
        stats = self.Pull._pull()
        self.assertEqual((stats["counters"], stats["history"], stats["suppression"]), (0, 0, 0), stats)
        self.assertEqual(self.writes(), before, "a pull with nothing new writes nothing")

        # incremental: one more message and a new closed day, only they are written
        api("POST", f"/domains/{dom.name}/outbound/increment", json={"count": 1, "bytes": 10})
        maildb_write("UPDATE outbound_history SET sent = 11 WHERE day = '2026-01-01' "
                     "AND domain_id = (SELECT id FROM domains WHERE name = %s)", (dom.name,))
        stats = self.pull_until(lambda: dom.outbound_sent_today == 5 and self.days()[0].sent == 11,
                                "the new count and the changed day")
        self.assertEqual(dom.outbound_bytes_month, 2010)
        self.assertEqual((stats["counters"], stats["history"], stats["suppression"]), (1, 1, 0), stats)
        before = self.writes()
        self.Pull._pull()
        self.assertEqual(self.writes(), before)

    def test_a_suspension_by_the_platform_shows_with_its_reason(self):
        dom = self.dom
        r = api("PUT", f"/domains/{dom.name}/outbound",
                json={"outbound_status": "suspended", "outbound_status_reason": "guillotine: test"})
        self.assertEqual(r.status_code, 200, r.text)
        self.pull_until(lambda: dom.outbound_status == "suspended", "the suspension")
        self.assertEqual(dom.outbound_status_reason, "guillotine: test")
        self.assertTrue(dom.message_ids.filtered(lambda m: "guillotine: test" in (m.body or "")))

    def _pulled_entry(self):
        maildb_write("INSERT INTO suppression (email, reason, source_domain, provider) "
                     "VALUES (%s, 'complaint', %s, 'mailgun')", (self.email, self.dom.name))
        self.pull_until(lambda: self.suppression(), "the suppression entry")
        return self.suppression()

    def _user(self, group):
        return self.env["res.users"].create({
            "name": "Hosting user", "login": uniq("o-user-"),
            "group_ids": [(6, 0, [self.env.ref(group).id])]})

    def test_a_manager_lifts_through_the_sync_queue(self):
        entry = self._pulled_entry()
        manager = self._user("emboux_core.group_emboux_manager")
        entry.with_user(manager).action_lift()
        job = self.pending_jobs(entry)
        self.assertEqual((job.kind, job.method, job.path), ("suppression.lift", "DELETE", f"/suppression/{self.email}"))
        self.assertTrue(entry.lift_requested)
        self.assertTrue(maildb("SELECT 1 FROM suppression WHERE email = %s", (self.email,)),
                        "nothing leaves Odoo before the transaction commits")
        self.flush_queue()
        self.assertFalse(maildb("SELECT 1 FROM suppression WHERE email = %s", (self.email,)))
        self.assertFalse(self.suppression().exists(), "the lifted entry is gone from Odoo too")
        self.assertEqual(job.state, "done")
        # the feed's removal of what is already gone changes nothing
        before = self.writes()
        self.pull_until(lambda: True, "the removal")
        self.assertEqual(self.writes().get("emboux_suppression"), before.get("emboux_suppression"))

    def test_a_plain_user_cannot_lift(self):
        entry = self._pulled_entry()
        user = self._user("emboux_core.group_emboux_user")
        self.assertEqual(entry.with_user(user).email, self.email, "a user sees the entries of its company")
        with self.assertRaises(AccessError):
            entry.with_user(user).action_lift()
        with self.assertRaises(AccessError):
            entry.with_user(user).write({"email": "x@example.org"})
        self.assertFalse(self.pending_jobs(entry))
        self.assertFalse(entry.lift_requested)
        self.assertTrue(maildb("SELECT 1 FROM suppression WHERE email = %s", (self.email,)))

    def test_another_tenants_client_token_does_not_see_the_entry(self):
        self._pulled_entry()
        other = uniq("p-")
        r = api("POST", "/api-keys/", json={"partner_ref": other})
        self.assertEqual(r.status_code, 201, r.text)
        token = r.json()["token"]
        seen, cursor = [], None
        while True:
            params = {"cursor": cursor} if cursor else {}
            page = api("GET", "/outbound/feed/suppression", token=token, params=params).json()
            seen += [e["email"] for e in page["entries"]]
            cursor = page["next_cursor"]
            if not page["more"]:
                break
        self.assertNotIn(self.email, seen)
        self.assertEqual(api("GET", "/outbound/feed/counters", token=token).json()["entries"], [])
        self.assertEqual(api("DELETE", f"/suppression/{self.email}", token=token).status_code, 403)

    def test_users_of_another_company_see_nothing(self):
        entry = self._pulled_entry()
        other = self.env["res.company"].create({"name": uniq("Other company ")})
        user = self.env["res.users"].create({
            "name": "Other company user", "login": uniq("o-user-"), "company_id": other.id,
            "company_ids": [(6, 0, [other.id])],
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_manager").id])]})
        Supp = self.env["emboux.suppression"].with_user(user)
        self.assertFalse(Supp.search([("id", "=", entry.id)]))
        self.assertFalse(self.env["emboux.outbound.day"].with_user(user).search([("domain_id", "=", self.dom.id)]))
