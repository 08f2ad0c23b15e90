# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Domain ownership (issue 9): Odoo asks the platform for a DNS proof of the
domains it creates (a customer typed the name), shows the TXT record to
publish, checks it on demand, and lets a manager -- only a manager --
vouch for a domain explicitly, recorded in the chatter and on the platform."""

import os
import subprocess
import time
from datetime import datetime, timedelta

from odoo.exceptions import AccessError

from .common import EmbouxCase, api, maildb, uniq


def publish_txt(zone, name, value):
    """A zone of the dev stack's NSD holding one TXT record (what the
    customer does at its DNS host). Returns a callable that removes it."""
    zones_dir, conf = os.environ["DNS_ZONES_DIR"], os.environ["NSD_CONF"]
    path = os.path.join(zones_dir, f"{zone}.zone")
    with open(path, "w") as f:
        f.write(f"$ORIGIN {zone}.\n$TTL 1\n@ IN SOA ns.{zone}. hostmaster.{zone}. ({int(time.time())} 60 60 60 1)\n"
                f"@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n{name}. IN TXT \"{value}\"\n")
    ctl = ["nsd-control", "-c", conf]
    subprocess.run(ctl + ["addzone", zone, "emboux"], capture_output=True, timeout=20, check=True)

    def remove():
        subprocess.run(ctl + ["delzone", zone], capture_output=True, timeout=20)
        os.remove(path)
    return remove


def platform_ownership(name):
    rows = maildb("SELECT ownership, ownership_method, ownership_by FROM domains WHERE name = %s", (name,))
    return rows[0] if rows else None


def routed(name):
    """Does the mail server see the domain (the view Postfix reads)?"""
    return bool(maildb("SELECT 1 FROM mailserver.domains WHERE name = %s", (name,)))


class TestOwnership(EmbouxCase):

    def test_odoo_asks_for_proof_and_shows_the_record(self):
        dom = self.new_domain()
        self.assertEqual(dom.ownership, "pending")
        job = self.pending_jobs(dom).filtered(lambda j: j.kind == "domain.create")
        self.assertIn('"require_ownership_proof": true', job.payload)
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        self.assertEqual(platform_ownership(dom.name)[0], "pending")
        self.assertFalse(routed(dom.name), "a domain waiting for its proof receives nothing")
        self.assertEqual(dom.ownership, "pending")
        self.assertEqual(dom.ownership_record_name, f"_emboux-verification.{dom.name}")
        self.assertTrue(dom.ownership_record_value.startswith("emboux-verify="))
        remote = api("GET", f"/domains/{dom.name}").json()
        self.assertEqual(dom.ownership_record_value, remote["ownership_record"]["value"])

    def test_check_without_the_record_keeps_it_pending(self):
        dom = self.new_domain()
        self.flush_queue()
        action = dom.action_check_ownership()
        self.assertEqual(action["params"]["type"], "warning")
        self.assertIn(dom.name, action["params"]["message"])
        self.assertEqual(dom.ownership, "pending")
        self.assertFalse(routed(dom.name))

    def test_check_finds_the_published_record(self):
        """The customer publishes the TXT record shown on the form; Check
        ownership makes the domain live, without anyone vouching."""
        if not (os.environ.get("DNS_ZONES_DIR") and os.environ.get("NSD_CONF")):
            self.skipTest("the dev stack's DNS server is not described in the environment (./dev test)")
        dom = self.new_domain()
        self.flush_queue()
        self.addCleanup(publish_txt(dom.name, dom.ownership_record_name, dom.ownership_record_value))
        for _ in range(20):     # NSD loads the zone in a moment: a bounded number of tries
            action = dom.action_check_ownership()
            if dom.ownership != "pending":
                break
            time.sleep(0.1)
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual((dom.ownership, dom.ownership_method), ("verified", "dns_txt"))
        self.assertEqual(platform_ownership(dom.name)[:2], ("verified", "dns_txt"))
        self.assertTrue(routed(dom.name))

    def test_manager_vouches_explicitly_and_it_is_recorded(self):
        dom = self.new_domain()
        self.flush_queue()
        self.env.cr.precommit.run()
        dom.action_vouch_ownership()
        job = self.pending_jobs(dom).filtered(lambda j: j.kind == "domain.vouch")
        self.assertTrue(job, "the vouch goes through the queue, after the create")
        self.assertIn(self.env.user.login, job.payload)
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced", dom.sync_error)
        state, method, by = platform_ownership(dom.name)
        self.assertEqual((state, method), ("vouched", "operator"))
        self.assertIn(self.env.user.login, by)
        self.assertTrue(routed(dom.name))
        self.assertEqual((dom.ownership, dom.ownership_method), ("vouched", "operator"))
        self.assertTrue(dom.ownership_at)
        self.assertTrue(dom.message_ids.filtered(lambda m: "vouched for the ownership" in (m.body or "")))
        # the check button on a vouched domain changes nothing
        self.assertEqual(dom.action_check_ownership()["params"]["type"], "success")
        self.assertEqual(platform_ownership(dom.name)[0], "vouched")

    def test_a_user_who_is_not_manager_cannot_vouch(self):
        dom = self.new_domain()
        self.flush_queue()
        user = self.env["res.users"].create({
            "name": "Hosting user", "login": uniq("o-user-"),
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_user").id])],
        })
        with self.assertRaises(AccessError):
            dom.with_user(user).action_vouch_ownership()
        self.assertFalse(self.pending_jobs(dom))
        self.assertEqual(platform_ownership(dom.name)[0], "pending")

    def test_ownership_proved_through_the_api_reaches_odoo(self):
        """A proof made outside Odoo (the customer's integration, or a vouch)
        comes back through the change feed."""
        dom = self.new_domain()
        self.flush_queue()
        r = api("PUT", f"/domains/{dom.name}/ownership/vouch", json={})
        self.assertEqual(r.status_code, 200)
        # just before the vouch's own transaction (the shared dev DB's feed since
        # an older instant may hold more than one page)
        since = (datetime.fromisoformat(r.json()["ownership_at"]) - timedelta(seconds=1)).isoformat()
        feed = self.env["emboux.change.feed"]
        feed._apply_change({"resource": "domain", "key": dom.name, "action": "updated",
                            "current": [c for c in api("GET", "/changes", params={"since": since}).json()["changes"]
                                        if c["key"] == dom.name][-1]["current"]})
        self.assertEqual(dom.ownership, "vouched")
