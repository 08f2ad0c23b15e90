# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A domain's outbound mail on one closed day (the connector's daily
history, pulled by the "pull" cron: models/emboux_outbound_pull.py).
Read-only here: the platform counts, Odoo reports (graph, pivot)."""

from odoo import api, fields, models


class EmbouxOutboundDay(models.Model):
    _name = "emboux.outbound.day"
    _description = "Email Hosting: outbound mail of a domain on one day"
    _order = "day desc, domain_id"
    _rec_name = "day"
    # A copy of the platform's figures, written only by the pull in bulk SQL:
    # who/when in Odoo says nothing, and their two foreign keys to res_users
    # cost about 40 % of the insert of a pulled page (one check per row each).
    _log_access = False

    # indexed by the unique (domain_id, day) constraint; one index less to write per pulled day
    domain_id = fields.Many2one("emboux.domain", required=True, readonly=True, ondelete="cascade")
    tenant_id = fields.Many2one(related="domain_id.tenant_id", store=True, index=True, string="Tenant")
    company_id = fields.Many2one(related="domain_id.company_id", store=True)
    day = fields.Date(required=True, readonly=True, index=True, help="UTC day, closed by the daily reset.")
    sent = fields.Integer(readonly=True, help="Recipients accepted for delivery that day.")
    bytes = fields.Float(readonly=True, digits=(20, 0), help="Bytes sent that day.")  # pylint: disable=redefined-builtin
    overage = fields.Integer(readonly=True, help="Recipients over a soft limit that day (billed).")
    bounces = fields.Integer(readonly=True, help="Hard bounces reported that day.")
    complaints = fields.Integer(readonly=True, help="Spam complaints reported that day.")
    # A day's rates. Grouped, they are the mean of the days' rates (each
    # domain-day counts once): a period's own rate is its bounces / its sent.
    bounce_rate = fields.Float("Daily bounce rate (%)", compute="_compute_rates", store=True, digits=(16, 3),
                               aggregator="avg", help="Bounces / sent that day. Grouped: the mean of the days' "
                                                      "rates; the period's own rate is its bounces / its sent.")
    complaint_rate = fields.Float("Daily complaint rate (%)", compute="_compute_rates", store=True,
                                  digits=(16, 3), aggregator="avg",
                                  help="Complaints / sent that day. Grouped: the mean of the days' rates.")

    _domain_day_unique = models.Constraint("UNIQUE (domain_id, day)", "One row per domain and day.")

    def init(self):
        # databases made before _log_access was switched off: Odoo keeps the
        # columns of removed fields (and these two foreign keys' checks)
        self.env.cr.execute("ALTER TABLE emboux_outbound_day DROP COLUMN IF EXISTS create_uid, "
                            "DROP COLUMN IF EXISTS create_date, DROP COLUMN IF EXISTS write_uid, "
                            "DROP COLUMN IF EXISTS write_date")

    @api.depends("sent", "bounces", "complaints")
    def _compute_rates(self):
        for rec in self:
            rec.bounce_rate = round(100.0 * rec.bounces / rec.sent, 3) if rec.sent else 0.0
            rec.complaint_rate = round(100.0 * rec.complaints / rec.sent, 3) if rec.sent else 0.0
