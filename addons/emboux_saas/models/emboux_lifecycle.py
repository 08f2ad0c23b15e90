# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Non-payment and over-plan lifecycle, run by the cron "Email Hosting:
non-payment and over-plan lifecycle" (hands-free).

Triggers: an invoice of the tenant overdue (grace counts from the due date
of the oldest unpaid one), or more domains than the plan allows (grace
counts from the day it was first seen). Grace: reminders on days 7, 15 and
22 (mail templates, Odoo's mail queue, logged in the chatter). After grace:
non-payment suspends every domain, over-plan the surplus, newest first
(the connector's suspend: mail kept). Each run computes which domains the
flow must hold suspended and moves the platform there, so payment or an
upgrade reactivates exactly the domains the flow suspended, no others."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

REMINDER_DAYS = (7, 15, 22)


class EmbouxDomain(models.Model):
    _inherit = "emboux.domain"

    billing_suspended = fields.Boolean(
        "Suspended for billing", readonly=True, copy=False, tracking=True,
        help="Suspended by the non-payment / over-plan flow, which reactivates it once the cause is gone.")


class EmbouxTenant(models.Model):
    _inherit = "emboux.tenant"

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
    billing_paused = fields.Boolean(
        "Pause billing lifecycle", copy=False, tracking=True,
        help="The non-payment / over-plan flow leaves this tenant alone (no reminder, no suspension, "
             "no reactivation) until unticked.")

    @api.model
    def _emboux_grace_days(self):
        return int(self.env["ir.config_parameter"].sudo().get_param("emboux_saas.grace_days", 30))

    @api.depends("grace_start")
    def _compute_grace_end(self):
        days = self._emboux_grace_days()
        for tenant in self:
            tenant.grace_end = tenant.grace_start and tenant.grace_start + timedelta(days=days)

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
        if "plan_id" in vals or vals.get("billing_paused") is False:
            self._emboux_billing_lifecycle()  # an upgrade that fits reactivates at once
        return res

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
