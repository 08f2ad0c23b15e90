# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the DMARC aggregate reports say about a domain (issue 14,
docs/reports.md): `GET /domains/{name}/dmarc` for the last 30 days, read on
demand into the domain's DMARC tab -- totals, the aligned pass rate (below
98 % the tab warns: not yet time to move DMARC to quarantine) and one line
per source IP and provider. Reports reach the platform by mail; nothing here
is sent to the connector."""

from odoo import fields, models

ALIGNED_PASS_TARGET = 98.0


class EmbouxDmarcSource(models.Model):
    _name = "emboux.dmarc.source"
    _description = "Email Hosting: DMARC report source of a domain"
    _order = "domain_id, messages desc, id"

    domain_id = fields.Many2one("emboux.domain", required=True, index=True, ondelete="cascade")
    source_ip = fields.Char("Source IP", readonly=True)
    provider = fields.Char(readonly=True, help="The sending service, as the report parser names it.")
    messages = fields.Integer(readonly=True)
    dmarc_aligned_pass = fields.Integer("DMARC pass", readonly=True)
    dmarc_aligned_fail = fields.Integer("DMARC fail", readonly=True)
    spf_aligned_pass = fields.Integer("SPF aligned pass", readonly=True)
    spf_aligned_fail = fields.Integer("SPF aligned fail", readonly=True)
    dkim_aligned_pass = fields.Integer("DKIM aligned pass", readonly=True)
    dkim_aligned_fail = fields.Integer("DKIM aligned fail", readonly=True)
    disposition_none = fields.Integer("Delivered", readonly=True)
    disposition_quarantine = fields.Integer("Quarantined", readonly=True)
    disposition_reject = fields.Integer("Rejected", readonly=True)


class EmbouxDomainDmarc(models.Model):
    _inherit = "emboux.domain"

    dmarc_source_ids = fields.One2many("emboux.dmarc.source", "domain_id", string="DMARC sources", readonly=True)
    dmarc_reports = fields.Integer("DMARC reports", readonly=True, copy=False)
    dmarc_messages = fields.Integer("Messages reported", readonly=True, copy=False)
    dmarc_aligned_pass = fields.Float(
        "Aligned pass (%)", readonly=True, copy=False, digits=(5, 2),
        help="Share of the reported messages that passed DMARC (SPF or DKIM aligned), last 30 days.")
    dmarc_below_target = fields.Boolean(
        "Below 98 %", readonly=True, copy=False,
        help="Fewer than 98 % of the reported messages pass DMARC: authenticate the failing sources before "
             "moving the DMARC policy to quarantine.")
    dmarc_checked_at = fields.Datetime("DMARC reports read", readonly=True, copy=False)

    def action_refresh_dmarc(self):
        """Read the last 30 days of aggregate reports from the platform."""
        for dom in self:
            result = dom._emboux_identity_call("GET", "/dmarc", self.env._("Reading the DMARC reports"))
            lines = [fields.Command.clear()]
            for src in result.get("sources") or []:
                disp = src.get("disposition") or {}
                lines.append(fields.Command.create({
                    "source_ip": src.get("source_ip"), "provider": src.get("provider") or False,
                    "messages": src.get("messages") or 0,
                    **{k: src.get(k) or 0 for k in ("dmarc_aligned_pass", "dmarc_aligned_fail", "spf_aligned_pass",
                                                    "spf_aligned_fail", "dkim_aligned_pass", "dkim_aligned_fail")},
                    "disposition_none": disp.get("none") or 0,
                    "disposition_quarantine": disp.get("quarantine") or 0,
                    "disposition_reject": disp.get("reject") or 0}))
            pct = result.get("aligned_pass_percent")
            dom.with_context(emboux_no_sync=True).sudo().write({
                "dmarc_source_ids": lines, "dmarc_reports": result.get("reports") or 0,
                "dmarc_messages": result.get("messages") or 0, "dmarc_aligned_pass": pct or 0.0,
                "dmarc_below_target": pct is not None and pct < ALIGNED_PASS_TARGET,
                "dmarc_checked_at": fields.Datetime.now()})
        return True
