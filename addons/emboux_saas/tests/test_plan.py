# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A tenant's plan reaches the platform: the partner's quotas and each
domain's outbound settings, again when the plan or the plan's values change."""

from odoo.exceptions import UserError

from .common import SaasCase


class TestPlan(SaasCase):

    def assertPlanApplied(self, tenant, plan, domains):
        remote = self.remote_partner(tenant)
        for f in ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox"):
            self.assertEqual(remote[f], plan[f], f)
            self.assertEqual(tenant[f], plan[f], f)
        self.assertEqual(tenant.default_quota_mb, plan.storage_mb)
        for dom in domains:
            out = self.remote_outbound(dom)
            self.assertEqual(out["outbound_tier"], plan.outbound_tier, dom.name)
            self.assertEqual(out["outbound_daily_limit"], plan.outbound_daily_limit)
            self.assertEqual(out["outbound_monthly_limit"], plan.outbound_monthly_limit)
            self.assertEqual(out["outbound_enforcement"], plan.outbound_enforcement)
            self.assertEqual(out["warmup_profile"], plan.warmup_profile or None)

    def test_plan_pushed_on_create_and_on_new_domain(self):
        tenant = self.new_tenant(self.plan_small)
        self.flush_queue()
        self.assertEqual(tenant.sync_state, "synced", tenant.sync_error)
        d1, d2 = self.new_domain(tenant), self.new_domain(tenant)
        self.flush_queue()
        self.assertEqual((d1 | d2).mapped("sync_state"), ["synced", "synced"], (d1 | d2).mapped("sync_error"))
        self.assertPlanApplied(tenant, self.plan_small, d1 | d2)

    def test_plan_change_reapplied(self):
        tenant = self.new_tenant(self.plan_small)
        dom = self.new_domain(tenant)
        self.flush_queue()
        self.assertPlanApplied(tenant, self.plan_small, dom)
        tenant.plan_id = self.plan_big                     # upgrade
        self.flush_queue()
        self.assertPlanApplied(tenant, self.plan_big, dom)
        tenant.plan_id = self.plan_small                   # and back down
        self.flush_queue()
        self.assertPlanApplied(tenant, self.plan_small, dom)

    def test_plan_edit_reaches_every_tenant(self):
        plan = self.plan_small.copy({"name": "Small copy"})
        t1, t2 = self.new_tenant(plan), self.new_tenant(plan)
        d1, d2 = self.new_domain(t1), self.new_domain(t2)
        self.flush_queue()
        plan.write({"outbound_daily_limit": 123, "mailboxes_per_domain": 7, "outbound_enforcement": "soft"})
        self.flush_queue()
        self.assertPlanApplied(t1, plan, d1)
        self.assertPlanApplied(t2, plan, d2)
        self.assertEqual(self.remote_outbound(d1)["outbound_daily_limit"], 123)

    def test_tenant_without_plan_untouched(self):
        tenant = self.new_tenant(domains_allowed=9)
        dom = self.new_domain(tenant)
        self.flush_queue()
        self.assertFalse(self.env["emboux.sync.job"].search(
            [("res_model", "=", "emboux.domain"), ("res_id", "=", dom.id), ("kind", "=", "domain.outbound")]))
        self.assertEqual(self.remote_partner(tenant)["domains_allowed"], 9)

    def test_negative_quotas_refused_nothing_saved(self):
        Plan = self.env["emboux.plan"]
        before = Plan.search_count([])
        for field in ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox", "storage_mb",
                      "outbound_daily_limit", "outbound_monthly_limit"):
            with self.assertRaisesRegex(UserError, "cannot be negative"):
                Plan.create({"name": "Bad", field: -1})
        self.assertEqual(Plan.search_count([]), before)
        tenant = self.new_tenant(self.plan_small)
        self.flush_queue()
        jobs = self.env["emboux.sync.job"].search_count([])
        with self.assertRaisesRegex(UserError, "cannot be negative"):
            self.plan_small.write({"mailboxes_per_domain": -5})
        self.assertEqual(self.plan_small.mailboxes_per_domain, 4)
        self.assertEqual(self.env["emboux.sync.job"].search_count([]), jobs, "nothing queued")
        self.assertEqual(self.remote_partner(tenant)["mailboxes_per_domain"], 4)

    def test_plan_access(self):
        user = self.env["res.users"].create({
            "name": "Hosting user", "login": self.tenant.partner_ref + "-u",
            "group_ids": [(6, 0, [self.env.ref("emboux_core.group_emboux_user").id])]})
        self.assertTrue(self.plan_small.with_user(user).read(["name"]))
        from odoo.exceptions import AccessError
        with self.assertRaises(AccessError):
            self.plan_small.with_user(user).write({"storage_mb": 1})
