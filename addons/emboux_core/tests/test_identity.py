# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Issue 11, the domain form's Sending identity, DNS records and Outbound
tabs against the running connector: each button, the verification cron, the
role rules (tier and enforcement are the managers'), and bad input (verify
on a domain not hosted, rotate with no key, a DNS check the resolver does
not answer, an invalid limit): a clear UserError, nothing saved."""

import os
import subprocess
import time

from odoo.exceptions import AccessError, UserError

from .common import EmbouxCase, api, maildb, uniq


def write_zone(domain, records):
    """The domain's zone in the dev stack's NSD, holding `records`
    [(type, absolute name, value)] -- what the customer does at its DNS host.
    Returns a callable that removes the zone."""
    zones_dir, conf = os.environ["DNS_ZONES_DIR"], os.environ["NSD_CONF"]
    ctl = ["nsd-control", "-c", conf]
    lines = [f"$ORIGIN {domain}.", "$TTL 1",
             f"@ IN SOA ns.{domain}. hostmaster.{domain}. ({int(time.time())} 60 60 60 1)",
             f"@ IN NS ns.{domain}.", "ns IN A 127.0.0.1"]
    for rtype, name, value in records:
        if rtype == "TXT":
            value = " ".join('"' + value[i:i + 250].replace('"', '\\"') + '"' for i in range(0, len(value), 250))
        elif rtype in ("MX", "CNAME"):
            value = value.rstrip(".") + "."
        lines.append(f"{name}. IN {rtype} {value}")
    path = os.path.join(zones_dir, f"{domain}.zone")
    subprocess.run(ctl + ["delzone", domain], capture_output=True, timeout=20)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(ctl + ["addzone", domain, "emboux"], capture_output=True, timeout=20, check=True)

    def remove():
        subprocess.run(ctl + ["delzone", domain], capture_output=True, timeout=20)
        if os.path.exists(path):
            os.remove(path)
    return remove


class TestIdentity(EmbouxCase):

    def zone(self, dom, records=()):
        self.addCleanup(write_zone(dom.name, list(records)))

    def user(self, manager=False):
        group = "emboux_core.group_emboux_manager" if manager else "emboux_core.group_emboux_user"
        return self.env["res.users"].create({"name": "Hosting user", "login": uniq("id-user-"),
                                             "group_ids": [(6, 0, [self.env.ref(group).id])]})

    # --- Sending identity and DNS records -----------------------------------------
    def test_verify_check_dns_publish_exactly_that_and_refresh(self):
        dom = self.hosted_domain()
        self.assertEqual((dom.verification_state, dom.provider), ("unverified", "local"))
        dom.action_verify()
        self.assertEqual(dom.verification_state, "pending")
        self.assertTrue(dom.ses_verified, "a local domain may send: the same answer as GET .../outbound")
        self.assertEqual(dom.dkim_state, "active")
        keys = api("GET", f"/domains/{dom.name}/dkim").json()["keys"]
        self.assertEqual(dom.dkim_selector, keys[0]["selector"])
        # nothing published yet: every record is missing, with its exact value and a fix
        self.zone(dom)
        dom.action_check_dns()
        self.assertTrue(dom.dns_checked_at)
        self.assertFalse(dom.dns_ok)
        recs = {r.record: r for r in dom.dns_record_ids}
        first_ids = dom.dns_record_ids.ids
        self.assertTrue({"MX", "SPF", "DKIM", "DMARC"} <= set(recs), recs)
        self.assertEqual(set(dom.dns_record_ids.filtered("required").mapped("status")), {"missing"})
        self.assertTrue(all(r.fix for r in dom.dns_record_ids if r.status != "ok"))
        self.assertEqual(recs["DKIM"].name, keys[0]["name"])
        self.assertEqual(recs["DKIM"].expected, keys[0]["value"])
        # the customer publishes what the tab shows, exactly: every required record checks ok
        published = [(r.record_type, r.name, r.expected) for r in dom.dns_record_ids
                     if r.required and r.record_type in ("MX", "TXT", "CNAME")]
        self.zone(dom, published)
        dom.action_check_dns()
        required = dom.dns_record_ids.filtered("required")
        self.assertEqual(set(required.mapped("status")), {"ok"},
                         [(r.record, r.status, r.found, r.fix) for r in required])
        self.assertTrue(dom.dns_ok)
        self.assertFalse(set(dom.dns_record_ids.ids) & set(first_ids), "a new check replaces the records")
        dom.action_refresh_verification()
        self.assertEqual(dom.verification_state, "verified")
        self.assertTrue(dom.verified_at)
        self.assertTrue(maildb("SELECT provider_verified FROM domains WHERE name = %s", (dom.name,))[0][0])

    def test_the_verification_cron_posts_and_schedules_an_activity(self):
        dom = self.hosted_domain()
        dom.action_verify()
        cron = self.env.ref("emboux_core.cron_domain_verification")
        self.assertIn("verification", cron.name)
        self.assertEqual((cron.interval_number, cron.interval_type), (2, "hours"))
        # not published: still pending, nothing posted
        self.zone(dom)
        messages = len(dom.message_ids)
        self.env["emboux.domain"]._cron_poll_verification()
        self.assertEqual(dom.verification_state, "pending")
        self.assertEqual(len(dom.message_ids), messages)
        self.assertFalse(dom.activity_ids)
        key = api("GET", f"/domains/{dom.name}/dkim").json()["keys"][0]
        self.zone(dom, [("TXT", key["name"], key["value"])])
        self.env["emboux.domain"]._cron_poll_verification()
        self.assertEqual(dom.verification_state, "verified")
        self.assertTrue(dom.message_ids.filtered(lambda m: "is verified" in (m.body or "")))
        self.assertEqual(len(dom.activity_ids), 1)
        self.assertIn("verified", dom.activity_ids.summary)
        # verified domains are not polled again: a second run posts nothing more
        messages = len(dom.message_ids)
        self.env["emboux.domain"]._cron_poll_verification()
        self.assertEqual((len(dom.message_ids), len(dom.activity_ids)), (messages, 1))

    def test_a_failed_verification_is_posted_with_an_activity_too(self):
        dom = self.hosted_domain()
        dom._emboux_store_verification({"state": "pending", "verified": False})
        dom._emboux_store_verification({"state": "failed", "verified": False, "detail": "SES: TXT record not found"},
                                       notify=True)
        self.assertEqual(dom.verification_state, "failed")
        self.assertTrue(dom.message_ids.filtered(lambda m: "SES: TXT record not found" in (m.body or "")))
        self.assertIn("failed", dom.activity_ids.summary)
        # the same answer again is no news
        dom._emboux_store_verification({"state": "failed", "verified": False}, notify=True)
        self.assertEqual(len(dom.activity_ids), 1)

    def test_verify_a_domain_not_hosted_is_refused_and_nothing_is_stored(self):
        dom = self.new_domain()          # its creation is still queued: the platform does not host it
        with self.assertRaisesRegex(UserError, "not hosted on the mail platform"):
            dom.action_verify()
        with self.assertRaisesRegex(UserError, "not hosted on the mail platform"):
            dom.action_refresh_verification()
        self.assertEqual(dom.verification_state, "unverified")
        self.assertFalse(maildb("SELECT 1 FROM domains WHERE name = %s", (dom.name,)))
        self.assertFalse(maildb("SELECT 1 FROM provider_identities i JOIN domains d ON d.id = i.domain_id "
                                "WHERE d.name = %s", (dom.name,)))

    def test_verify_before_the_ownership_proof_is_refused(self):
        dom = self.new_domain()
        self.flush_queue()
        self.assertEqual(dom.ownership, "pending")
        with self.assertRaises(UserError):
            dom.action_verify()
        self.assertEqual(dom.verification_state, "unverified")

    def test_rotate_dkim_managers_only_and_not_without_a_key(self):
        dom = self.hosted_domain()
        with self.assertRaisesRegex(UserError, "no DKIM key"):
            dom.action_rotate_dkim()
        self.assertFalse(maildb("SELECT 1 FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
                                "WHERE d.name = %s", (dom.name,)))
        dom.action_verify()
        first = dom.dkim_selector
        with self.assertRaises(AccessError):
            dom.with_user(self.user()).action_rotate_dkim()
        self.assertEqual(dom.dkim_selector, first)
        dom.action_rotate_dkim()
        self.assertEqual(dom.dkim_state, "rotating")
        self.assertNotEqual(dom.dkim_selector, first)
        self.assertIn(f"{first} (retiring)", dom.dkim_selectors)
        self.assertTrue(dom.message_ids.filtered(lambda m: "rotated the DKIM key" in (m.body or "")))

    def test_dkim_rotation_age_goes_to_the_platform(self):
        dom = self.hosted_domain()
        dom.action_verify()
        with self.assertRaises(AccessError):
            dom.with_user(self.user()).write({"dkim_rotation_days": 30})
        for bad in (-5, 4000, "30"):
            with self.assertRaises(UserError):
                dom.write({"dkim_rotation_days": bad})
        self.assertFalse(self.pending_jobs(dom))
        dom.write({"dkim_rotation_days": 90})
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        self.assertEqual(maildb("SELECT dkim_rotation_days FROM domains WHERE name = %s", (dom.name,))[0][0], 90)
        self.assertTrue(dom.dkim_rotates_at)

    def test_dns_check_the_resolver_does_not_answer_keeps_the_last_check(self):
        dom = self.hosted_domain()
        self.zone(dom)
        dom.action_check_dns()
        before = (dom.dns_record_ids.ids, dom.dns_checked_at)
        self.assertTrue(before[0])
        # no zone at all: the dev resolver refuses to answer for the name
        write_zone(dom.name, [])()
        with self.assertRaisesRegex(UserError, "resolver did not answer"):
            dom.action_check_dns()
        self.assertEqual((dom.dns_record_ids.ids, dom.dns_checked_at), before)

    # --- Outbound ----------------------------------------------------------------------
    def test_a_limit_goes_to_the_platform_and_counters_come_back(self):
        dom = self.hosted_domain()
        dom.write({"outbound_daily_limit": 250, "outbound_monthly_limit": 5000})
        job = self.pending_jobs(dom).filtered(lambda j: j.kind == "domain.outbound")
        self.assertEqual((job.method, job.path), ("PUT", f"/domains/{dom.name}/outbound"))
        self.assertNotIn("outbound_tier", job.payload, "only what changed is sent")
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        remote = api("GET", f"/domains/{dom.name}/outbound").json()
        self.assertEqual((remote["outbound_daily_limit"], remote["outbound_monthly_limit"]), (250, 5000))
        self.assertEqual(dom.outbound_daily_ceiling, 250)
        r = api("POST", f"/domains/{dom.name}/outbound/increment", json={"count": 3, "bytes": 4096})
        self.assertEqual(r.status_code, 200, r.text)
        dom.action_refresh_outbound()
        self.assertEqual((dom.outbound_sent_today, dom.outbound_sent_month), (3, 3))
        self.assertEqual(dom.outbound_bytes_month, 4096)
        self.assertEqual((dom.bounce_rate_threshold, dom.complaint_rate_threshold),
                         (remote["bounce_rate_threshold"], remote["complaint_rate_threshold"]))
        self.assertTrue(dom.outbound_checked_at)

    def test_an_invalid_limit_is_refused_and_nothing_is_saved(self):
        dom = self.hosted_domain()
        for bad in (-1, "a lot", 2_000_000_000, None):
            with self.assertRaises(UserError, msg=repr(bad)):
                dom.write({"outbound_daily_limit": bad})
        with self.assertRaises(UserError):
            dom.write({"spike_max_multiplier": -2})
        self.assertEqual(dom.outbound_daily_limit, 1000)
        self.assertFalse(self.pending_jobs(dom))
        self.assertEqual(api("GET", f"/domains/{dom.name}/outbound").json()["outbound_daily_limit"], 1000)

    def test_only_managers_change_tier_and_enforcement(self):
        dom = self.hosted_domain()
        user = self.user()
        for vals in ({"outbound_tier": "dedicated"}, {"outbound_enforcement": "soft"},
                     {"warmup_profile": "fast"}, {"spike_max_multiplier": 2.0}, {"provider": "ses"}):
            with self.assertRaises(AccessError, msg=vals):
                dom.with_user(user).write(vals)
        self.assertFalse(self.pending_jobs(dom))
        self.assertFalse(dom.with_user(user).emboux_can_manage)
        # a user may lower the limits, like a client token may
        dom.with_user(user).write({"outbound_daily_limit": 100})
        manager = self.user(manager=True)
        self.assertTrue(dom.with_user(manager).emboux_can_manage)
        dom.with_user(manager).write({"outbound_tier": "dedicated", "outbound_enforcement": "soft"})
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        remote = api("GET", f"/domains/{dom.name}/outbound").json()
        self.assertEqual((remote["outbound_tier"], remote["outbound_enforcement"], remote["outbound_daily_limit"]),
                         ("dedicated", "soft", 100))

    def test_a_suspended_outbound_is_shown_and_filtered(self):
        dom = self.hosted_domain()
        r = api("PUT", f"/domains/{dom.name}/outbound",
                json={"outbound_status": "suspended", "outbound_status_reason": "bounce rate 7.0% > 0.5%"})
        self.assertEqual(r.status_code, 200, r.text)
        dom.action_refresh_outbound()
        self.assertEqual((dom.outbound_status, dom.outbound_status_reason),
                         ("suspended", "bounce rate 7.0% > 0.5%"))
        Domain = self.env["emboux.domain"]
        search = self.env.ref("emboux_core.emboux_domain_view_search")
        self.assertIn('name="outbound_suspended"', search.arch)
        self.assertIn(dom, Domain.search([("outbound_status", "=", "suspended")]))
        for view in ("emboux_domain_view_list", "emboux_domain_view_kanban"):
            self.assertIn("outbound_status", self.env.ref(f"emboux_core.{view}").arch)
