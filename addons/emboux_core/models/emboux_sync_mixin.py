# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import names, platform_adapter


class EmbouxSyncMixin(models.AbstractModel):
    """Sync state shown on every email-hosting record, and the helpers that
    turn record changes into queued connector calls."""

    _name = "emboux.sync.mixin"
    _description = "Email Hosting: synchronised with the connector"

    sync_state = fields.Selection(
        [("pending", "Waiting for the mail platform"), ("synced", "Synchronised"), ("error", "Sync error")],
        default="pending", readonly=True, copy=False, index=True)
    sync_error = fields.Text("Last sync error", readonly=True, copy=False)
    last_sync_at = fields.Datetime("Last synchronised", readonly=True, copy=False)
    sync_job_count = fields.Integer(compute="_compute_sync_job_count")

    def _compute_sync_job_count(self):
        groups = self.env["emboux.sync.job"].sudo()._read_group(
            [("res_model", "=", self._name), ("res_id", "in", self.ids)], ["res_id"], ["__count"])
        counts = dict(groups)
        for rec in self:
            rec.sync_job_count = counts.get(rec.id, 0)

    # --- hooks for subclasses ---------------------------------------------------
    def _emboux_lane(self):
        """Jobs of one customer are applied in order (quotas before domains...)."""
        raise NotImplementedError

    def _emboux_job_done(self, job, result):
        """A job of this record reached the connector (result = its JSON)."""

    def _emboux_target(self):
        """This record's parameters in the platform's paths (see
        services/platform_adapter.py), e.g. {"name": "example.com"}."""
        return {}

    # --- helpers -----------------------------------------------------------------
    def _emboux_sync_enabled(self):
        return not self.env.context.get("emboux_no_sync")

    def _emboux_sync(self, kind, secret=None, **values):
        """Queue the change `kind` of this record with the body fields
        `values`: the platform adapter knows the verb, the path and the body."""
        method, path, body = platform_adapter.build(kind, self._emboux_target(), **values)
        return self._emboux_enqueue(kind, method, path, body, secret=secret,
                                    secret_field=platform_adapter.secret_field(kind))

    def _emboux_enqueue(self, kind, method, path, payload=None, secret=None, secret_field="password"):
        """The low-level form (a kind the adapter does not know yet, migrations)."""
        self.ensure_one()
        job = self.env["emboux.sync.job"]._enqueue(self, kind, method, path, payload, secret, secret_field)
        if self.sync_state != "pending":
            self.with_context(emboux_no_sync=True).sudo().write({"sync_state": "pending"})
        return job

    def _emboux_refresh_sync_state(self):
        Job = self.env["emboux.sync.job"].sudo()
        for rec in self:
            jobs = Job.search([("res_model", "=", rec._name), ("res_id", "=", rec.id),
                               ("state", "in", ("pending", "failed"))], order="id desc")
            failed = jobs.filtered(lambda j: j.state == "failed")
            vals = {}
            if failed:
                vals = {"sync_state": "error", "sync_error": failed[0].last_error}
            elif jobs:
                vals = {"sync_state": "pending",
                        "sync_error": next((j.last_error for j in jobs if j.last_error), False)}
            else:
                vals = {"sync_state": "synced", "sync_error": False, "last_sync_at": fields.Datetime.now()}
            rec.with_context(emboux_no_sync=True).sudo().write(vals)

    @staticmethod
    def _emboux_check(fn, value):
        """Name rules -> UserError with the sentence."""
        try:
            return fn(value)
        except names.NameError_ as exc:
            raise UserError(str(exc)) from None

    # Odoo's action_archive/action_unarchive return None, which XML-RPC cannot
    # send back ("cannot marshal None"): the call failed and was rolled back
    # for an integrator archiving a mailbox or a domain over XML-RPC.
    def action_archive(self):
        super().action_archive()
        return True

    def action_unarchive(self):
        super().action_unarchive()
        return True

    def action_emboux_retry_sync(self):
        jobs = self.env["emboux.sync.job"].sudo().search(
            [("res_model", "=", self._name), ("res_id", "in", self.ids), ("state", "in", ("pending", "failed"))])
        if not jobs:
            raise UserError(self.env._("Nothing is waiting to be sent to the mail platform for this record."))
        jobs.action_retry()
        return True

    def action_view_sync_jobs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Sync history"),
            "res_model": "emboux.sync.job",
            "view_mode": "list,form",
            "domain": [("res_model", "=", self._name), ("res_id", "=", self.id)],
        }

    @api.model
    def _emboux_lookup_remote(self, path):
        return self.env["emboux.connector"]._exists(path)
