# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import UserError

# The plan's quotas, as the tenant's fields of the same name (emboux_core);
# storage_mb is the tenant's default_quota_mb (per mailbox).
PLAN_QUOTA_FIELDS = ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox")
# Sent to every domain of the tenant: PUT /domains/{name}/outbound (master).
PLAN_OUTBOUND_FIELDS = ("outbound_tier", "outbound_daily_limit", "outbound_monthly_limit",
                        "outbound_enforcement", "warmup_profile")
NON_NEGATIVE = PLAN_QUOTA_FIELDS + ("storage_mb", "outbound_daily_limit", "outbound_monthly_limit",
                                    "included_messages")


class EmbouxPlan(models.Model):
    """What a tenant buys: quotas, outbound settings and prices (products)."""

    _name = "emboux.plan"
    _description = "Email Hosting plan"
    _inherit = ["mail.thread"]
    _order = "sequence, name"

    name = fields.Char(required=True, translate=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company, index=True)
    # quotas (0 = unlimited, as on the platform)
    domains_allowed = fields.Integer(default=1, tracking=True, help="0 = unlimited")
    mailboxes_per_domain = fields.Integer(default=10, tracking=True, help="0 = unlimited")
    aliases_per_mailbox = fields.Integer(default=5, tracking=True, help="0 = unlimited")
    storage_mb = fields.Integer("Storage per mailbox (MB)", default=1024, tracking=True,
                                help="Default quota of a new mailbox. 0 = unlimited")
    # outbound (docs/outbound.md)
    outbound_tier = fields.Selection([("shared", "Shared"), ("dedicated", "Dedicated")], default="shared",
                                     required=True, tracking=True)
    outbound_daily_limit = fields.Integer("Messages per day", default=1000, tracking=True, help="0 = unlimited")
    outbound_monthly_limit = fields.Integer("Messages per month", default=20000, tracking=True,
                                            help="0 = unlimited")
    outbound_enforcement = fields.Selection(
        [("hard", "Hard: refuse above the limits"), ("soft", "Soft: allow and bill the overage")],
        default="hard", required=True, tracking=True)
    warmup_profile = fields.Selection(
        [("fast", "Fast (x1.8 a day)"), ("standard", "Standard (x1.1 a day)"),
         ("conservative", "Conservative (x1.05 a day)")], default="standard", tracking=True,
        help="How fast a new domain's daily cap grows up to the plan's daily limit. Empty: no warm-up.")
    # pricing
    currency_id = fields.Many2one(related="company_id.currency_id")
    fee_product_id = fields.Many2one("product.product", "Monthly fee", tracking=True,
                                     domain=[("type", "=", "service")])
    mailbox_product_id = fields.Many2one("product.product", "Per mailbox", tracking=True,
                                         domain=[("type", "=", "service")],
                                         help="Billed per mailbox existing at the end of the month.")
    storage_product_id = fields.Many2one("product.product", "Per GB stored", tracking=True,
                                         domain=[("type", "=", "service")])
    overage_product_id = fields.Many2one(
        "product.product", "Per 1,000 messages above the plan", tracking=True, domain=[("type", "=", "service")],
        help="Soft enforcement: messages sent in the month above the included volume, per started 1,000.")
    included_messages = fields.Integer("Messages included per month", default=0, tracking=True,
                                       help="0: the plan's monthly limit.")
    tenant_ids = fields.One2many("emboux.tenant", "plan_id", string="Tenants")
    tenant_count = fields.Integer(compute="_compute_tenant_count")

    def _compute_tenant_count(self):
        counts = dict(self.env["emboux.tenant"]._read_group([("plan_id", "in", self.ids)], ["plan_id"], ["__count"]))
        for plan in self:
            plan.tenant_count = counts.get(plan, 0)

    @api.model
    def _check_values(self, vals):
        bad = [self._fields[f].string for f in NON_NEGATIVE if (vals.get(f) or 0) < 0]
        if bad:
            raise UserError(self.env._("A plan's quotas and limits cannot be negative (0 means unlimited): %s.",
                                       ", ".join(bad)))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_values(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_values(vals)
        res = super().write(vals)
        pushed = PLAN_QUOTA_FIELDS + PLAN_OUTBOUND_FIELDS + ("storage_mb",)
        if any(f in vals for f in pushed):
            # every tenant on the plan gets the new values (through the sync queue)
            self.tenant_ids._emboux_apply_plan()
        return res

    def _tenant_quota_values(self):
        self.ensure_one()
        vals = {f: self[f] for f in PLAN_QUOTA_FIELDS}
        vals["default_quota_mb"] = self.storage_mb
        return vals

    def _outbound_payload(self):
        self.ensure_one()
        return {f: (self[f] or None) if f == "warmup_profile" else self[f] for f in PLAN_OUTBOUND_FIELDS}

    def action_view_tenants(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "name": self.env._("Tenants on %s", self.name),
                "res_model": "emboux.tenant", "view_mode": "list,form", "domain": [("plan_id", "=", self.id)],
                "context": {"default_plan_id": self.id}}
