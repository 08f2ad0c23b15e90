# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The durable outbox between Odoo and the connector (see readme/DESIGN.md).

A change to an email-hosting record writes one `emboux.sync.job` row in the
same transaction as the record itself. Only after that transaction commits
is the job sent to the connector (a post-commit hook, then the retry cron).
So: an Odoo rollback sends nothing (no orphan in the mail DB), a connector
outage loses nothing (the job waits, with back-off), and every job is written
so that sending it twice has the effect of sending it once.
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields, models
from odoo.modules.registry import Registry

from ..services import platform_adapter, secrets_box, sync_queue
from ..services.connector_client import ConnectorRefused, dumps

_logger = logging.getLogger(__name__)

# One dispatcher at a time per database keeps each lane strictly in order.
_QUEUE_LOCK = 0x656D626F7578  # "embou x"
# (the queue's rules -- lanes, runs, back-off -- are in services/sync_queue.py)


class EmbouxSyncJob(models.Model):
    _name = "emboux.sync.job"
    _description = "Email Hosting sync job (change waiting for, or sent to, the connector)"
    _order = "id"

    name = fields.Char(compute="_compute_name")
    kind = fields.Char(required=True, index=True, help="e.g. domain.create, mailbox.password")
    lane = fields.Char(required=True, index=True,
                       help="Jobs of one lane (one customer) are applied strictly in order.")
    res_model = fields.Char("Record model", index=True)
    res_id = fields.Many2oneReference("Record id", model_field="res_model", index=True)
    res_name = fields.Char("Record")
    method = fields.Char(required=True)
    path = fields.Char(required=True)
    payload = fields.Text(help="JSON body, without secrets.")
    secret_sealed = fields.Text(groups="base.group_system",
                                help="Encrypted secret (password, token) merged into the body; wiped once sent.")
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Done"), ("failed", "Failed"), ("cancelled", "Cancelled")],
        default="pending", required=True, index=True)
    attempts = fields.Integer(default=0)
    next_attempt_at = fields.Datetime(default=fields.Datetime.now, index=True)
    last_error = fields.Text()
    result_id = fields.Integer("Platform id", readonly=True,
                               help="The id the connector gave the resource created by this job (e.g. an API key).")
    done_at = fields.Datetime()
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)

    @api.depends("method", "path", "res_name")
    def _compute_name(self):
        for job in self:
            job.name = f"{job.method} {job.path}" + (f" ({job.res_name})" if job.res_name else "")

    # --- enqueue -----------------------------------------------------------
    @api.model
    def _enqueue(self, record, kind, method, path, payload=None, secret=None, secret_field=None, lane=None):
        vals = {
            "kind": kind,
            "lane": lane or record._emboux_lane(),
            "res_model": record._name,
            "res_id": record.id,
            "res_name": record.display_name,
            "method": method,
            "path": path,
            "payload": dumps(payload) if payload is not None else False,
        }
        job = self.sudo().create(vals)
        if secret:
            job.secret_sealed = secrets_box.seal(self.env.cr.dbname, json.dumps({secret_field: secret}))
        self._schedule_after_commit()
        return job

    @api.model
    def _schedule_after_commit(self):
        """Send the queue once this transaction has committed (once per transaction)."""
        cr = self.env.cr
        if cr.postcommit.data.get("emboux_dispatch"):
            return
        cr.postcommit.data["emboux_dispatch"] = True
        dbname = cr.dbname

        def dispatch():
            try:
                with Registry(dbname).cursor() as new_cr:
                    env = api.Environment(new_cr, SUPERUSER_ID, {})
                    env["emboux.sync.job"]._process_queue()
            except Exception:  # the cron will retry; never break the user's request
                _logger.exception("post-commit dispatch of the EmBoux sync queue failed")

        cr.postcommit.add(dispatch)

    # --- dispatch ----------------------------------------------------------
    def _call(self):
        """(method, path, body) with the sealed secret merged in: a {token}
        placeholder of the path (jobs queued before 19.0.1.1), or a body
        field (password, token); and a {key_id} placeholder resolved to the
        connector's id of the API key (see `_key_id()`)."""
        body = json.loads(self.payload) if self.payload else None
        path = self.path
        if "{key_id}" in path:
            key_id = self._key_id()
            if not key_id:
                raise ConnectorRefused(
                    self.env._("The API key does not exist on the mail platform: its creation was not applied "
                      "(retry or cancel that change first)."),
                    status=404, detail="API key not found", method=self.method, path=path,
                    code="api_key_not_found")
            path = path.replace("{key_id}", str(key_id))
        sealed = self.sudo().secret_sealed
        if sealed:
            secret = json.loads(secrets_box.unseal(self.env.cr.dbname, sealed) or "{}")
            if "{token}" in path and secret.get("token"):
                path = path.replace("{token}", secret.pop("token"))
            if secret:
                body = dict(body or {}, **secret)
        return self.method, path, body

    def _key_id(self):
        """The connector's id of the API key this job is about: on the record
        if it still exists, else given by its create job (done earlier in the
        lane), e.g. for a key deleted before its creation had been applied."""
        record = self._record()
        if record and "connector_key_id" in record._fields and record.connector_key_id:
            return record.connector_key_id
        create = self.sudo().search([("res_model", "=", self.res_model), ("res_id", "=", self.res_id),
                                     ("kind", "in", ("api_key.create", "api_key.resolve")), ("state", "=", "done"),
                                     ("result_id", "!=", 0)], order="id desc", limit=1)
        return create.result_id or None

    def _call_or_refusal(self):
        try:
            return self._call()
        except ConnectorRefused as exc:
            return exc

    @staticmethod
    def _send(client, call):
        """HTTP only (runs in worker threads): see sync_queue.send."""
        return sync_queue.send(client, call)

    @api.model
    def _process_queue(self, commit=True, limit=20000):
        """Send every due pending job, lane by lane in order. With commit=True
        (post-commit hook, cron) the results are committed run by run, under
        a database-wide advisory lock; commit=False is for callers that own
        the transaction (tests)."""
        cr = self.env.cr
        if not commit:
            return self._process_queue_locked(commit, limit)
        # Wait for a running dispatcher (at most a minute; then the cron will do it).
        cr.execute("SET LOCAL lock_timeout = '60s'")
        cr.execute("SELECT pg_advisory_lock(%s)", (_QUEUE_LOCK,))
        try:
            sent = self._process_queue_locked(commit, limit)
            # The outbox's point: what the platform accepted is recorded at once,
            # whatever happens to the caller's transaction later.
            cr.commit()  # pylint: disable=invalid-commit
            return sent
        except Exception:
            cr.rollback()
            raise
        finally:
            # a session lock outlives transactions: release it whatever happened,
            # or the pooled connection would keep the queue locked
            cr.execute("SELECT pg_advisory_unlock(%s)", (_QUEUE_LOCK,))
            cr.commit()  # pylint: disable=invalid-commit

    def _process_queue_locked(self, commit, limit):
        now = fields.Datetime.now()
        jobs = self.sudo().search([("state", "=", "pending")], order="id", limit=limit)
        ready, blocked, reasons = sync_queue.select_ready(jobs, now)
        client = self.env["emboux.connector"]._client()
        sent = 0
        # runs of consecutive jobs of one parallel-safe kind go out together
        for run in sync_queue.runs(ready):
            run = [j for j in run if j.lane not in blocked]
            if not run:
                continue
            calls = [job._call_or_refusal() for job in run]
            bodies = [c[2] if isinstance(c, tuple) else None for c in calls]
            if len(run) > 1:
                with ThreadPoolExecutor(max_workers=min(sync_queue.PARALLEL, len(run))) as pool:
                    results = list(pool.map(lambda c: self._send(client, c), calls))
            else:
                results = [self._send(client, calls[0])]
            for job, body, (outcome, result) in zip(run, bodies, results):
                if outcome == "refused":
                    outcome, result = job._resolve_refusal(client, result, body or {})
                if outcome == "done":
                    job._mark_done(result)
                elif outcome == "refused":
                    job._mark_failed(result)
                else:
                    job._mark_retry(result)
                    blocked.add(job.lane)
                    reasons.setdefault(job.lane, str(result))
                sent += 1
            if commit:
                # each run's outcome is kept even if a later run crashes: a
                # change the platform applied must never be sent as new again
                self.env.cr.commit()  # pylint: disable=invalid-commit
        # records waiting behind a failed change of their lane say why
        for job in jobs:
            if job.state == "pending" and job.lane in reasons and not job.last_error:
                job.last_error = self.env._("Waiting for an earlier change of this customer: %s", reasons[job.lane])
                record = job._record()
                if record:
                    record._emboux_refresh_sync_state()
        if commit:
            # the dispatcher runs after the caller's commit (post-commit hook,
            # cron): nothing else would commit these last updates
            self.env.cr.commit()  # pylint: disable=invalid-commit
        return sent

    def _resolve_refusal(self, client, exc, body):
        """Make replays harmless: a 4xx that only says 'already done' is
        success (the kind's replay rule in services/platform_adapter.py)."""
        return platform_adapter.resolve_refusal(client, self.kind, self.method, exc, body)

    def _mark_done(self, result):
        vals = {"state": "done", "done_at": fields.Datetime.now(), "attempts": self.attempts + 1,
                "last_error": False, "secret_sealed": False}
        if isinstance(result, dict) and isinstance(result.get("id"), int) and 0 < result["id"] < 2 ** 31:
            vals["result_id"] = result["id"]
        self.sudo().write(vals)
        record = self._record()
        if record:
            record._emboux_job_done(self, result)
            record._emboux_refresh_sync_state()

    def _mark_failed(self, exc):
        self.sudo().write({"state": "failed", "attempts": self.attempts + 1, "last_error": str(exc),
                           "secret_sealed": False})
        record = self._record()
        if record:
            record._emboux_refresh_sync_state()
            record.sudo().message_post(body=self.env._("The mail platform refused a change (%(call)s): %(error)s",
                                              call=self.name, error=str(exc)))

    def _mark_retry(self, exc):
        delay = sync_queue.backoff_seconds(self.attempts)
        self.sudo().write({"attempts": self.attempts + 1, "last_error": str(exc),
                           "next_attempt_at": fields.Datetime.now() + timedelta(seconds=delay)})
        record = self._record()
        if record:
            record._emboux_refresh_sync_state()

    def _record(self):
        if not self.res_model or self.res_model not in self.env or not self.res_id:
            return None
        record = self.env[self.res_model].sudo().with_context(active_test=False).browse(self.res_id).exists()
        return record or None

    # --- user actions ------------------------------------------------------
    def action_retry(self):
        """Put failed or waiting jobs back at the head of their lane and send now."""
        todo = self.filtered(lambda j: j.state in ("pending", "failed"))
        todo.sudo().write({"state": "pending", "next_attempt_at": fields.Datetime.now()})
        self._schedule_after_commit()
        return True

    def action_cancel(self):
        self.filtered(lambda j: j.state in ("pending", "failed")).sudo().write(
            {"state": "cancelled", "secret_sealed": False})
        for job in self:
            record = job._record()
            if record:
                record._emboux_refresh_sync_state()
        return True

    @api.model
    def _cron_process_queue(self):
        """Cron "Email Hosting: sync queue": push pending changes (retries with back-off)."""
        self._process_queue()

    @api.autovacuum
    def _gc_done_jobs(self):
        limit = fields.Datetime.now() - timedelta(days=30)
        self.sudo().search([("state", "in", ("done", "cancelled")), ("done_at", "<", limit)]).unlink()

