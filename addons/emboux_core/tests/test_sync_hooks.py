# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every create/write/unlink hook, end to end into the mail DB."""

import hashlib
from datetime import datetime, timezone

from passlib.hash import sha512_crypt

from .common import EmbouxCase, api, maildb


def verify(password, stored):
    assert stored.startswith("{SHA512-CRYPT}"), stored
    return sha512_crypt.verify(password, stored[len("{SHA512-CRYPT}"):])


class TestSyncHooks(EmbouxCase):

    def test_domain_create_is_queued_then_applied(self):
        dom = self.new_domain()
        self.assertEqual(dom.sync_state, "pending")
        self.assertTrue(self.pending_jobs(dom), "the change is queued in the same transaction")
        self.assertIsNone(self.mail_domain(dom.name), "nothing reaches the mail DB before commit")
        self.flush_queue()
        self.assertEqual(dom.sync_state, "synced")
        self.assertTrue(dom.remote_id)
        name, ref, status, _r, _t = self.mail_domain(dom.name)
        self.assertEqual((ref, status), (self.tenant.partner_ref, "active"))

    def test_domain_suspend_activate_retention_transfer(self):
        dom = self.new_domain()
        self.flush_queue()
        self.env.cr.precommit.run()
        dom.action_suspend()
        self.env.cr.precommit.run()  # (tracking is written at commit time)
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2], "suspended")
        dom.action_activate()
        dom.write({"retention_days": 30, "transfer_monthly_mb": 2048})
        self.flush_queue()
        self.assertEqual(self.mail_domain(dom.name)[2:], ("active", 30, 2048))
        self.assertEqual(dom.sync_state, "synced")
        # tracking: the state change is in the chatter
        self.assertTrue(dom.message_ids.tracking_value_ids.filtered(lambda t: t.field_id.name == "state"))

    def test_domain_unlink_removes_it_and_children(self):
        dom = self.new_domain()
        self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "gone", "password": "Passw0rd-gone"})
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM mailboxes WHERE email = %s", (f"gone@{dom.name}",))[0][0], 1)
        name = dom.name
        dom.unlink()
        self.flush_queue()
        self.assertIsNone(self.mail_domain(name))
        self.assertEqual(maildb("SELECT count(*) FROM mailboxes WHERE email = %s", (f"gone@{name}",))[0][0], 0)

    def test_mailbox_password_quota_and_delete(self):
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create(
            {"domain_id": dom.id, "local_part": "Alice", "password": "first-Passw0rd", "quota_mb": 300})
        self.assertEqual(box.email, f"alice@{dom.name}")
        self.flush_queue()
        self.assertEqual(box.sync_state, "synced")
        (stored, quota), = maildb("SELECT password_hash, quota_mb FROM mailboxes WHERE email = %s", (box.email,))
        self.assertTrue(verify("first-Passw0rd", stored))
        self.assertEqual(quota, 300)
        box.write({"password": "second-Passw0rd", "quota_mb": 500})
        self.flush_queue()
        (stored, quota), = maildb("SELECT password_hash, quota_mb FROM mailboxes WHERE email = %s", (box.email,))
        self.assertTrue(verify("second-Passw0rd", stored))
        self.assertFalse(verify("first-Passw0rd", stored))
        self.assertEqual(quota, 500)
        email = box.email
        box.unlink()
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM mailboxes WHERE email = %s", (email,))[0][0], 0)

    def test_catch_all_tick_and_untick(self):
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create(
            {"domain_id": dom.id, "local_part": "all", "password": "catch-all-Passw0rd", "catch_all": True})
        self.flush_queue()
        rows = maildb("SELECT destination FROM aliases WHERE source = %s", (f"@{dom.name}",))
        self.assertEqual(rows, [(box.email,)])
        other = self.env["emboux.mailbox"].create(
            {"domain_id": dom.id, "local_part": "other", "password": "other-Passw0rd"})
        other.catch_all = True  # moves the catch-all
        self.flush_queue()
        self.assertFalse(box.catch_all)
        self.assertEqual(maildb("SELECT destination FROM aliases WHERE source = %s", (f"@{dom.name}",)),
                         [(other.email,)])
        other.catch_all = False
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM aliases WHERE source = %s", (f"@{dom.name}",))[0][0], 0)
        self.assertFalse(self.env["emboux.alias"].search([("source", "=", f"@{dom.name}")]))

    def test_alias_create_update_delete(self):
        dom = self.new_domain()
        self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "bob", "password": "bob-Passw0rd1"})
        alias = self.env["emboux.alias"].create(
            {"domain_id": dom.id, "source": "sales", "destinations": f"bob@{dom.name}, ext@example.org"})
        self.assertEqual(alias.source, f"sales@{dom.name}")
        self.flush_queue()
        dests = {r[0] for r in maildb("SELECT destination FROM aliases WHERE source = %s", (alias.source,))}
        self.assertEqual(dests, {f"bob@{dom.name}", "ext@example.org"})
        alias.destinations = "ext@example.org"
        self.flush_queue()
        self.assertEqual(maildb("SELECT destination FROM aliases WHERE source = %s", (alias.source,)),
                         [("ext@example.org",)])
        source = alias.source
        alias.unlink()
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM aliases WHERE source = %s", (source,))[0][0], 0)

    def test_tenant_create_puts_the_partner(self):
        got = api("GET", f"/partners/{self.tenant.partner_ref}")
        self.assertEqual(got.status_code, 200, got.text)
        got = got.json()
        self.assertEqual((got["domains_allowed"], got["mailboxes_per_domain"], got["aliases_per_mailbox"]),
                         (20, 5, 3))
        self.assertEqual(got["api_keys"]["total"], 0, "no helper API key any more")

    def test_tenant_outside_destination_quota_reaches_the_connector(self):
        self.assertEqual(self.tenant.alias_external_destinations, 10)
        self.tenant.write({"alias_external_destinations": 3})
        self.flush_queue()
        self.assertEqual(self.tenant.sync_state, "synced")
        got = api("GET", f"/partners/{self.tenant.partner_ref}").json()
        self.assertEqual(got["alias_external_destinations"], 3)

    def test_tenant_quotas_reach_the_connector(self):
        self.env.cr.precommit.run()
        self.tenant.write({"mailboxes_per_domain": 7, "domains_allowed": 9, "aliases_per_mailbox": 4})
        self.env.cr.precommit.run()  # (tracking is written at commit time)
        self.flush_queue()
        self.assertEqual(self.tenant.sync_state, "synced")
        row = maildb("SELECT domains_allowed, mailboxes_per_domain, aliases_per_mailbox FROM partners "
                     "WHERE partner_ref = %s", (self.tenant.partner_ref,))
        self.assertEqual(row, [(9, 7, 4)])
        # through PUT /partners/{ref}, read back with GET /partners/{ref}; no helper API key
        job = self.env["emboux.sync.job"].search([("res_model", "=", "emboux.tenant"),
                                                  ("res_id", "=", self.tenant.id)], order="id desc", limit=1)
        self.assertEqual((job.method, job.path), ("PUT", f"/partners/{self.tenant.partner_ref}"))
        got = api("GET", f"/partners/{self.tenant.partner_ref}").json()
        self.assertEqual((got["domains_allowed"], got["mailboxes_per_domain"], got["aliases_per_mailbox"]),
                         (9, 7, 4))
        self.assertEqual(got["api_keys"], {"active": 0, "total": 0})
        self.tenant.write({"aliases_per_mailbox": 0})
        self.flush_queue()
        self.assertEqual(api("GET", f"/partners/{self.tenant.partner_ref}").json()["aliases_per_mailbox"], 0)
        # tracked on the tenant
        self.assertTrue(self.tenant.message_ids.tracking_value_ids.filtered(
            lambda t: t.field_id.name == "mailboxes_per_domain"))

    def new_key(self, name="CI key", tenant=None):
        res = self.env["emboux.api.key"].create_with_token({"tenant_id": (tenant or self.tenant).id, "name": name})
        self.addCleanup(api, "DELETE", f"/api-keys/{res['token']}")  # (the test's own copy)
        return self.env["emboux.api.key"].browse(res["id"]), res["token"]

    def key_jobs(self, key, kind):
        return self.env["emboux.sync.job"].search([("res_model", "=", key._name), ("res_id", "=", key.id),
                                                   ("kind", "=", kind)])

    def test_api_key_lifecycle_by_id(self):
        key, token = self.new_key()
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.assertEqual(key.token_hash, digest)
        self.assertFalse(key.connector_key_id)
        self.flush_queue()
        self.assertEqual(key.sync_state, "synced", key.sync_error)
        (remote_id, active, ref), = maildb("SELECT id, active, partner_ref FROM api_keys WHERE token_hash = %s",
                                           (digest,))
        self.assertEqual((key.connector_key_id, active, ref), (remote_id, True, self.tenant.partner_ref))
        # the token works against the REST API as the tenant
        self.assertEqual(api("GET", "/domains/", token=token).status_code, 200)
        # deactivate: PUT /api-keys/by-id/<id>
        key.active = False
        self.assertEqual(self.key_jobs(key, "api_key.update").path, f"/api-keys/by-id/{remote_id}")
        self.flush_queue()
        self.assertEqual(key.sync_state, "synced", key.sync_error)
        self.assertEqual(maildb("SELECT active FROM api_keys WHERE id = %s", (remote_id,)), [(False,)])
        self.assertEqual(api("GET", "/domains/", token=token).status_code, 403)
        # reactivate with an expiry
        key.write({"active": True, "expires_at": "2099-01-02 03:04:05"})
        self.flush_queue()
        self.assertEqual(key.sync_state, "synced", key.sync_error)
        (active, expires), = maildb("SELECT active, expires_at FROM api_keys WHERE id = %s", (remote_id,))
        self.assertTrue(active)
        self.assertEqual(expires.astimezone(timezone.utc).replace(tzinfo=None), datetime(2099, 1, 2, 3, 4, 5))
        self.assertEqual(api("GET", "/domains/", token=token).status_code, 200)
        # delete: DELETE /api-keys/by-id/<id>
        key.unlink()
        job = self.env["emboux.sync.job"].search([("kind", "=", "api_key.delete"), ("state", "=", "pending")])
        self.assertEqual(job.path, f"/api-keys/by-id/{remote_id}")
        self.flush_queue()
        self.assertEqual(job.state, "done", job.last_error)
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE id = %s", (remote_id,)), [(0,)])
        self.assertIn(api("GET", "/domains/", token=token).status_code, (401, 403), "revoked")

    def test_api_key_changes_queued_before_its_create(self):
        """Deactivated, then deleted, before the create reached the connector:
        the later jobs learn the key's id when they run."""
        key, token = self.new_key("early")
        key.write({"active": False, "expires_at": "2098-05-06 07:08:09"})
        update = self.key_jobs(key, "api_key.update")
        self.assertEqual(update.path, "/api-keys/by-id/{key_id}")
        self.flush_queue()
        self.assertEqual(update.state, "done", update.last_error)
        self.assertEqual(key.sync_state, "synced", key.sync_error)
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.assertEqual(maildb("SELECT id, active FROM api_keys WHERE token_hash = %s", (digest,)),
                         [(key.connector_key_id, False)])
        self.assertEqual(api("GET", "/domains/", token=token).status_code, 403)

        # created and deleted in one go: the delete finds the id its create got
        other, other_token = self.new_key("short-lived")
        other_id = other.id
        other.unlink()
        delete = self.env["emboux.sync.job"].search([("res_model", "=", "emboux.api.key"),
                                                     ("res_id", "=", other_id), ("kind", "=", "api_key.delete")])
        self.assertEqual(delete.path, "/api-keys/by-id/{key_id}")
        self.flush_queue()
        create = self.env["emboux.sync.job"].search([("res_model", "=", "emboux.api.key"),
                                                     ("res_id", "=", other_id), ("kind", "=", "api_key.create")])
        self.assertEqual((create.state, delete.state), ("done", "done"), delete.last_error)
        self.assertTrue(create.result_id)
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE id = %s OR token_hash = %s",
                                (create.result_id, hashlib.sha256(other_token.encode()).hexdigest())), [(0,)])

    def test_api_key_whose_create_was_refused(self):
        """A refused create leaves nothing to delete; an update of it says why."""
        key, _token = self.new_key("refused")
        create = self.key_jobs(key, "api_key.create")
        create.payload = '{"partner_ref": "not a valid ref!"}'  # the connector refuses it
        key.active = False
        self.flush_queue()
        update = self.key_jobs(key, "api_key.update")
        self.assertEqual((create.state, update.state), ("failed", "failed"))
        self.assertIn("does not exist on the mail platform", update.last_error)
        self.assertEqual(key.sync_state, "error")
        key.unlink()
        delete = self.env["emboux.sync.job"].search([("kind", "=", "api_key.delete"), ("state", "=", "pending")])
        self.flush_queue()
        self.assertEqual(delete.state, "done", delete.last_error)

    def test_replayed_job_is_harmless(self):
        """A job sent twice (e.g. the answer was lost) has the effect of one."""
        dom = self.new_domain()
        self.flush_queue()
        job = self.env["emboux.sync.job"].search([("res_model", "=", "emboux.domain"), ("res_id", "=", dom.id),
                                                  ("kind", "=", "domain.create")])
        job.state = "pending"
        self.flush_queue()
        self.assertEqual(job.state, "done", job.last_error)
        self.assertEqual(dom.sync_state, "synced")

    def test_tenant_unlink_and_default_quota(self):
        partner = self.env["res.partner"].create({"name": "Short-lived"})
        tenant = self.env["emboux.tenant"].create({"name": "Short-lived", "partner_id": partner.id,
                                                   "default_quota_mb": 321})
        self.assertTrue(tenant.partner_ref, "a platform reference is generated")
        self.flush_queue()
        self.assertEqual(tenant.sync_state, "synced", tenant.sync_error)
        dom = self.new_domain(tenant=tenant)
        box = self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "q", "password": "Passw0rd-q1"})
        self.assertEqual(box.quota_mb, 321, "the tenant's default storage per mailbox")
        self.flush_queue()
        self.assertEqual(maildb("SELECT quota_mb FROM mailboxes WHERE email = %s", (box.email,)), [(321,)])
        ref = tenant.partner_ref
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE partner_ref = %s", (ref,)), [(0,)])
        key, _token = self.new_key("tenant's", tenant=tenant)
        archived, _token2 = self.new_key("archived", tenant=tenant)
        archived.active = False
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE partner_ref = %s", (ref,)), [(2,)])
        from odoo.exceptions import UserError
        with self.assertRaisesRegex(UserError, "Delete or move the domains"):
            tenant.unlink()
        dom.unlink()
        tenant.unlink()
        self.flush_queue()
        self.assertEqual(maildb("SELECT count(*) FROM api_keys WHERE partner_ref = %s", (ref,)), [(0,)])
        self.assertEqual(maildb("SELECT count(*) FROM domains WHERE partner_ref = %s", (ref,)), [(0,)])

    def test_lost_answers_are_harmless(self):
        """The connector applied a change but Odoo never heard back (timeout,
        crash before marking the job done): sending it again is success."""
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create(
            {"domain_id": dom.id, "local_part": "lost", "password": "Lost-Passw0rd", "catch_all": True})
        client = self.env["emboux.connector"]._client()
        jobs = self.pending_jobs()
        self.assertEqual(set(jobs.mapped("kind")) >= {"domain.create", "mailbox.create", "alias.upsert"}, True)
        for job in jobs.sorted("id"):
            client.call(*job._call())  # applied behind Odoo's back
        self.flush_queue()
        self.assertTrue(all(j.state == "done" for j in jobs), jobs.mapped("last_error"))
        self.assertEqual((dom.sync_state, box.sync_state), ("synced", "synced"))
        (stored,), = maildb("SELECT password_hash FROM mailboxes WHERE email = %s", (box.email,))
        self.assertTrue(verify("Lost-Passw0rd", stored))
        # an API key created behind Odoo's back: "already exists" on replay, its id learnt
        key, token = self.new_key("lost")
        job = self.key_jobs(key, "api_key.create")
        remote = client.call(*job._call())
        self.flush_queue()
        self.assertEqual(job.state, "done", job.last_error)
        self.assertEqual(key.connector_key_id, remote["id"])
        self.assertFalse(job.sudo().secret_sealed)
        key.active = False
        self.flush_queue()
        self.assertEqual(maildb("SELECT active FROM api_keys WHERE id = %s", (remote["id"],)), [(False,)])
        # a delete whose answer was lost: 404 the second time, still success
        box.unlink()
        job = self.pending_jobs()
        client.call(*job._call())
        self.flush_queue()
        self.assertEqual(job.state, "done", job.last_error)
