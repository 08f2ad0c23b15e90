# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Shared helpers of the emboux_saas tests: the real connector and mail DB
of the dev stack, as in emboux_core's tests."""

from odoo.addons.emboux_core.tests.common import (  # noqa: F401
    MAILDB_DSN, EmbouxCase, api, maildb, uniq)


class SaasCase(EmbouxCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan_small = cls.env["emboux.plan"].create({
            "name": "Small", "domains_allowed": 3, "mailboxes_per_domain": 4, "aliases_per_mailbox": 2,
            "storage_mb": 512, "outbound_tier": "shared", "outbound_daily_limit": 300,
            "outbound_monthly_limit": 5000, "outbound_enforcement": "hard", "warmup_profile": "conservative"})
        cls.plan_big = cls.env["emboux.plan"].create({
            "name": "Big", "domains_allowed": 30, "mailboxes_per_domain": 40, "aliases_per_mailbox": 20,
            "storage_mb": 4096, "outbound_tier": "dedicated", "outbound_daily_limit": 9000,
            "outbound_monthly_limit": 200000, "outbound_enforcement": "soft", "warmup_profile": False})

    def new_tenant(self, plan=None, **kw):
        partner = self.env["res.partner"].create({"name": uniq("Customer "), "is_company": True,
                                                  "email": f"{uniq('billing')}@example.com"})
        vals = {"name": partner.name, "partner_id": partner.id, "partner_ref": uniq("t-")}
        if plan:
            vals["plan_id"] = plan.id
        vals.update(kw)
        return self.env["emboux.tenant"].create(vals)

    def portal_user(self, tenant):
        """A portal user (a contact of the tenant's company)."""
        contact = self.env["res.partner"].create({"name": uniq("Contact "), "parent_id": tenant.partner_id.id,
                                                  "email": f"{uniq('c')}@example.com"})
        return self.env["res.users"].with_context(no_reset_password=True).create({
            "name": contact.name, "login": contact.email, "partner_id": contact.id,
            "group_ids": [(6, 0, [self.env.ref("base.group_portal").id])]})

    def remote_partner(self, tenant):
        r = api("GET", f"/partners/{tenant.partner_ref}")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def remote_outbound(self, domain):
        r = api("GET", f"/domains/{domain.name}/outbound")
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()
