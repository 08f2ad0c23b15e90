# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The tenant in emboux_saas: its plan (pushed to the platform), its
contract and monthly billing from the connector's frozen counters
(contract.py), the non-payment / over-plan lifecycle, and what the customer
portal may do (portal_* methods, called on records browsed as the portal
user: reading them checks the portal record rules, then the back office's
own code makes the change, through the same sync queue).

Lifecycle, run by the cron "Email Hosting: non-payment and over-plan
lifecycle": triggers are an invoice of the tenant overdue (grace counts from
the due date of the oldest unpaid one), or more domains than the plan allows
(grace counts from the day it was first seen). Grace: reminders on days 7,
15 and 22 (mail template, Odoo's mail queue, logged in the chatter). After
grace: non-payment suspends every domain, over-plan the surplus, newest
first (the connector's suspend: mail kept). Each run computes which domains
the flow must hold suspended and moves the platform there, so payment or an
upgrade reactivates exactly the domains the flow suspended, no others."""

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.emboux_core.services.connector_client import ConnectorError

REMINDER_DAYS = (7, 15, 22)
PORTAL_DNS_CHECKS = 20   # live DNS checks on one portal page (each is a few DNS look-ups)
# contract line role -> the plan's product field
USAGE_PRODUCTS = {"fee": "fee_product_id", "mailbox": "mailbox_product_id",
                  "storage": "storage_product_id", "overage": "overage_product_id"}


class EmbouxTenant(models.Model):
    _inherit = "emboux.tenant"

    plan_id = fields.Many2one("emboux.plan", tracking=True, index=True, ondelete="restrict",
                              help="Its quotas and outbound settings are applied to the tenant and to each "
                                   "of its domains on the mail platform, again whenever the plan changes.")

    contract_id = fields.Many2one("contract.contract", copy=False, readonly=True, index=True)

    invoice_count = fields.Integer(compute="_compute_invoice_count")

    billing_state = fields.Selection(
        [("active", "Active"), ("grace", "Grace period"), ("suspended", "Suspended")],
        default="active", required=True, readonly=True, copy=False, tracking=True, index=True)
    billing_reason = fields.Selection(
        [("non_payment", "Unpaid invoice"), ("over_plan", "More domains than the plan allows"),
         ("both", "Unpaid invoice and more domains than the plan allows")],
        readonly=True, copy=False, tracking=True)
    grace_start = fields.Date("Grace counted from", readonly=True, copy=False, tracking=True)
    grace_end = fields.Date("Suspension on", compute="_compute_grace_end")
    over_plan_since = fields.Date(readonly=True, copy=False,
                                  help="First day more domains than the plan allows were seen.")
    reminders_sent = fields.Integer(readonly=True, copy=False)
    overdue_amount = fields.Monetary(
        "Overdue", compute="_compute_overdue_amount", currency_field="overdue_currency_id",
        help="What is still due on the tenant's invoices past their due date: a partial payment lowers it, "
             "and the tenant stays in grace or suspended until it is 0.")
    overdue_currency_id = fields.Many2one(related="company_id.currency_id", string="Overdue currency")
    billing_paused = fields.Boolean(
        "Pause billing lifecycle", copy=False, tracking=True,
        help="The non-payment / over-plan flow leaves this tenant alone (no reminder, no suspension, "
             "no reactivation) until unticked.")

    @api.model_create_multi
    def create(self, vals_list):
        Plan = self.env["emboux.plan"]
        for vals in vals_list:
            if vals.get("plan_id"):
                # the plan's quotas are the tenant's: pushed by emboux_core's own create hook
                vals.update(Plan.browse(vals["plan_id"])._tenant_quota_values())
        tenants = super().create(vals_list)
        tenants.filtered("plan_id")._emboux_ensure_contract()
        return tenants

    def write(self, vals):
        if "plan_id" in vals:
            new = self.env["emboux.plan"].browse(vals["plan_id"])
            for tenant in self.filtered(lambda t: t.billing_state == "suspended" and t.plan_id):
                if tenant._emboux_is_downgrade(tenant.plan_id, new):
                    raise UserError(self.env._(
                        "%(tenant)s is suspended (%(reason)s): it cannot move to a smaller plan now. "
                        "Settle the cause first, or choose a plan that fits.", tenant=tenant.name,
                        reason=dict(self._fields["billing_reason"].selection).get(tenant.billing_reason)))
        res = super().write(vals)
        if "plan_id" in vals:
            self._emboux_apply_plan()
        if "plan_id" in vals or vals.get("billing_paused") is False:
            self._emboux_billing_lifecycle()  # an upgrade that fits reactivates at once
        return res

    # --- plan ---------------------------------------------------------------------
    def _emboux_apply_plan(self):
        """The plan's quotas on the tenant (emboux_core pushes the partner's
        quotas when they change) and its outbound settings on every domain."""
        for tenant in self.filtered("plan_id"):
            quotas = tenant.plan_id._tenant_quota_values()
            changed = {f: v for f, v in quotas.items() if tenant[f] != v}
            if changed:
                tenant.write(changed)
            elif tenant._emboux_sync_enabled():
                tenant._emboux_push_quotas()  # a re-apply re-sends what the platform holds
            tenant.with_context(active_test=False).domain_ids._emboux_push_plan_outbound()
        self.filtered("plan_id")._emboux_ensure_contract()

    # --- contract and usage (see contract.py) -------------------------------------
    def _compute_invoice_count(self):
        counts = dict(self.env["account.move"]._read_group(
            [("emboux_tenant_id", "in", self.ids), ("move_type", "=", "out_invoice")],
            ["emboux_tenant_id"], ["__count"]))
        for tenant in self:
            tenant.invoice_count = counts.get(tenant, 0)

    # --- contract ---------------------------------------------------------------
    def _emboux_ensure_contract(self):
        """Create the tenant's contract, or set its lines to the current plan's
        products (a plan change bills the new plan from the next invoice)."""
        formula = self.env.ref("emboux_saas.formula_emboux_usage")
        for tenant in self:
            plan = tenant.plan_id
            start = self.env.context.get("emboux_contract_date_start") or fields.Date.context_today(self)
            start = fields.Date.to_date(start).replace(day=1)
            contract = tenant.contract_id
            if not contract:
                contract = self.env["contract.contract"].sudo().create({
                    "name": self.env._("Email hosting: %s", tenant.name),
                    "partner_id": tenant.partner_id.id, "emboux_tenant_id": tenant.id,
                    "company_id": tenant.company_id.id, "contract_type": "sale", "line_recurrence": False,
                    "recurring_rule_type": "monthlylastday", "recurring_interval": 1,
                    "recurring_invoicing_type": "post-paid", "date_start": start, "skip_zero_qty": True,
                })
                tenant.with_context(emboux_no_sync=True).sudo().write({"contract_id": contract.id})
            for role, field in USAGE_PRODUCTS.items():
                product = plan[field]
                line = contract.contract_line_ids.filtered(lambda l, r=role: l.emboux_usage == r)[:1]
                if not product:
                    if line:
                        line.sudo().write({"is_canceled": True})
                    continue
                vals = {"product_id": product.id, "name": product.display_name, "is_canceled": False,
                        "price_unit": product.lst_price, "automatic_price": False}
                if role == "fee":
                    vals.update(quantity=1.0)
                else:
                    vals.update(qty_type="variable", qty_formula_id=formula.id)
                if line:
                    line.sudo().write(vals)
                else:
                    contract.sudo().write({"contract_line_ids": [(0, 0, dict(vals, emboux_usage=role,
                                                                                 date_start=contract.date_start))]})

    def action_view_contract(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "contract.contract", "view_mode": "form",
                "res_id": self.contract_id.id}

    def action_view_invoices(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "name": self.env._("Invoices"), "res_model": "account.move",
                "view_mode": "list,form", "domain": [("emboux_tenant_id", "=", self.id),
                                                     ("move_type", "=", "out_invoice")]}

    # --- usage from the connector ---------------------------------------------
    @api.model
    def _emboux_fetch_billing(self, month):
        """{"frozen": bool, "entries": [...]} of `GET /outbound/billing?month=`;
        not frozen when the connector cannot be asked (billed on a later run)."""
        try:
            result = self.env["emboux.connector"]._client().call("GET", f"/outbound/billing?month={month}")
        except ConnectorError:
            return {"frozen": False, "entries": []}
        return {"frozen": bool(result.get("frozen")), "entries": result.get("entries") or []}

    def _emboux_month_entries(self, billing):
        index = billing.get("by_partner")
        if index is None:  # once per month's answer: a run bills thousands of tenants from it
            index = billing["by_partner"] = {}
            for e in billing["entries"]:
                index.setdefault(e.get("partner_ref"), []).append(e)
        return index.get(self.partner_ref, [])

    def _emboux_usage_quantities(self, billing):
        """role -> quantity for the month of `billing`, from the platform's
        frozen counters of the tenant's domains: messages, mailboxes, and the
        bytes stored (GB, started hundredths). Rows frozen before the platform
        measured mailboxes and storage (null) fall back to what Odoo counts
        when the month is billed: its mailboxes, their allocated quota."""
        self.ensure_one()
        entries = self._emboux_month_entries(billing)
        sent = sum(e["sent"] for e in entries)
        included = self.plan_id.included_messages
        above = max(0, sent - included) if included else sum(e["overage"] for e in entries)
        measured = bool(entries)
        if measured and all(e.get("mailboxes") is not None for e in entries):
            mailboxes = sum(e["mailboxes"] for e in entries)
        else:
            mailboxes = self.env["emboux.mailbox"].sudo().search_count([("tenant_id", "=", self.id)])
        if measured and all(e.get("storage_bytes") is not None for e in entries):
            storage = math.ceil(sum(e["storage_bytes"] for e in entries) * 100 / 1024 ** 3) / 100.0
        else:
            boxes = self.env["emboux.mailbox"].sudo().search([("tenant_id", "=", self.id)])
            storage = round(sum(boxes.mapped("quota_mb")) / 1024.0, 2)
        return {"fee": 1.0, "mailbox": float(mailboxes), "storage": storage,
                "overage": float(math.ceil(above / 1000.0))}

    def _emboux_usage_summary(self, billing, month):
        """The invoice's note: what was measured, per domain."""
        self.ensure_one()
        q = self._emboux_usage_quantities(billing)
        rows = Markup("").join(
            Markup("<tr><td>%s</td><td>%s</td><td>%s</td></tr>") % (e["domain_name"], e["sent"], e["overage"])
            for e in self._emboux_month_entries(billing))
        return (Markup("<p><strong>%s</strong></p>") % self.env._("Email hosting usage, %s", month)
                + Markup("<table class='table table-sm'><tr><th>%s</th><th>%s</th><th>%s</th></tr>%s</table>")
                % (self.env._("Domain"), self.env._("Messages sent"), self.env._("Above the limits"), rows)
                + Markup("<p>%s</p>") % self.env._(
                    "%(boxes)s mailbox(es), %(gb)s GB of storage; %(k)s thousand message(s) billed above the "
                    "plan's %(incl)s included.", boxes=int(q["mailbox"]), gb=q["storage"], k=int(q["overage"]),
                    incl=self.plan_id.included_messages or escape(self.env._("limits"))))

    # --- non-payment / over-plan lifecycle -----------------------------------------
    @api.model
    def _emboux_grace_days(self):
        return int(self.env["ir.config_parameter"].sudo().get_param("emboux_saas.grace_days", 30))

    @api.depends("grace_start")
    def _compute_grace_end(self):
        days = self._emboux_grace_days()
        for tenant in self:
            tenant.grace_end = tenant.grace_start and tenant.grace_start + timedelta(days=days)

    @staticmethod
    def _emboux_is_downgrade(old, new):
        if not new:
            return True
        def cap(v):  # 0 = unlimited
            return float("inf") if not v else v
        return any(cap(new[f]) < cap(old[f]) for f in ("domains_allowed", "mailboxes_per_domain", "storage_mb")) \
            or (new.fee_product_id.lst_price < old.fee_product_id.lst_price)

    def action_emboux_run_lifecycle(self):
        self._emboux_billing_lifecycle()
        return True

    # --- the flow ---------------------------------------------------------------
    @api.model
    def _cron_emboux_billing_lifecycle(self):
        self.search([("billing_paused", "=", False), "|", ("plan_id", "!=", False),
                     ("billing_state", "!=", "active")])._emboux_billing_lifecycle()

    def _compute_overdue_amount(self):
        today = fields.Date.context_today(self)
        groups = dict(self.env["account.move"].sudo()._read_group(
            [("emboux_tenant_id", "in", self.ids), ("move_type", "=", "out_invoice"), ("state", "=", "posted"),
             ("payment_state", "in", ("not_paid", "partial")), ("invoice_date_due", "<", today)],
            ["emboux_tenant_id"], ["amount_residual:sum"]))
        for tenant in self:
            tenant.overdue_amount = groups.get(tenant, 0.0)

    def _emboux_oldest_overdue(self, today):
        self.ensure_one()
        move = self.env["account.move"].sudo().search(
            [("emboux_tenant_id", "=", self.id), ("move_type", "=", "out_invoice"), ("state", "=", "posted"),
             ("payment_state", "in", ("not_paid", "partial")), ("invoice_date_due", "<", today)],
            order="invoice_date_due, id", limit=1)
        return move.invoice_date_due

    def _emboux_surplus_domains(self):
        """Domains above the plan's allowance, newest first."""
        self.ensure_one()
        allowed = self.plan_id.domains_allowed
        domains = self.env["emboux.domain"].sudo().search([("tenant_id", "=", self.id)],
                                                          order="create_date desc, id desc")
        if not allowed or len(domains) <= allowed:
            return domains.browse()
        return domains[:len(domains) - allowed]

    def _emboux_billing_lifecycle(self):
        today = fields.Date.context_today(self)
        grace_days = self._emboux_grace_days()
        for tenant in self.sudo().filtered(lambda t: not t.billing_paused):
            overdue_since = tenant._emboux_oldest_overdue(today)
            surplus = tenant._emboux_surplus_domains()
            over_since = (tenant.over_plan_since or today) if surplus else False
            if over_since != tenant.over_plan_since:
                tenant.over_plan_since = over_since
            starts = [d for d in (overdue_since, over_since) if d]
            reason = ("both" if overdue_since and over_since else
                      "non_payment" if overdue_since else "over_plan" if over_since else False)
            start = min(starts) if starts else False
            hold = tenant.domain_ids.browse()
            if overdue_since and (today - overdue_since).days >= grace_days:
                hold = tenant.domain_ids
            elif over_since and (today - over_since).days >= grace_days:
                hold = surplus
            tenant._emboux_hold_domains(hold, reason)
            state = "suspended" if hold else "grace" if reason else "active"
            if state == "active":
                if tenant.billing_state != "active":
                    tenant.message_post(body=self.env._("Billing lifecycle: the cause is gone; the tenant is "
                                                        "active again."))
                vals = {"billing_state": "active", "billing_reason": False, "grace_start": False,
                        "reminders_sent": 0}
            else:
                if tenant.billing_state == "active":
                    tenant.message_post(body=self.env._(
                        "Billing lifecycle: grace period started (%(reason)s), counted from %(start)s; "
                        "suspension on %(end)s.", reason=dict(self._fields["billing_reason"].selection)[reason],
                        start=start, end=start + timedelta(days=grace_days)))
                vals = {"billing_state": state, "billing_reason": reason, "grace_start": start}
            changed = {k: v for k, v in vals.items() if tenant[k] != v}
            if changed:
                tenant.with_context(emboux_no_sync=True).write(changed)
            if state == "grace":
                tenant._emboux_send_reminder((today - start).days)

    def _emboux_hold_domains(self, hold, reason):
        """Suspend `hold` on the platform (through the sync queue), and
        reactivate the domains this flow suspended that are no longer held."""
        self.ensure_one()
        # (a domain someone reactivated by hand while still held is suspended again: pause the flow instead)
        to_suspend = hold.filtered(lambda d: not (d.billing_suspended and d.state == "suspended"))
        to_release = self.domain_ids.filtered(lambda d: d.billing_suspended) - hold
        for dom in to_suspend:
            if dom.state == "suspended" and not dom.billing_suspended:
                continue  # suspended by a person: theirs to lift, not ours
            dom.write({"state": "suspended", "billing_suspended": True})
        if to_suspend.filtered("billing_suspended"):
            self.message_post(body=self.env._(
                "Billing lifecycle: suspended %(domains)s (%(reason)s). Mail is kept.",
                domains=", ".join(to_suspend.filtered("billing_suspended").mapped("name")),
                reason=dict(self._fields["billing_reason"].selection).get(reason)))
        if to_release:
            to_release.write({"state": "active", "billing_suspended": False})
            self.message_post(body=self.env._("Billing lifecycle: reactivated %s.",
                                              ", ".join(to_release.mapped("name"))))

    def _emboux_send_reminder(self, days_in_grace):
        """The latest reminder due (days 7, 15, 22), once each; a late first
        run sends only the latest one."""
        self.ensure_one()
        due = sum(1 for d in REMINDER_DAYS if days_in_grace >= d)
        if due <= self.reminders_sent:
            return
        template = self.env.ref("emboux_saas.mail_template_emboux_billing_reminder")
        template.with_context(emboux_reminder_day=REMINDER_DAYS[due - 1],
                              emboux_grace_end=self.grace_end).send_mail(self.id, force_send=False)
        self.with_context(emboux_no_sync=True).write({"reminders_sent": due})
        self.message_post(body=self.env._(
            "Billing lifecycle: reminder of day %(day)s queued for %(email)s (suspension on %(end)s).",
            day=REMINDER_DAYS[due - 1], email=self.partner_id.email or self.partner_id.name, end=self.grace_end))

    # --- customer portal -------------------------------------------------------------
    def _portal_check(self):
        self.check_access("read")
        return self.sudo()

    def portal_add_domain(self, name):
        tenant = self._portal_check()
        tenant.ensure_one()
        if tenant.billing_state == "suspended":
            raise UserError(self.env._("Your account is suspended: no domain can be added now."))
        # emboux_core asks the platform for a DNS proof of ownership: the domain
        # receives nothing until the customer publishes the TXT record shown.
        return self.env["emboux.domain"].sudo().create({"name": (name or "").strip(), "tenant_id": tenant.id})

    def _portal_month_usage(self):
        """Per domain: this month's messages and the limit (from the platform);
        {} when the platform cannot be asked now."""
        self.ensure_one()
        client = self.env["emboux.connector"].sudo()._client()
        usage = {}
        for dom in self.sudo().domain_ids:
            try:
                out = client.call("GET", f"/domains/{client.q(dom.name)}/outbound")
            except ConnectorError:
                continue
            usage[dom.id] = {"sent": out.get("outbound_sent_month", 0),
                             "limit": out.get("outbound_monthly_limit", 0)}
        return usage

    def _portal_usage_summary(self, usage):
        """This month against the plan: [(key, label, used, allowed)] for messages (allowed: the plan's
        included messages, else the sum of the domains' monthly limits), domains, mailboxes and allocated
        storage; allowed 0 = unlimited."""
        self.ensure_one()
        tenant = self.sudo()
        domains = tenant.domain_ids
        boxes = domains.mailbox_ids
        limits = [u["limit"] for u in usage.values()]
        included = tenant.plan_id.included_messages or (0 if (not limits or 0 in limits) else sum(limits))
        return [
            ("messages", self.env._("Messages sent"), sum(usage.get(d.id, {}).get("sent", 0) for d in domains), included),
            ("domains", self.env._("Domains"), len(domains), tenant.domains_allowed),
            ("mailboxes", self.env._("Mailboxes"), len(boxes),
             tenant.mailboxes_per_domain * len(domains) if tenant.mailboxes_per_domain else 0),
            ("storage", self.env._("Storage allocated (MB)"), sum(boxes.mapped("quota_mb")),
             (tenant.default_quota_mb * tenant.mailboxes_per_domain * len(domains)
              if tenant.default_quota_mb and tenant.mailboxes_per_domain else 0)),
        ]

    def _portal_dns_checks(self, limit=PORTAL_DNS_CHECKS):
        """Per domain (the first `limit`): the connector's live DNS check
        (`GET /domains/{name}/dns-check`: one entry per record, expected vs
        found, ok/missing/wrong), None when it cannot be asked now."""
        self.ensure_one()
        client = self.env["emboux.connector"].sudo()._client()
        domains = self.sudo().domain_ids[:limit]

        def check(name):  # worker thread: HTTP only
            try:
                return client.call("GET", f"/domains/{client.q(name)}/dns-check")
            except ConnectorError:
                return None
        with ThreadPoolExecutor(max_workers=min(8, len(domains) or 1)) as pool:
            results = list(pool.map(check, domains.mapped("name")))
        return dict(zip(domains.ids, results))

    def portal_create_api_key(self, name):
        """{'id', 'token'}: the token is shown once, then only its hash is kept."""
        tenant = self._portal_check()
        tenant.ensure_one()
        if tenant.billing_state == "suspended":
            raise UserError(self.env._("Your account is suspended: no API key can be created now."))
        name = (name or "").strip()
        if not name:
            raise UserError(self.env._("Give the API key a label (what uses it)."))
        return self.env["emboux.api.key"].sudo().create_with_token({"tenant_id": tenant.id, "name": name[:64]})
