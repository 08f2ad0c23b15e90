# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One DNS record a domain needs, as the connector's DNS check last saw it
(`GET /domains/{name}/dns-check`): what the customer must publish
(`expected`, exactly the check's value), what DNS answered (`found`), and
how to fix it. Written only by `emboux.domain.action_check_dns()`."""

from odoo import fields, models


class EmbouxDnsRecord(models.Model):
    _name = "emboux.dns.record"
    _description = "Email Hosting: DNS record of a domain"
    _order = "domain_id, sequence, id"

    domain_id = fields.Many2one("emboux.domain", required=True, index=True, ondelete="cascade")
    sequence = fields.Integer(default=10)
    record = fields.Char(readonly=True, help="What the record is for: MX, SPF, DKIM, DMARC, BIMI...")
    record_type = fields.Char("Type", readonly=True, help="DNS type: MX, TXT, CNAME...")
    name = fields.Char(readonly=True, help="The DNS name to publish the record at.")
    expected = fields.Char("Value to publish", readonly=True)
    found = fields.Text("Found in DNS", readonly=True)
    status = fields.Selection([("ok", "OK"), ("missing", "Missing"), ("wrong", "Wrong")], readonly=True)
    fix = fields.Char("How to fix", readonly=True)
    required = fields.Boolean(default=True, readonly=True,
                              help="Optional records (BIMI, mail-client discovery) do not block sending.")
