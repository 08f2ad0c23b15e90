# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""SaaS subdomains (seed changelog v5.3): a wildcard parent (e.g. a SaaS
platform's `app.example.com`) whose customer subdomains
(`shop1.app.example.com`) are created in Odoo -- one by one on the form, by
RPC, by an import or by the bulk wizard (emboux_saas).

A subdomain is linked to its nearest wildcard ancestor held in Odoo, of the
same tenant (never another customer's: that would let one customer hang
names under another's parent). Creating it registers it with the provider
at creation time (`POST /domains/{name}/register-subdomain`, queued right
after its `POST /domains/`), whatever the state of its siblings here: the
connector's call is self-contained. Deleting it (`DELETE /domains/{name}`)
removes what the provider holds for it."""

from odoo import api, fields, models
from odoo.exceptions import UserError


class EmbouxDomainSubdomain(models.AbstractModel):
    _name = "emboux.domain.subdomain"
    _description = "Email Hosting domain: SaaS subdomains"

    parent_id = fields.Many2one(
        "emboux.domain", "Parent domain", index=True, ondelete="restrict", tracking=True,
        help="The domain this one is a subdomain of. Set by itself when the domain is created under a "
             "wildcard parent of the same customer; the subdomain then sends with the parent's identity.")
    wildcard = fields.Boolean(
        "Wildcard parent", tracking=True,
        help="Subdomains of this domain created later are linked to it and registered with its provider "
             "at once (SaaS platforms: one subdomain per customer).")
    child_ids = fields.One2many("emboux.domain", "parent_id", "Subdomains")
    subdomain_count = fields.Integer(compute="_compute_subdomain_count")
    subdomain_registered = fields.Boolean(
        "Registered with the provider", readonly=True, copy=False,
        help="register-subdomain succeeded: the subdomain sends with its parent's DKIM identity.")

    def _compute_subdomain_count(self):
        counts = dict(self.env["emboux.domain"]._read_group([("parent_id", "in", self.ids)], ["parent_id"],
                                                            ["__count"]))
        for dom in self:
            dom.subdomain_count = counts.get(dom, 0)

    @staticmethod
    def _emboux_ancestors(name):
        labels = (name or "").split(".")
        return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]

    @api.model
    def _emboux_link_parents(self, vals_list):
        """Before creation (names already normalised): an explicit parent must
        be an ancestor held by the same tenant; without one, the nearest
        wildcard ancestor is the parent. The tenant defaults to the parent's."""
        Domain = self.env["emboux.domain"].sudo().with_context(active_test=False)
        # one query for the whole batch (an import creates thousands at once)
        ancestors = {a for vals in vals_list if not vals.get("parent_id")
                     for a in self._emboux_ancestors(vals["name"])}
        wildcards = {d.name: d for d in Domain.search([("name", "in", list(ancestors)), ("wildcard", "=", True)])} \
            if ancestors else {}
        for vals in vals_list:
            name = vals["name"]
            if vals.get("parent_id"):
                parent = Domain.browse(vals["parent_id"])
                if not name.endswith("." + parent.name):
                    raise UserError(self.env._("%(name)s is not a subdomain of %(parent)s.", name=name,
                                               parent=parent.name))
            else:
                # the nearest wildcard ancestor (ancestors come longest first)
                parent = next((wildcards[a] for a in self._emboux_ancestors(name) if a in wildcards), None)
                if not parent:
                    continue
            if not vals.get("tenant_id"):
                vals["tenant_id"] = parent.tenant_id.id
            elif vals["tenant_id"] != parent.tenant_id.id:
                raise UserError(self.env._(
                    "%(name)s would be a subdomain of %(parent)s, which belongs to another customer: a subdomain "
                    "is created for the parent's customer only.", name=name, parent=parent.name))
            vals["parent_id"] = parent.id

    def _emboux_sync_subdomain_created(self):
        """Queued right after the domain's own creation (same lane, in order)."""
        self.ensure_one()
        if self.wildcard:
            self._emboux_sync("domain.wildcard", wildcard=True)
        if not self.parent_id:
            return
        if self.parent_id.wildcard:
            # the connector linked it to the wildcard parent on creation: register
            # it now, unconditionally (never on a sibling's state, see v5.3)
            self._emboux_sync("domain.register_subdomain")
        else:
            self._emboux_sync("domain.parent", parent=self.parent_id.name)

    def _emboux_check_parent_write(self, vals):
        if "parent_id" not in vals:
            return
        parent = self.env["emboux.domain"].sudo().browse(vals["parent_id"])
        for dom in self:
            if parent and not dom.name.endswith("." + parent.name):
                raise UserError(self.env._("%(name)s is not a subdomain of %(parent)s.", name=dom.name,
                                           parent=parent.name))
            if parent and parent.tenant_id != dom.tenant_id:
                raise UserError(self.env._("%(parent)s belongs to another customer: it cannot be the parent of "
                                           "%(name)s.", parent=parent.name, name=dom.name))

    def _emboux_sync_subdomain_written(self, vals, old_parent):
        for dom in self:
            if "wildcard" in vals:
                dom._emboux_sync("domain.wildcard", wildcard=dom.wildcard)
            if "parent_id" in vals and old_parent[dom.id] != dom.parent_id:
                dom._emboux_sync("domain.parent", parent=dom.parent_id.name or None)

    def _emboux_check_unlink_children(self):
        children = self.sudo().with_context(active_test=False).child_ids - self
        if children:
            raise UserError(self.env._(
                "%(parent)s has %(n)s subdomain(s) (%(names)s...): delete them first.",
                parent=", ".join(children.parent_id.mapped("name")), n=len(children),
                names=", ".join(children[:3].mapped("name"))))

    def _emboux_subdomain_job_done(self, job, result):
        if job.kind == "domain.register_subdomain" and not self.subdomain_registered:
            self.with_context(emboux_no_sync=True).sudo().write({"subdomain_registered": True})

    def action_view_subdomains(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "name": self.env._("Subdomains of %s", self.name),
                "res_model": "emboux.domain", "view_mode": "list,form", "domain": [("parent_id", "=", self.id)],
                "context": {"default_parent_id": self.id, "default_tenant_id": self.tenant_id.id}}
