# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Behaviour across real commits and rollbacks, with real cursors (these
tests commit in the test database and clean up after themselves):
- an Odoo rollback leaves no orphan in the mail DB;
- connector stopped -> change queued -> connector started -> applied;
- delta sync from the connector into Odoo, without echo.
A private connector (gunicorn from var/venv, same mail DB) is started and
stopped here, so the shared one of the dev stack is never interrupted."""

import hashlib
import os
import signal
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from odoo import SUPERUSER_ID, api
from odoo.tests.common import TransactionCase

from .common import (API_KEY, API_URL, TEST_TLD, api as rest, maildb, require_stack, sealed_secrets_holding,
                     tables_containing, uniq)

ROOT = Path(os.environ.get("ROOT") or Path(__file__).resolve().parents[3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateConnector:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        gunicorn = ROOT / "var" / "venv" / "bin" / "gunicorn"
        self.proc = subprocess.Popen(
            [str(gunicorn), "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4",
             "--chdir", str(ROOT), "emboux_connector.wsgi:app"],
            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(150):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("private connector did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None


class TestCommitted(TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_stack()

    def run_in_new_cursor(self, fn, commit=True):
        """fn(env) in a real transaction of its own; commit (post-commit
        hooks fire) or roll back."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            result = fn(env)
            if commit:
                # the test is about what happens after a real commit (hooks)
                cr.commit()  # pylint: disable=invalid-commit
            else:
                cr.rollback()
            return result

    def setup_stack(self, url=None):
        ref = uniq("c-")

        def setup(env):
            icp = env["ir.config_parameter"].sudo()
            icp.set_param("emboux.connector_url", url or API_URL)
            icp.set_param("emboux.master_token", API_KEY)
            partner = env["res.partner"].create({"name": "Committed test customer"})
            return env["emboux.tenant"].create({"name": ref, "partner_ref": ref, "partner_id": partner.id,
                                                "mailboxes_per_domain": 10}).id
        tenant_id = self.run_in_new_cursor(setup)
        self.addCleanup(self.run_in_new_cursor, lambda env: env["ir.config_parameter"].sudo().set_param(
            "emboux.connector_url", API_URL))
        return tenant_id, ref

    def cleanup_domain(self, name):
        def drop(env):
            env["emboux.domain"].with_context(emboux_no_sync=True, active_test=False).search(
                [("name", "=", name)]).unlink()
        self.addCleanup(rest, "DELETE", f"/domains/{name}")
        self.addCleanup(self.run_in_new_cursor, drop)

    def state_of(self, model, rec_id):
        return self.run_in_new_cursor(
            lambda env: env[model].with_context(active_test=False).browse(rec_id).read(
                ["sync_state", "sync_error"])[0], commit=False)

    def test_rollback_leaves_no_orphan(self):
        tenant_id, ref = self.setup_stack()
        name = f"{uniq('rb')}.{TEST_TLD}"
        self.cleanup_domain(name)

        def create_then_fail(env):
            dom = env["emboux.domain"].create({"name": name, "tenant_id": tenant_id})
            env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "x", "password": "Passw0rd-rb"})
            return dom.id
        self.run_in_new_cursor(create_then_fail, commit=False)
        time.sleep(0.5)
        self.assertEqual(maildb("SELECT count(*) FROM domains WHERE name = %s", (name,))[0][0], 0)
        self.assertEqual(self.run_in_new_cursor(
            lambda env: env["emboux.domain"].search_count([("name", "=", name)]), commit=False), 0)
        self.assertEqual(self.run_in_new_cursor(
            lambda env: env["emboux.sync.job"].search_count([("res_name", "ilike", name)]), commit=False), 0)
        # the same change committed does reach the mail DB (the test can fail)
        self.run_in_new_cursor(create_then_fail)
        self.assertEqual(maildb("SELECT count(*) FROM domains WHERE name = %s", (name,))[0][0], 1)
        self.assertEqual(maildb("SELECT count(*) FROM mailboxes WHERE email = %s", (f"x@{name}",))[0][0], 1)

    def test_connector_down_then_up(self):
        conn = PrivateConnector()
        self.addCleanup(conn.stop)
        tenant_id, ref = self.setup_stack(url=conn.url)  # the connector is not running yet
        name = f"{uniq('down')}.{TEST_TLD}"
        self.cleanup_domain(name)

        def create(env):
            dom = env["emboux.domain"].create({"name": name, "tenant_id": tenant_id})
            box = env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "q", "password": "Passw0rd-q1",
                                                "catch_all": True})
            return dom.id, box.id
        dom_id, box_id = self.run_in_new_cursor(create)  # commits; post-commit dispatch fails: queued
        st = self.state_of("emboux.domain", dom_id)
        self.assertEqual(st["sync_state"], "pending")
        self.assertIn("cannot be reached", st["sync_error"])
        self.assertEqual(maildb("SELECT count(*) FROM domains WHERE name = %s", (name,))[0][0], 0)
        jobs = self.run_in_new_cursor(lambda env: env["emboux.sync.job"].search_read(
            [("lane", "=", f"partner:{ref}")], ["state", "attempts", "kind"]), commit=False)
        self.assertTrue(jobs and all(j["state"] == "pending" for j in jobs), jobs)
        # the cron runs while the connector is still down: still queued, with back-off
        self.run_in_new_cursor(lambda env: env["emboux.sync.job"]._cron_process_queue())
        self.assertEqual(maildb("SELECT count(*) FROM domains WHERE name = %s", (name,))[0][0], 0)

        conn.start()
        # the cron honours the back-off: nothing yet ...
        self.run_in_new_cursor(lambda env: env["emboux.sync.job"]._cron_process_queue())
        self.assertEqual(maildb("SELECT count(*) FROM domains WHERE name = %s", (name,))[0][0], 0)
        # ... until the back-off has elapsed
        self.run_in_new_cursor(lambda env: env.cr.execute(
            "UPDATE emboux_sync_job SET next_attempt_at = now() at time zone 'utc' - interval '1 second' "
            "WHERE lane = %s AND state = 'pending'", (f"partner:{ref}",)))
        self.run_in_new_cursor(lambda env: env["emboux.sync.job"]._cron_process_queue())
        self.assertEqual(maildb("SELECT partner_ref FROM domains WHERE name = %s", (name,)), [(ref,)])
        self.assertEqual(maildb("SELECT count(*) FROM mailboxes WHERE email = %s", (f"q@{name}",))[0][0], 1)
        self.assertEqual(maildb("SELECT destination FROM aliases WHERE source = %s", (f"@{name}",)), [(f"q@{name}",)])
        self.assertEqual(self.state_of("emboux.domain", dom_id)["sync_state"], "synced")
        self.assertEqual(self.state_of("emboux.mailbox", box_id)["sync_state"], "synced")
        # and nothing holds a password any more
        self.assertFalse(self.run_in_new_cursor(lambda env: env["emboux.sync.job"].search(
            [("lane", "=", f"partner:{ref}"), ("secret_sealed", "!=", False)]).ids, commit=False))
        self.assertEqual(rest("GET", f"/partners/{ref}").json()["mailboxes_per_domain"], 10)

        # down again: a change waits; the record's "Retry sync" sends it at once
        conn.stop()
        self.run_in_new_cursor(lambda env: env["emboux.mailbox"].browse(box_id).write(
            {"quota_mb": 42, "password": "Passw0rd-q2"}))
        self.assertEqual(self.state_of("emboux.mailbox", box_id)["sync_state"], "pending")
        self.assertNotEqual(maildb("SELECT quota_mb FROM mailboxes WHERE email = %s", (f"q@{name}",)), [(42,)])
        conn.start()
        self.run_in_new_cursor(lambda env: env["emboux.mailbox"].browse(box_id).action_emboux_retry_sync())
        self.assertEqual(maildb("SELECT quota_mb FROM mailboxes WHERE email = %s", (f"q@{name}",)), [(42,)])
        (stored,), = maildb("SELECT password_hash FROM mailboxes WHERE email = %s", (f"q@{name}",))
        from passlib.hash import sha512_crypt
        self.assertTrue(sha512_crypt.verify("Passw0rd-q2", stored[len("{SHA512-CRYPT}"):]))
        self.assertEqual(self.state_of("emboux.mailbox", box_id)["sync_state"], "synced")

    def test_api_key_while_connector_down(self):
        """A key created, deactivated and given a quota change while the
        connector is down: the token waits sealed in the create job only;
        once up, everything is applied (the update by the id the create got)
        and no column of Odoo's database holds the token."""
        conn = PrivateConnector()
        self.addCleanup(conn.stop)
        tenant_id, ref = self.setup_stack(url=conn.url)
        res = self.run_in_new_cursor(lambda env: env["emboux.api.key"].create_with_token(
            {"tenant_id": tenant_id, "name": "while down"}))
        key_id, token = res["id"], res["token"]
        self.addCleanup(rest, "DELETE", f"/api-keys/{token}")
        self.run_in_new_cursor(lambda env: env["emboux.api.key"].browse(key_id).write({"active": False}))
        self.run_in_new_cursor(lambda env: env["emboux.tenant"].browse(tenant_id).write({"domains_allowed": 4}))
        self.assertEqual(self.state_of("emboux.api.key", key_id)["sync_state"], "pending")
        self.assertEqual(self.run_in_new_cursor(lambda env: tables_containing(env, token), commit=False), [])
        self.assertEqual(len(self.run_in_new_cursor(lambda env: sealed_secrets_holding(env, token),
                                                    commit=False)), 1)
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE token_hash = %s", (digest,)), [(0,)])

        conn.start()
        self.run_in_new_cursor(lambda env: env.cr.execute(
            "UPDATE emboux_sync_job SET next_attempt_at = now() at time zone 'utc' - interval '1 second' "
            "WHERE lane = %s AND state = 'pending'", (f"partner:{ref}",)))
        self.run_in_new_cursor(lambda env: env["emboux.sync.job"]._cron_process_queue())
        self.assertEqual(self.state_of("emboux.api.key", key_id)["sync_state"], "synced")
        remote_id = self.run_in_new_cursor(
            lambda env: env["emboux.api.key"].with_context(active_test=False).browse(key_id).connector_key_id,
            commit=False)
        self.assertEqual(maildb("SELECT id, active, partner_ref FROM api_keys WHERE token_hash = %s", (digest,)),
                         [(remote_id, False, ref)])
        self.assertEqual(rest("GET", f"/partners/{ref}").json()["domains_allowed"], 4)
        self.assertEqual(self.run_in_new_cursor(lambda env: tables_containing(env, token), commit=False), [])
        self.assertEqual(self.run_in_new_cursor(lambda env: sealed_secrets_holding(env, token), commit=False), [])
        # deleted through the record: DELETE /api-keys/by-id/<id>
        self.run_in_new_cursor(lambda env: env["emboux.api.key"].with_context(active_test=False).browse(
            key_id).unlink())
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE id = %s", (remote_id,)), [(0,)])

    def test_delta_sync_pull_without_echo_and_push_back(self):
        tenant_id, ref = self.setup_stack()
        # start the feed now (the shared mail DB holds other tests' history)
        now = datetime.now(timezone.utc).isoformat()
        self.run_in_new_cursor(lambda env: env["ir.config_parameter"].sudo().set_param("emboux.changes_since", now))
        name = f"{uniq('pull')}.{TEST_TLD}"
        self.cleanup_domain(name)
        last_job = self.run_in_new_cursor(lambda env: max(env["emboux.sync.job"].search([]).ids or [0]),
                                          commit=False)
        # another integrator works through the REST API
        self.assertEqual(rest("POST", "/domains/", json={"name": name, "partner_ref": ref}).status_code, 201)
        self.assertEqual(rest("POST", "/users/", json={"domain_name": name, "email": f"api@{name}",
                                                       "password": "Passw0rd-api", "quota_mb": 77}).status_code, 201)
        self.assertEqual(rest("POST", "/aliases/", json={"domain_name": name, "source": f"@{name}",
                                                         "destination": f"api@{name}"}).status_code, 201)
        away = {"enabled": True, "subject": "Away", "body": "Back on Monday.", "start": None,
                "end": "2099-01-31", "days": 3}
        self.assertEqual(rest("PUT", f"/users/api@{name}/vacation", json=away).status_code, 200)
        self.assertEqual(rest("PUT", f"/domains/{name}/suspend").status_code, 200)

        def pull_and_look(env):
            env["emboux.change.feed"]._pull_changes()
            dom = env["emboux.domain"].search([("name", "=", name)])
            box = env["emboux.mailbox"].search([("email", "=", f"api@{name}")])
            jobs = env["emboux.sync.job"].search_count([("lane", "=", f"partner:{ref}"), ("id", ">", last_job)])
            return dict(dom=dom.read(["tenant_id", "state", "sync_state"]), jobs=jobs, box_id=box.id,
                        box=box.read(["quota_mb", "catch_all", "vacation_enabled", "vacation_subject",
                                      "vacation_body", "vacation_end", "vacation_days"]))
        seen = self.run_in_new_cursor(pull_and_look)
        self.assertEqual(seen["dom"][0]["tenant_id"][0], tenant_id)
        self.assertEqual(seen["dom"][0]["state"], "suspended")
        self.assertEqual(seen["dom"][0]["sync_state"], "synced")
        self.assertEqual(seen["box"][0]["quota_mb"], 77)
        self.assertTrue(seen["box"][0]["catch_all"])
        # the auto-reply set through the API (migration 0035)
        box = seen["box"][0]
        self.assertEqual((box["vacation_enabled"], box["vacation_subject"], box["vacation_body"],
                          str(box["vacation_end"]), box["vacation_days"]),
                         (True, "Away", "Back on Monday.", "2099-01-31", 3))
        self.assertEqual(seen["jobs"], 0, "pulled changes are not echoed back")
        # pulling again changes nothing and echoes nothing
        self.assertEqual(self.run_in_new_cursor(pull_and_look)["jobs"], 0)
        # turned off through the API later: Odoo follows at the next pull, no echo
        self.assertEqual(rest("PUT", f"/users/api@{name}/vacation", json=dict(away, enabled=False)).status_code, 200)
        again = self.run_in_new_cursor(pull_and_look)
        self.assertEqual((again["box"][0]["vacation_enabled"], again["jobs"]), (False, 0))
        # Odoo -> platform on a pulled record
        self.run_in_new_cursor(lambda env: env["emboux.mailbox"].browse(seen["box_id"]).write({"quota_mb": 99}))
        self.assertEqual(maildb("SELECT quota_mb FROM mailboxes WHERE email = %s", (f"api@{name}",)), [(99,)])
        # deleted through the API -> archived in Odoo
        self.assertEqual(rest("DELETE", f"/users/api@{name}").status_code, 204)
        self.run_in_new_cursor(lambda env: env["emboux.change.feed"]._pull_changes())
        active = self.run_in_new_cursor(lambda env: env["emboux.mailbox"].with_context(active_test=False).browse(
            seen["box_id"]).active, commit=False)
        self.assertFalse(active)
