# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The back office's rough edges: reads without a language, Duplicate,
buttons on unsaved records, grouping, quotas of 0 and usage as people read
them."""

from lxml import etree

from odoo.exceptions import UserError

from .common import EmbouxCase


class TestBackOffice(EmbouxCase):

    def arch(self, model, view_type):
        return etree.fromstring(self.env[model].get_views([(False, view_type)])["views"][view_type]["arch"])

    def test_mailbox_read_with_all_fields_and_no_language(self):
        """An integrator's `read(ids)` over XML-RPC: no fields, no context.
        The client settings panel used to crash it (Odoo's module-level
        `_()` took a local named `user` for a user id)."""
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "rpc",
                                                 "password": "Passw0rd-rpc"})
        self.env.invalidate_all()
        bare = box.with_env(box.env(context={}))
        self.assertFalse(bare.env.lang)
        row = bare.read()[0]
        self.assertIn(box.email, row["client_settings"])
        self.assertIn("993", row["client_settings"])

    def test_archive_and_unarchive_answer_something_xmlrpc_can_send(self):
        """XML-RPC cannot marshal None: Odoo's own action_(un)archive return
        it, and the integrator's call failed (and was rolled back)."""
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "arc",
                                                 "password": "Passw0rd-arc"})
        self.assertIs(box.action_archive(), True)
        self.assertFalse(box.active)
        self.assertIs(box.action_unarchive(), True)
        self.assertTrue(box.active)
        self.assertIs(dom.action_archive(), True)
        self.assertIs(dom.action_unarchive(), True)

    def test_domains_and_mailboxes_are_not_duplicated(self):
        dom = self.new_domain()
        box = self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "dup",
                                                 "password": "Passw0rd-dup"})
        with self.assertRaisesRegex(UserError, "cannot be duplicated"):
            dom.copy()
        with self.assertRaisesRegex(UserError, "cannot be duplicated"):
            box.copy()
        for model in ("emboux.domain", "emboux.mailbox"):
            for view_type in ("form", "list"):
                self.assertEqual(self.arch(model, view_type).get("duplicate"), "0", (model, view_type))

    def test_retry_sync_is_not_offered_on_an_unsaved_record(self):
        for model in ("emboux.tenant", "emboux.domain", "emboux.mailbox", "emboux.alias", "emboux.api.key"):
            button = self.arch(model, "form").xpath("//button[@name='action_emboux_retry_sync']")[0]
            self.assertTrue(button.get("invisible").startswith("not id or"), model)

    def test_domain_kanban_is_not_grouped_by_default(self):
        self.assertIsNone(self.arch("emboux.domain", "kanban").get("default_group_by"))

    def test_usage_reads_used_of_allowed_and_zero_is_unlimited(self):
        tenant = self.tenant
        dom = self.new_domain()
        self.env["emboux.mailbox"].create({"domain_id": dom.id, "local_part": "u1", "password": "Passw0rd-u1",
                                          "quota_mb": 0})
        self.env.invalidate_all()
        self.assertEqual(tenant.domains_usage, f"{tenant.domains_used} / 20")
        self.assertEqual(tenant.mailboxes_usage, f"{tenant.mailboxes_used} / 5 per domain")
        self.assertEqual(dom.mailboxes_usage, "1 / 5")
        box = dom.mailbox_ids
        self.assertEqual(box.storage_usage, "0 MB / Unlimited")
        box.with_context(emboux_no_sync=True).write({"quota_mb": 512, "storage_used_mb": 12.5})
        self.assertEqual(box.storage_usage, "12.5 / 512 MB")
        tenant.with_context(emboux_no_sync=True).write({"domains_allowed": 0})
        self.assertEqual(tenant.domains_usage, f"{tenant.domains_used} / Unlimited")
        # the quota inputs say "Unlimited" beside a 0
        form = self.arch("emboux.tenant", "form")
        hint = form.xpath("//field[@name='domains_allowed']/following-sibling::span")[0]
        self.assertEqual((hint.text, hint.get("invisible")), ("Unlimited", "domains_allowed"))
