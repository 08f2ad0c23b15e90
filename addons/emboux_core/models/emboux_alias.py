# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import names


class EmbouxAlias(models.Model):
    _name = "emboux.alias"
    _description = "Email Hosting alias (or catch-all)"
    _inherit = ["mail.thread", "emboux.sync.mixin"]
    _order = "source"
    _rec_name = "source"

    domain_id = fields.Many2one("emboux.domain", required=True, index=True, ondelete="cascade", tracking=True)
    tenant_id = fields.Many2one(related="domain_id.tenant_id", store=True, index=True, string="Tenant")
    company_id = fields.Many2one(related="domain_id.company_id", store=True, index=True)
    source = fields.Char(required=True, index=True, tracking=True,
                         help="The address that forwards, e.g. sales@example.com, or @example.com for a catch-all.")
    destinations = fields.Char(required=True, tracking=True,
                               help="Where mail goes: one or more addresses, separated by commas.")
    is_catch_all = fields.Boolean("Catch-all", compute="_compute_is_catch_all", store=True)
    mailbox_id = fields.Many2one("emboux.mailbox", string="Catch-all of mailbox", ondelete="set null",
                                 readonly=True, index=True)
    active = fields.Boolean(default=True)

    _source_unique = models.Constraint("UNIQUE (source)", "This address already has an alias in Odoo.")

    @api.depends("source")
    def _compute_is_catch_all(self):
        for alias in self:
            alias.is_catch_all = bool(alias.source and alias.source.startswith("@"))

    def _emboux_lane(self):
        return f"partner:{self.domain_id.tenant_id.partner_ref}"

    def _emboux_target(self):
        return {"source": self.source}

    def _q(self):
        return self.env["emboux.connector"]._client().q(self.source)

    @api.model
    def _normalise(self, vals, domain):
        source = (vals.get("source") or "").strip().lower()
        if not source:
            raise UserError(self.env._("The alias address is required."))
        if source.startswith("@"):
            source = "@" + self._emboux_check(names.domain_name, source[1:])
        else:
            if "@" not in source:
                source = f"{source}@{domain.name}"
            source = self._emboux_check(names.address, source)
        if source.partition("@")[2] != domain.name:
            raise UserError(self.env._("The alias %(address)s must end with @%(domain)s.", address=source, domain=domain.name))
        dests = []
        for part in (vals.get("destinations") or "").replace(";", ",").split(","):
            if part.strip():
                d = self._emboux_check(names.address, part)
                if d not in dests:
                    dests.append(d)
        if not dests:
            raise UserError(self.env._("Give at least one destination address for %s.", source))
        return source, ",".join(dests)

    @api.model_create_multi
    def create(self, vals_list):
        sync = self._emboux_sync_enabled()
        Domain = self.env["emboux.domain"]
        for vals in vals_list:
            dom = Domain.browse(vals.get("domain_id"))
            if not dom.exists():
                raise UserError(self.env._("Choose the domain of the alias."))
            vals["source"], vals["destinations"] = self._normalise(vals, dom)
        if sync:
            self._emboux_preflight(vals_list)
        aliases = super().create(vals_list)
        if not sync:
            aliases.with_context(emboux_no_sync=True).write({"sync_state": "synced"})
            return aliases
        for alias in aliases:
            alias._emboux_push()
        return aliases

    def _emboux_push(self):
        self._emboux_sync("alias.upsert", domain_name=self.domain_id.name, source=self.source,
                          destination=self.destinations)

    def _emboux_preflight(self, vals_list):
        Domain = self.env["emboux.domain"]
        Mailbox = self.env["emboux.mailbox"].with_context(active_test=False)
        per_domain = {}
        for vals in vals_list:
            if self.with_context(active_test=False).search_count([("source", "=", vals["source"])]):
                raise UserError(self.env._("%s already has an alias.", vals["source"]))
            if Mailbox.search_count([("email", "=", vals["source"])]):
                raise UserError(self.env._("%s is a mailbox: an alias cannot use the same address.", vals["source"]))
            per_domain[vals["domain_id"]] = per_domain.get(vals["domain_id"], 0) + 1
        for dom_id, n in per_domain.items():
            dom = Domain.browse(dom_id)
            tenant = dom.tenant_id.sudo()
            if tenant.aliases_per_mailbox:
                allowed = tenant.aliases_per_mailbox * max(1, Mailbox.search_count([("domain_id", "=", dom.id)]))
                used = self.with_context(active_test=False).search_count([("domain_id", "=", dom.id)])
                if used + n > allowed:
                    raise UserError(self.env._("%(domain)s may have %(allowed)s alias(es) and already has %(used)s: "
                                      "raise the alias quota of %(tenant)s or add mailboxes first.",
                                      domain=dom.name, allowed=allowed, used=used, tenant=tenant.name))
        client = self.env["emboux.connector"]._client()
        for vals in vals_list:
            if self._emboux_lookup_remote(f"/aliases/{client.q(vals['source'])}"):
                raise UserError(self.env._("%s already forwards somewhere on the mail platform (created outside "
                                  "this Odoo).", vals["source"]))

    def write(self, vals):
        sync = self._emboux_sync_enabled()
        vals = dict(vals)
        if "domain_id" in vals and any(a.domain_id.id != vals["domain_id"] for a in self):
            raise UserError(self.env._("An alias cannot move to another domain: create a new one."))
        if "source" in vals or "destinations" in vals:
            for alias in self:
                src, dests = self._normalise({"source": vals.get("source", alias.source),
                                              "destinations": vals.get("destinations", alias.destinations)},
                                             alias.domain_id)
                if src != alias.source:
                    raise UserError(self.env._("The address of an alias cannot change: create a new alias, then "
                                      "delete %s.", alias.source))
                if len(self) == 1:
                    vals["destinations"] = dests
            vals.pop("source", None)
        res = super().write(vals)
        if sync and "destinations" in vals:
            for alias in self:
                alias._emboux_push()
        return res

    def unlink(self):
        if self._emboux_sync_enabled():
            for alias in self:
                alias._emboux_sync("alias.delete")
            boxes = self.mapped("mailbox_id").filtered("catch_all")
            if boxes:
                boxes.with_context(emboux_no_sync=True).write({"catch_all": False})
        return super().unlink()
