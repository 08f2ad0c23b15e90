# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import os
import re
import secrets

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import names, usage
from ..services.connector_client import ConnectorError

QUOTA_FIELDS = ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox", "alias_external_destinations")


class EmbouxTenant(models.Model):
    """A customer of the email platform (a `partner_ref` in the connector)."""

    _name = "emboux.tenant"
    _description = "Email Hosting tenant"
    _inherit = ["mail.thread", "mail.activity.mixin", "emboux.sync.mixin"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    partner_id = fields.Many2one("res.partner", string="Customer", required=True, tracking=True, index=True)
    partner_ref = fields.Char(
        "Platform reference", copy=False, index=True, tracking=True,
        help="The tenant's identifier on the mail platform (partner_ref). Generated when left empty.")
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    domains_allowed = fields.Integer(default=0, tracking=True, help="0 = unlimited")
    mailboxes_per_domain = fields.Integer(default=10, tracking=True, help="0 = unlimited")
    aliases_per_mailbox = fields.Integer(default=5, tracking=True, help="0 = unlimited")
    alias_external_destinations = fields.Integer(
        "Outside destinations per alias", default=10, tracking=True,
        help="Most addresses outside the platform one alias may forward to; each forwarded copy counts "
             "against the domain's outbound limits. 0 = unlimited.")
    default_quota_mb = fields.Integer("Default storage per mailbox (MB)", default=1024, tracking=True)
    domain_ids = fields.One2many("emboux.domain", "tenant_id", string="Domains")
    api_key_ids = fields.One2many("emboux.api.key", "tenant_id", string="API keys")
    domains_used = fields.Integer(compute="_compute_usage")
    mailboxes_used = fields.Integer(compute="_compute_usage")
    aliases_used = fields.Integer(compute="_compute_usage")
    # "used / allowed" as shown to people (a quota of 0 reads "Unlimited")
    domains_usage = fields.Char("Domains", compute="_compute_usage")
    mailboxes_usage = fields.Char("Mailboxes", compute="_compute_usage")
    aliases_usage = fields.Char("Aliases", compute="_compute_usage")

    _partner_ref_unique = models.Constraint("UNIQUE (partner_ref)",
                                            "Another tenant already uses this platform reference.")
    _quotas_positive = models.Constraint(
        "CHECK (domains_allowed >= 0 AND mailboxes_per_domain >= 0 AND aliases_per_mailbox >= 0 "
        "AND default_quota_mb >= 0)", "Quotas cannot be negative (0 means unlimited).")
    _alias_external_destinations_positive = models.Constraint(
        "CHECK (alias_external_destinations >= 0)", "Quotas cannot be negative (0 means unlimited).")

    @api.depends("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox")
    def _compute_usage(self):
        Domain, Mailbox, Alias = self.env["emboux.domain"], self.env["emboux.mailbox"], self.env["emboux.alias"]
        d = dict(Domain._read_group([("tenant_id", "in", self.ids)], ["tenant_id"], ["__count"]))
        m = dict(Mailbox._read_group([("tenant_id", "in", self.ids)], ["tenant_id"], ["__count"]))
        a = dict(Alias._read_group([("tenant_id", "in", self.ids)], ["tenant_id"], ["__count"]))
        unlimited = self.env._("Unlimited")
        for t in self:
            t.domains_used, t.mailboxes_used, t.aliases_used = d.get(t, 0), m.get(t, 0), a.get(t, 0)
            t.domains_usage = usage.used_of(t.domains_used, t.domains_allowed, unlimited)
            t.mailboxes_usage = usage.used_of(t.mailboxes_used, t.mailboxes_per_domain, unlimited,
                                              per=self.env._("per domain"))
            t.aliases_usage = usage.used_of(t.aliases_used, t.aliases_per_mailbox, unlimited,
                                            per=self.env._("per mailbox"))

    def _emboux_lane(self):
        return f"partner:{self.partner_ref}"

    @api.model
    def _generate_partner_ref(self, name):
        slug = re.sub(r"[^a-z0-9]+", "-", (name or "tenant").lower()).strip("-")[:40] or "tenant"
        return f"{slug}-{secrets.token_hex(3)}"

    def _quota_payload(self):
        return {f: self[f] for f in QUOTA_FIELDS}

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            ref = (vals.get("partner_ref") or "").strip() or self._generate_partner_ref(vals.get("name"))
            if not names.PARTNER_REF.match(ref):
                raise UserError(self.env._("“%s” cannot be used as a platform reference: use letters, digits "
                                  "and . _ : @ - (at most 128 characters).", ref))
            vals["partner_ref"] = ref
        tenants = super().create(vals_list)
        if self._emboux_sync_enabled():
            for tenant in tenants:
                tenant._emboux_push_quotas(create=True)
        else:
            tenants.with_context(emboux_no_sync=True).write({"sync_state": "synced"})
        return tenants

    def write(self, vals):
        if "partner_ref" in vals and any(t.partner_ref != vals["partner_ref"] for t in self) \
                and self._emboux_sync_enabled():
            raise UserError(self.env._("The platform reference of a tenant cannot be changed once created."))
        res = super().write(vals)
        if self._emboux_sync_enabled() and any(f in vals for f in QUOTA_FIELDS):
            for tenant in self:
                tenant._emboux_push_quotas()
        return res

    def _emboux_push_quotas(self, create=False):
        """The partner and its quotas on the connector: `PUT /partners/{ref}`
        creates it if missing (an upsert: harmless when replayed)."""
        self.ensure_one()
        self._emboux_sync("tenant.quotas", **self._quota_payload())

    def _emboux_target(self):
        return {"ref": self.partner_ref}

    def _q_ref(self):
        return self.env["emboux.connector"]._client().q(self.partner_ref)

    def _emboux_remote_usage(self):
        """`GET /partners/{ref}` (quotas, usage counts, API keys), or None when
        the connector does not know the partner or cannot be asked now."""
        self.ensure_one()
        try:
            return self.env["emboux.connector"]._client().call("GET", f"/partners/{self._q_ref()}")
        except ConnectorError:
            return None

    @api.ondelete(at_uninstall=False)
    def _unlink_except_with_domains(self):
        if self.domain_ids:
            raise UserError(self.env._("Delete or move the domains of %s first.", ", ".join(self.mapped("name"))))

    def unlink(self):
        if self._emboux_sync_enabled():
            for tenant in self.sudo():
                tenant.with_context(active_test=False).api_key_ids._emboux_enqueue_delete()
        return super().unlink()

    def action_view_domains(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": self.env._("Domains"), "res_model": "emboux.domain",
            "view_mode": "list,kanban,form", "domain": [("tenant_id", "=", self.id)],
            "context": {"default_tenant_id": self.id},
        }

    def action_view_mailboxes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": self.env._("Mailboxes"), "res_model": "emboux.mailbox",
            "view_mode": "list,kanban,form", "domain": [("tenant_id", "=", self.id)],
        }

    @api.model
    def _emboux_dev_demo(self):
        """The demo tenant/domain/mailbox of `./dev up` (idempotent)."""
        tenant = self.search([("partner_ref", "=", "demo")], limit=1)
        if not tenant:
            partner = self.env["res.partner"].create({"name": "Demo Customer", "is_company": True})
            tenant = self.create({"name": "Demo Customer", "partner_id": partner.id, "partner_ref": "demo",
                                  "domains_allowed": 5, "mailboxes_per_domain": 50})
        domain = self.env["emboux.domain"].search([("name", "=", "demo.emboux.test")], limit=1)
        if not domain:
            domain = self.env["emboux.domain"].create({"name": "demo.emboux.test", "tenant_id": tenant.id})
        if domain.ownership not in ("verified", "vouched"):
            # nobody can publish a TXT record for it: the operator vouches (recorded)
            domain.action_vouch_ownership()
        if not self.env["emboux.mailbox"].search([("domain_id", "=", domain.id), ("local_part", "=", "info")]):
            password = os.environ.get("EMBOUX_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            self.env["emboux.mailbox"].create({"domain_id": domain.id, "local_part": "info",
                                               "password": password, "catch_all": True})
        return tenant
