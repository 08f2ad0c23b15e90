# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..services import names


class EmbouxDomain(models.Model):
    _name = "emboux.domain"
    _description = "Email Hosting domain"
    _inherit = ["mail.thread", "mail.activity.mixin", "emboux.sync.mixin"]
    _order = "name"

    name = fields.Char("Domain", required=True, index=True, tracking=True,
                       help="Lower-case; international names are stored in their IDNA (xn--) form.")
    tenant_id = fields.Many2one("emboux.tenant", required=True, index=True, tracking=True, ondelete="restrict")
    partner_id = fields.Many2one(related="tenant_id.partner_id", store=True, string="Customer")
    company_id = fields.Many2one(related="tenant_id.company_id", store=True, index=True)
    active = fields.Boolean(default=True, tracking=True,
                            help="Archived: suspended on the mail platform (mail to the domain and its "
                                 "mailboxes' logins refused, nothing deleted; unarchive to resume, unless the "
                                 "domain is suspended here too). A domain deleted on the platform by someone "
                                 "else is archived too.")
    state = fields.Selection([("active", "Active"), ("suspended", "Suspended")], default="active",
                             required=True, tracking=True)
    retention_days = fields.Integer(default=0, tracking=True, help="Mail older than this is purged daily. 0 = keep.")
    transfer_monthly_mb = fields.Integer("Monthly transfer (MB)", default=0, tracking=True, help="0 = unlimited")
    remote_id = fields.Integer("Platform id", readonly=True, copy=False)
    mailbox_ids = fields.One2many("emboux.mailbox", "domain_id", string="Mailboxes")
    alias_ids = fields.One2many("emboux.alias", "domain_id", string="Aliases")
    mailbox_count = fields.Integer(compute="_compute_counts")
    alias_count = fields.Integer(compute="_compute_counts")

    _name_unique = models.Constraint("UNIQUE (name)", "This domain is already managed in Odoo.")
    _settings_positive = models.Constraint("CHECK (retention_days >= 0 AND transfer_monthly_mb >= 0)",
                                           "Retention and transfer cannot be negative (0 means no limit).")

    def _compute_counts(self):
        m = dict(self.env["emboux.mailbox"]._read_group([("domain_id", "in", self.ids)], ["domain_id"], ["__count"]))
        a = dict(self.env["emboux.alias"]._read_group([("domain_id", "in", self.ids)], ["domain_id"], ["__count"]))
        for d in self:
            d.mailbox_count, d.alias_count = m.get(d, 0), a.get(d, 0)

    def _emboux_lane(self):
        return f"partner:{self.tenant_id.partner_ref}"

    def _q(self):
        return self.env["emboux.connector"]._client().q(self.name)

    @api.model_create_multi
    def create(self, vals_list):
        sync = self._emboux_sync_enabled()
        for vals in vals_list:
            vals["name"] = self._emboux_check(names.domain_name, vals.get("name"))
        if sync:
            self._emboux_preflight(vals_list)
        domains = super().create(vals_list)
        if not sync:
            domains.with_context(emboux_no_sync=True).write({"sync_state": "synced"})
            return domains
        for dom in domains:
            dom._emboux_enqueue("domain.create", "POST", "/domains/",
                                {"name": dom.name, "partner_ref": dom.tenant_id.partner_ref})
            if dom._emboux_platform_suspended():
                dom._emboux_enqueue("domain.suspend", "PUT", f"/domains/{dom._q()}/suspend")
            if dom.retention_days:
                dom._emboux_enqueue("domain.retention", "PUT", f"/domains/{dom._q()}/retention",
                                    {"retention_days": dom.retention_days})
            if dom.transfer_monthly_mb:
                dom._emboux_enqueue("domain.transfer", "PUT", f"/domains/{dom._q()}/transfer",
                                    {"transfer_monthly_mb": dom.transfer_monthly_mb})
        return domains

    def _emboux_preflight(self, vals_list):
        """Refuse now what the connector would refuse after commit."""
        Tenant = self.env["emboux.tenant"]
        new_per_tenant = {}
        for vals in vals_list:
            new_per_tenant[vals.get("tenant_id")] = new_per_tenant.get(vals.get("tenant_id"), 0) + 1
            if self.with_context(active_test=False).search_count([("name", "=", vals["name"])]):
                raise UserError(_("The domain %s is already managed in Odoo.", vals["name"]))
        for tenant_id, n in new_per_tenant.items():
            tenant = Tenant.browse(tenant_id).sudo()
            used = self.sudo().with_context(active_test=False).search_count([("tenant_id", "=", tenant.id)])
            if tenant.domains_allowed:
                # domains the tenant made through the API and Odoo has not pulled yet count too
                # (None: unknown partner, or unreachable now: the queue will tell later)
                usage = tenant._emboux_remote_usage() or {}
                used = max(used, int((usage.get("counts") or {}).get("domains") or 0))
            if tenant.domains_allowed and used + n > tenant.domains_allowed:
                raise UserError(_("%(tenant)s may host %(allowed)s domain(s) and already has %(used)s: "
                                  "raise the tenant's domain quota first.",
                                  tenant=tenant.name, allowed=tenant.domains_allowed, used=used))
        client = self.env["emboux.connector"]._client()
        for vals in vals_list:
            if self._emboux_lookup_remote(f"/domains/{client.q(vals['name'])}"):
                raise UserError(_("The domain %s is already hosted on the mail platform (created outside "
                                  "this Odoo, or by another customer).", vals["name"]))

    def write(self, vals):
        sync = self._emboux_sync_enabled()
        if "name" in vals:
            new = self._emboux_check(names.domain_name, vals["name"])
            for dom in self:
                if new != dom.name:
                    raise UserError(_("A domain cannot be renamed: create the new domain, then delete %s.",
                                      dom.name))
            vals = {k: v for k, v in vals.items() if k != "name"}
        old_tenant = {d.id: d.tenant_id for d in self}
        old_active = {d.id: d.active for d in self}
        res = super().write(vals)
        if not sync:
            return res
        for dom in self:
            if "tenant_id" in vals and old_tenant[dom.id] != dom.tenant_id:
                dom._emboux_enqueue("domain.owner", "PUT", f"/domains/{dom._q()}/owner",
                                    {"partner_ref": dom.tenant_id.partner_ref})
            if "state" in vals or dom.active != old_active[dom.id]:
                verb = "suspend" if dom._emboux_platform_suspended() else "activate"
                dom._emboux_enqueue(f"domain.{verb}", "PUT", f"/domains/{dom._q()}/{verb}")
            if "retention_days" in vals:
                dom._emboux_enqueue("domain.retention", "PUT", f"/domains/{dom._q()}/retention",
                                    {"retention_days": dom.retention_days})
            if "transfer_monthly_mb" in vals:
                dom._emboux_enqueue("domain.transfer", "PUT", f"/domains/{dom._q()}/transfer",
                                    {"transfer_monthly_mb": dom.transfer_monthly_mb})
        return res

    def unlink(self):
        if self._emboux_sync_enabled():
            for dom in self:
                dom._emboux_enqueue("domain.delete", "DELETE", f"/domains/{dom._q()}")
        return super().unlink()

    def _emboux_platform_suspended(self):
        """Archived is suspended on the platform too (a real disable, reversible):
        mail refused, logins refused, nothing deleted."""
        return self.state == "suspended" or not self.active

    def _emboux_job_done(self, job, result):
        if job.kind == "domain.create" and isinstance(result, dict) and result.get("id"):
            self.with_context(emboux_no_sync=True).sudo().write({"remote_id": result["id"]})

    def action_suspend(self):
        self.filtered(lambda d: d.state != "suspended").write({"state": "suspended"})
        return True

    def action_activate(self):
        self.filtered(lambda d: d.state != "active").write({"state": "active"})
        return True

    def action_view_mailboxes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": _("Mailboxes of %s", self.name),
            "res_model": "emboux.mailbox", "view_mode": "list,kanban,form",
            "domain": [("domain_id", "=", self.id)], "context": {"default_domain_id": self.id},
        }

    def action_view_aliases(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": _("Aliases of %s", self.name),
            "res_model": "emboux.alias", "view_mode": "list,form",
            "domain": [("domain_id", "=", self.id)], "context": {"default_domain_id": self.id},
        }
