# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from datetime import datetime, timezone

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..services import names, usage
from ..services.connector_client import ConnectorError
from .emboux_domain_outbound import OUTBOUND_SETTINGS


class EmbouxDomain(models.Model):
    _name = "emboux.domain"
    _description = "Email Hosting domain"
    _inherit = ["mail.thread", "mail.activity.mixin", "emboux.sync.mixin", "emboux.domain.outbound",
                "emboux.domain.identity", "emboux.domain.subdomain", "emboux.domain.spam"]
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
    mailboxes_usage = fields.Char("Mailboxes", compute="_compute_counts",
                                  help="Mailboxes / the tenant's quota per domain.")
    alias_count = fields.Integer(compute="_compute_counts")
    # Ownership (docs/domain-ownership.md): the platform routes no mail for a
    # domain until its owner proved control of its DNS or a manager vouched.
    ownership = fields.Selection(
        [("pending", "Waiting for proof"), ("verified", "Verified (DNS)"), ("vouched", "Vouched for")],
        readonly=True, copy=False, tracking=True,
        help="Waiting for proof: the mail platform delivers nothing to this domain and its mailboxes cannot "
             "log in until the TXT record below is published in the domain's DNS (then Check ownership), or "
             "a manager vouches for it. Empty: not known yet (created before ownership checks existed, or "
             "not sent to the platform yet).")
    ownership_record_name = fields.Char("TXT record name", readonly=True, copy=False)
    ownership_record_value = fields.Char("TXT record value", readonly=True, copy=False)
    ownership_method = fields.Char("Proved by", readonly=True, copy=False,
                                   help="dns_txt, parent (a wildcard parent's), operator, transfer, grandfathered")
    ownership_by = fields.Char("Proved or vouched by", readonly=True, copy=False)
    ownership_at = fields.Datetime("Ownership since", readonly=True, copy=False)

    _name_unique = models.Constraint("UNIQUE (name)", "This domain is already managed in Odoo.")
    _settings_positive = models.Constraint("CHECK (retention_days >= 0 AND transfer_monthly_mb >= 0)",
                                           "Retention and transfer cannot be negative (0 means no limit).")

    def _compute_counts(self):
        m = dict(self.env["emboux.mailbox"]._read_group([("domain_id", "in", self.ids)], ["domain_id"], ["__count"]))
        a = dict(self.env["emboux.alias"]._read_group([("domain_id", "in", self.ids)], ["domain_id"], ["__count"]))
        unlimited = self.env._("Unlimited")
        for d in self:
            d.mailbox_count, d.alias_count = m.get(d, 0), a.get(d, 0)
            d.mailboxes_usage = usage.used_of(d.mailbox_count, d.tenant_id.mailboxes_per_domain, unlimited)

    def copy_data(self, default=None):
        # Duplicate would only fail later on the unique name: say why at once
        raise UserError(self.env._("A domain cannot be duplicated: a domain name is unique; create a new domain."))

    def _emboux_lane(self):
        return f"partner:{self.tenant_id.partner_ref}"

    def _emboux_target(self):
        return {"name": self.name}

    def _q(self):
        return self.env["emboux.connector"]._client().q(self.name)

    @api.model_create_multi
    def create(self, vals_list):
        sync = self._emboux_sync_enabled()
        for vals in vals_list:
            vals["name"] = self._emboux_check(names.domain_name, vals.get("name"))
            self._emboux_check_outbound_vals(vals, creating=True)
            self._emboux_check_identity_vals(vals)
        self._emboux_link_parents(vals_list)
        if sync:
            self._emboux_preflight(vals_list)
        domains = super().create(vals_list)
        if not sync:
            domains.with_context(emboux_no_sync=True).write({"sync_state": "synced"})
            return domains
        for dom in domains:
            # Odoo creates with the master token, which the platform takes as the
            # operator vouching -- but the customer typed the name (a portal will
            # too): ask for the DNS proof; a manager may vouch explicitly.
            dom.with_context(emboux_no_sync=True).sudo().write({"ownership": "pending"})
            dom._emboux_sync("domain.create", name=dom.name, partner_ref=dom.tenant_id.partner_ref)
            dom._emboux_sync_subdomain_created()
            if dom._emboux_platform_suspended():
                dom._emboux_sync("domain.suspend")
            if dom.retention_days:
                dom._emboux_sync("domain.retention", retention_days=dom.retention_days)
            if dom.transfer_monthly_mb:
                dom._emboux_sync("domain.transfer", transfer_monthly_mb=dom.transfer_monthly_mb)
        for dom, vals in zip(domains, vals_list):
            dom._emboux_sync_outbound(self._emboux_outbound_non_defaults(vals))
            if vals.get("dkim_rotation_days"):
                dom._emboux_sync_identity(vals)
            dom._emboux_sync_spam_created(vals)
        return domains

    def _emboux_preflight(self, vals_list):
        """Refuse now what the connector would refuse after commit."""
        Tenant = self.env["emboux.tenant"]
        new_per_tenant = {}
        for vals in vals_list:
            new_per_tenant[vals.get("tenant_id")] = new_per_tenant.get(vals.get("tenant_id"), 0) + 1
            if self.with_context(active_test=False).search_count([("name", "=", vals["name"])]):
                raise UserError(self.env._("The domain %s is already managed in Odoo.", vals["name"]))
        for tenant_id, n in new_per_tenant.items():
            tenant = Tenant.browse(tenant_id).sudo()
            used = self.sudo().with_context(active_test=False).search_count([("tenant_id", "=", tenant.id)])
            if tenant.domains_allowed:
                # domains the tenant made through the API and Odoo has not pulled yet count too
                # (None: unknown partner, or unreachable now: the queue will tell later)
                usage = tenant._emboux_remote_usage() or {}
                used = max(used, int((usage.get("counts") or {}).get("domains") or 0))
            if tenant.domains_allowed and used + n > tenant.domains_allowed:
                raise UserError(self.env._("%(tenant)s may host %(allowed)s domain(s) and already has %(used)s: "
                                  "raise the tenant's domain quota first.",
                                  tenant=tenant.name, allowed=tenant.domains_allowed, used=used))
        client = self.env["emboux.connector"]._client()
        for vals in vals_list:
            if self._emboux_lookup_remote(f"/domains/{client.q(vals['name'])}"):
                raise UserError(self.env._("The domain %s is already hosted on the mail platform (created outside "
                                  "this Odoo, or by another customer).", vals["name"]))

    def write(self, vals):
        sync = self._emboux_sync_enabled()
        if "name" in vals:
            new = self._emboux_check(names.domain_name, vals["name"])
            for dom in self:
                if new != dom.name:
                    raise UserError(self.env._("A domain cannot be renamed: create the new domain, then delete %s.",
                                      dom.name))
            vals = {k: v for k, v in vals.items() if k != "name"}
        self._emboux_check_outbound_vals(vals)
        self._emboux_check_identity_vals(vals)
        self._emboux_check_parent_write(vals)
        old_parent = {d.id: d.parent_id for d in self}
        old_tenant = {d.id: d.tenant_id for d in self}
        old_active = {d.id: d.active for d in self}
        res = super().write(vals)
        if not sync:
            return res
        for dom in self:
            if "tenant_id" in vals and old_tenant[dom.id] != dom.tenant_id:
                dom._emboux_sync("domain.owner", partner_ref=dom.tenant_id.partner_ref)
            if "state" in vals or dom.active != old_active[dom.id]:
                dom._emboux_sync("domain.suspend" if dom._emboux_platform_suspended() else "domain.activate")
            if "retention_days" in vals:
                dom._emboux_sync("domain.retention", retention_days=dom.retention_days)
            if "transfer_monthly_mb" in vals:
                dom._emboux_sync("domain.transfer", transfer_monthly_mb=dom.transfer_monthly_mb)
        self._emboux_sync_outbound([f for f in OUTBOUND_SETTINGS if f in vals])
        self._emboux_sync_identity(vals)
        self._emboux_sync_subdomain_written(vals, old_parent)
        return res

    def unlink(self):
        self._emboux_check_unlink_children()
        if self._emboux_sync_enabled():
            for dom in self:
                dom._emboux_sync("domain.delete")
        return super().unlink()

    def _emboux_platform_suspended(self):
        """Archived is suspended on the platform too (a real disable, reversible):
        mail refused, logins refused, nothing deleted."""
        return self.state == "suspended" or not self.active

    def _emboux_job_done(self, job, result):
        if job.kind == "domain.create" and isinstance(result, dict) and result.get("id"):
            self.with_context(emboux_no_sync=True).sudo().write({"remote_id": result["id"]})
        if job.kind in ("domain.create", "domain.vouch"):
            self._emboux_store_ownership(result)
        if job.kind == "domain.outbound":
            self._emboux_store_outbound(result)
        if job.kind == "domain.dkim" and isinstance(result, dict):
            self._emboux_store_dkim(result)
        if job.kind == "domain.spam":
            self._emboux_store_spam(result)
        self._emboux_subdomain_job_done(job, result)

    # --- ownership ---------------------------------------------------------------
    def _emboux_store_ownership(self, result):
        """Keep the platform's ownership fields (a domain's JSON, or the
        ownership endpoints' answer) on the record."""
        if not isinstance(result, dict) or not result.get("ownership"):
            return
        record = result.get("ownership_record") or {}
        at = result.get("ownership_at")
        vals = {"ownership": result["ownership"],
                "ownership_record_name": record.get("name") or False,
                "ownership_record_value": record.get("value") or False,
                "ownership_method": result.get("ownership_method") or False,
                "ownership_by": result.get("ownership_by") or False,
                "ownership_at": (datetime.fromisoformat(at).astimezone(timezone.utc).replace(tzinfo=None)
                                 if at else False)}
        changed = {k: v for k, v in vals.items() if self[k] != v}
        if changed:
            self.with_context(emboux_no_sync=True).sudo().write(changed)

    def action_check_ownership(self):
        """Ask the platform to look the TXT record up now (a read and a proof,
        idempotent: sent at once, not queued)."""
        client = self.env["emboux.connector"]._client()
        messages = []
        for dom in self:
            try:
                result = client.call("POST", f"/domains/{dom._q()}/ownership/check")
            except ConnectorError as exc:
                raise UserError(self.env._("Ownership of %(name)s could not be checked: %(error)s",
                                  name=dom.name, error=str(exc))) from None
            dom._emboux_store_ownership(result)
            messages.append(f"{dom.name}: {dict(dom._fields['ownership'].selection).get(dom.ownership)}"
                            + ("" if dom.ownership != "pending" else f" ({result.get('detail')})"))
        return {"type": "ir.actions.client", "tag": "display_notification",
                "params": {"title": self.env._("Ownership check"), "message": "\n".join(messages), "sticky": False,
                           "type": "success" if all(d.ownership != "pending" for d in self) else "warning",
                           "next": {"type": "ir.actions.client", "tag": "soft_reload"}}}

    def action_vouch_ownership(self):
        """A manager says the customer owns the domain: the platform routes it
        at once. Explicit, and recorded here (chatter) and on the platform."""
        if not self.env.user.has_group("emboux_core.group_emboux_manager"):
            raise AccessError(self.env._("Only an Email Hosting administrator may vouch for a domain's ownership."))
        user = self.env.user
        for dom in self.filtered(lambda d: d.ownership not in ("verified", "vouched")):
            dom._emboux_sync("domain.vouch", vouched_by=f"{user.name} ({user.login})")
            dom.message_post(body=self.env._("%(user)s vouched for the ownership of %(name)s: the mail platform "
                                    "routes its mail without a DNS proof.", user=user.name, name=dom.name))
        return True

    def action_suspend(self):
        self.filtered(lambda d: d.state != "suspended").write({"state": "suspended"})
        return True

    def action_activate(self):
        self.filtered(lambda d: d.state != "active").write({"state": "active"})
        return True

    def action_view_mailboxes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": self.env._("Mailboxes of %s", self.name),
            "res_model": "emboux.mailbox", "view_mode": "list,kanban,form",
            "domain": [("domain_id", "=", self.id)], "context": {"default_domain_id": self.id},
        }

    def action_view_aliases(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": self.env._("Aliases of %s", self.name),
            "res_model": "emboux.alias", "view_mode": "list,form",
            "domain": [("domain_id", "=", self.id)], "context": {"default_domain_id": self.id},
        }
