# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Settings (Test connection), the platform crons, the API key wizard."""

import hashlib

from odoo.exceptions import UserError

from .common import API_URL, EmbouxCase, maildb


class TestPlatform(EmbouxCase):

    def test_crons_exist_with_clear_names(self):
        crons = {x: self.env.ref(f"emboux_core.{x}") for x in (
            "cron_sync_push_queue", "cron_sync_pull_changes", "cron_outbound_reset_daily",
            "cron_outbound_reset_monthly", "cron_retention_purge")}
        self.assertIn("sync", crons["cron_sync_pull_changes"].name)
        self.assertIn("sync", crons["cron_sync_push_queue"].name)
        self.assertIn("daily outbound", crons["cron_outbound_reset_daily"].name)
        self.assertIn("monthly outbound", crons["cron_outbound_reset_monthly"].name)
        self.assertIn("retention purge", crons["cron_retention_purge"].name)
        self.assertTrue(all(c.active for c in crons.values()))

    def test_platform_crons_call_the_connector(self):
        Connector = self.env["emboux.connector"]
        self.assertIn("already_done", Connector._cron_outbound_reset_daily())
        # months are frozen in order: the cron calls until the backlog is caught up
        self.assertIs(Connector._cron_outbound_reset_monthly()["already_done"], True)
        self.assertIn("mailboxes", Connector._cron_retention_purge())
        # and a connector that is not there is a clear error, not a traceback
        self.env["ir.config_parameter"].sudo().set_param("emboux.connector_url", "http://127.0.0.1:9")
        with self.assertRaisesRegex(UserError, "cannot be reached"):
            Connector._cron_retention_purge()

    def test_test_connection(self):
        settings = self.env["res.config.settings"].create({})
        action = settings.action_emboux_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        bad = self.env["res.config.settings"].create({"emboux_master_token": "not-the-master-token"})
        with self.assertRaisesRegex(UserError, "Connection failed: .*refused the token"):
            bad.action_emboux_test_connection()
        down = self.env["res.config.settings"].create({"emboux_connector_url": "http://127.0.0.1:9"})
        with self.assertRaisesRegex(UserError, "Connection failed: .*cannot be reached"):
            down.action_emboux_test_connection()

    def test_master_token_saved_but_never_shown(self):
        settings = self.env["res.config.settings"].create({"emboux_connector_url": API_URL,
                                                           "emboux_master_token": "new-token-value"})
        settings.execute()
        icp = self.env["ir.config_parameter"].sudo()
        self.assertEqual(icp.get_param("emboux.master_token"), "new-token-value")
        self.assertFalse(settings.emboux_master_token, "the form's copy is wiped")
        self.assertFalse(self.env["res.config.settings"].create({}).emboux_master_token)

    def test_api_key_wizard_shows_the_token_once(self):
        wiz = self.env["emboux.api.key.wizard"].create({"tenant_id": self.tenant.id, "name": "Shop"})
        action = wiz.action_generate()
        token = action["context"]["emboux_show_token"]
        self.assertEqual(wiz.with_context(**action["context"]).token, token)
        self.assertFalse(wiz.with_context(emboux_show_token=False).token, "not readable afterwards")
        key = wiz.key_id
        self.assertEqual(key.token_hash, hashlib.sha256(token.encode()).hexdigest())
        self.assertFalse(self._has_column("emboux_api_key_wizard", "token"), "the token is not stored")
        self.flush_queue()
        self.assertEqual(maildb("SELECT partner_ref FROM api_keys WHERE token_hash = %s", (key.token_hash,)),
                         [(self.tenant.partner_ref,)])
        key.unlink()
        self.flush_queue()

    def _has_column(self, table, column):
        self.env.cr.execute("SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                            (table, column))
        return bool(self.env.cr.fetchone())

    def test_manager_without_admin_rights_manages_keys_and_tenants(self):
        manager = self.env["res.users"].create({
            "name": "Hosting manager", "login": "mgr-" + self.tenant.partner_ref,
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_manager").id])]})
        self.assertFalse(manager.has_group("base.group_system"))
        env = self.env(user=manager)
        tenant = env["emboux.tenant"].create({"name": "By a manager", "partner_id": self.partner.id})
        wiz = env["emboux.api.key.wizard"].create({"tenant_id": tenant.id, "name": "k"})
        token = wiz.action_generate()["context"]["emboux_show_token"]
        key = wiz.key_id
        key.write({"active": False})
        self.flush_queue()
        self.assertEqual(key.sudo().sync_state, "synced", key.sudo().sync_error)
        self.assertEqual(maildb("SELECT active FROM api_keys WHERE token_hash = %s",
                                (hashlib.sha256(token.encode()).hexdigest(),)), [(False,)])
        key.unlink()
        tenant.unlink()
        self.flush_queue()
