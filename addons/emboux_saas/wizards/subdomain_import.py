# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Add subdomains under a wildcard parent in bulk (a SaaS platform's 500
customer subdomains from a list or a CSV file). Each row is created in a
savepoint of its own: a bad row (invalid name, taken, over the quota, not
under the parent) is reported with its line number and writes nothing --
neither the domain nor a queued call -- and the good rows go on. The
created subdomains reach the platform through the sync queue (creation,
then register-subdomain); the wizard shows how many did so far, and each
row's sync error, and can be refreshed while the queue works."""

import base64
import binascii
import csv
import io

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

MAX_ROWS = 10000
HEADERS = ("name", "subdomain", "domain", "label")


class EmbouxSubdomainImport(models.TransientModel):
    _name = "emboux.subdomain.import"
    _description = "Email Hosting: add subdomains in bulk"

    parent_id = fields.Many2one("emboux.domain", "Wildcard parent", required=True, ondelete="cascade",
                                domain=[("wildcard", "=", True)])
    tenant_id = fields.Many2one(related="parent_id.tenant_id", string="Customer")
    names = fields.Text("Subdomains", help="One per line: a label (shop: shop.<parent>) or a full name under "
                                           "the parent.")
    file = fields.Binary("CSV file", help="The first column holds the label or the full name; a header row "
                                          "(name, subdomain, domain or label) is skipped.")
    file_name = fields.Char()
    state = fields.Selection([("draft", "To import"), ("done", "Imported")], default="draft", required=True)
    line_ids = fields.One2many("emboux.subdomain.import.line", "wizard_id", "Rows")
    row_count = fields.Integer("Rows", compute="_compute_counts")
    created_count = fields.Integer("Created", compute="_compute_counts")
    error_count = fields.Integer("Refused", compute="_compute_counts")
    synced_count = fields.Integer("On the platform", compute="_compute_counts")
    waiting_count = fields.Integer("Waiting for the platform", compute="_compute_counts")
    sync_error_count = fields.Integer("Platform errors", compute="_compute_counts")
    progress = fields.Float("Sent to the platform (%)", compute="_compute_counts")

    @api.depends("line_ids.domain_id.sync_state", "line_ids.error")
    def _compute_counts(self):
        for wiz in self:
            created = wiz.line_ids.filtered("domain_id")
            states = created.mapped("domain_id.sync_state")
            wiz.row_count = len(wiz.line_ids)
            wiz.created_count = len(created)
            wiz.error_count = len(wiz.line_ids) - len(created)
            wiz.synced_count = states.count("synced")
            wiz.waiting_count = states.count("pending")
            wiz.sync_error_count = states.count("error")
            wiz.progress = 100.0 * (len(states) - states.count("pending")) / len(states) if states else 0.0

    # --- input ---------------------------------------------------------------------
    def _rows(self):
        """[(line number, value)] of the list or the CSV file, blank lines skipped."""
        self.ensure_one()
        if self.file:
            try:
                text = base64.b64decode(self.file).decode("utf-8-sig")
            except (binascii.Error, UnicodeDecodeError):
                raise UserError(self.env._("The file is not a UTF-8 CSV file.")) from None
            rows = [(n, (cells[0] if cells else "")) for n, cells in enumerate(csv.reader(io.StringIO(text)), 1)]
            if rows and rows[0][1].strip().lower() in HEADERS:
                rows = rows[1:]
        else:
            rows = list(enumerate((self.names or "").splitlines(), 1))
        rows = [(n, v.strip()) for n, v in rows if v.strip()]
        if not rows:
            raise UserError(self.env._("Give the subdomains to create: one per line, or a CSV file."))
        if len(rows) > MAX_ROWS:
            raise UserError(self.env._("At most %(max)s subdomains at once (this list has %(n)s): split it.",
                                       max=MAX_ROWS, n=len(rows)))
        return rows

    def _full_name(self, value):
        parent = self.parent_id.name
        value = value.lower().rstrip(".")
        if value.endswith("." + parent):
            return value
        if "." in value:
            raise UserError(self.env._("%(value)s is not under %(parent)s: give a label (e.g. shop) or a name "
                                       "ending in .%(parent)s.", value=value, parent=parent))
        return f"{value}.{parent}"

    # --- actions -------------------------------------------------------------------
    def action_import(self):
        self.ensure_one()
        if self.state != "draft":
            raise UserError(self.env._("These subdomains were imported already."))
        if not self.parent_id.wildcard:
            raise UserError(self.env._("%s is not a wildcard parent: tick Wildcard parent on it first.",
                                       self.parent_id.name))
        Domain = self.env["emboux.domain"]
        lines = []
        for number, value in self._rows():
            line = {"wizard_id": self.id, "row": number, "name": value[:255]}
            try:
                with self.env.cr.savepoint():
                    name = self._full_name(value)
                    line["name"] = name
                    dom = Domain.create({"name": name, "parent_id": self.parent_id.id,
                                         "tenant_id": self.parent_id.tenant_id.id})
                    dom.flush_recordset()
                line["domain_id"] = dom.id
            except (UserError, ValidationError, AccessError) as exc:
                line["error"] = str(exc.args[0] if exc.args else exc)
            except psycopg2.Error as exc:
                line["error"] = exc.diag.message_primary if exc.diag else str(exc)
            lines.append(line)
        self.env["emboux.subdomain.import.line"].create(lines)
        self.state = "done"
        self.parent_id.message_post(body=self.env._(
            "%(created)s subdomain(s) added in bulk, %(refused)s row(s) refused.",
            created=sum(1 for ln in lines if ln.get("domain_id")),
            refused=sum(1 for ln in lines if not ln.get("domain_id"))))
        return self._reopen()

    def action_refresh(self):
        return self._reopen()

    def _reopen(self):
        return {"type": "ir.actions.act_window", "res_model": self._name, "res_id": self.id, "view_mode": "form",
                "target": "new", "name": self.env._("Add subdomains under %s", self.parent_id.name)}


class EmbouxSubdomainImportLine(models.TransientModel):
    _name = "emboux.subdomain.import.line"
    _description = "Email Hosting: one row of a bulk subdomain import"
    _order = "row"

    wizard_id = fields.Many2one("emboux.subdomain.import", required=True, ondelete="cascade")
    row = fields.Integer("Line")
    name = fields.Char("Subdomain")
    domain_id = fields.Many2one("emboux.domain", "Created", ondelete="set null")
    error = fields.Char("Refused because")
    sync_state = fields.Selection(related="domain_id.sync_state", string="Platform")
    sync_error = fields.Text(related="domain_id.sync_error", string="Platform error")
