# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Pull side of the sync: what others changed through the REST API (or
another ERP) comes back into Odoo, from the connector's master-wide change
feed `GET /changes?since=`. Records are written with the `emboux_no_sync`
context, so nothing is echoed back to the connector."""

import logging

from odoo import api, fields, models

from ..services.connector_client import ConnectorError

_logger = logging.getLogger(__name__)

SINCE_PARAM = "emboux.changes_since"
ORDER = {"domain": 0, "mailbox": 1, "alias": 2}
# Pulled records: no echo to the connector, and no chatter noise per record.
QUIET = {"emboux_no_sync": True, "active_test": False, "mail_create_nolog": True,
         "mail_create_nosubscribe": True, "mail_notrack": True}


class EmbouxChangeFeed(models.AbstractModel):
    _name = "emboux.change.feed"
    _description = "Email Hosting: changes pulled from the connector"

    @api.model
    def _cron_pull_changes(self):
        """Cron "Email Hosting: sync — pull changes made through the API"."""
        try:
            return self._pull_changes(commit=True)
        except ConnectorError as exc:
            _logger.warning("EmBoux pull sync skipped: %s", exc)
            return 0

    @api.model
    def _pull_changes(self, max_rounds=50, commit=False, chunk=200):
        """Apply the feed since the last `next_since`. With commit=True (cron)
        progress is committed every `chunk` changes; `since` only moves once
        a whole page is applied, and re-applying a change is harmless, so an
        interruption just replays the page."""
        icp = self.env["ir.config_parameter"].sudo()
        client = self.env["emboux.connector"]._client()
        applied = 0
        for _round in range(max_rounds):
            since = icp.get_param(SINCE_PARAM) or None
            feed = client.call("GET", "/changes", params={"since": since} if since else None)
            changes = sorted(feed.get("changes") or [], key=lambda c: (ORDER.get(c["resource"], 9), c["changed_at"]))
            for i, change in enumerate(changes, 1):
                try:
                    with self.env.cr.savepoint():
                        applied += self._apply_change(change)
                except Exception:  # one odd change must not stall the feed forever
                    _logger.exception("EmBoux pull sync: cannot apply %s", change)
                if commit and i % chunk == 0:
                    # a long feed is applied in chunks so that a crash does not
                    # lose (and redo) everything read so far (cron only)
                    self.env.cr.commit()  # pylint: disable=invalid-commit
            icp.set_param(SINCE_PARAM, feed["next_since"])
            if commit:
                # the cursor (next_since) and the records it covers go together
                self.env.cr.commit()  # pylint: disable=invalid-commit
            if not feed.get("truncated"):
                break
        return applied

    # --- applying one change ------------------------------------------------
    def _has_local_work(self, model, key, record):
        """Odoo has a change of its own for this record still to send. A record
        deleted in Odoo is gone, but its delete job (named after it) is not:
        without that, the feed would re-create what was just deleted."""
        where = [("res_id", "=", record.id)] if record else [("res_name", "=", key)]
        return bool(self.env["emboux.sync.job"].sudo().search_count(
            [("res_model", "=", model), ("state", "in", ("pending", "failed"))] + where))

    def _tenant(self, partner_ref):
        Tenant = self.env["emboux.tenant"].sudo().with_context(**QUIET)
        tenant = Tenant.search([("partner_ref", "=", partner_ref)], limit=1)
        if not tenant:
            partner = self.env["res.partner"].sudo().with_context(**QUIET).create({"name": partner_ref, "is_company": True})
            tenant = Tenant.create({"name": partner_ref, "partner_ref": partner_ref, "partner_id": partner.id})
        return tenant

    def _apply_change(self, change):
        res, key, cur = change["resource"], change["key"], change.get("current")
        models_ = {"domain": ("emboux.domain", "name"), "mailbox": ("emboux.mailbox", "email"),
                   "alias": ("emboux.alias", "source")}
        model, field = models_[res]
        Model = self.env[model].sudo().with_context(**QUIET)
        record = Model.search([(field, "=", key)], limit=1)
        if self._has_local_work(model, key, record):
            return 0  # Odoo's own change is on its way: it wins, and will be echoed back harmlessly
        now = fields.Datetime.now()
        synced = {"sync_state": "synced", "sync_error": False, "last_sync_at": now}
        if cur is None:  # deleted on the platform
            if record and record.active:
                record.write(dict(synced, active=False))
                record.message_post(body=self.env._("Deleted on the mail platform (through the API): archived."))
                if res == "alias" and record.mailbox_id.catch_all:
                    record.mailbox_id.with_context(emboux_no_sync=True).write({"catch_all": False})
                return 1
            return 0
        Domain = self.env["emboux.domain"].sudo().with_context(**QUIET)
        if res == "domain":
            if not cur.get("partner_ref"):
                return 0  # master-owned platform domain: not a customer's
            vals = dict(synced, active=True, state=cur.get("status") or "active",
                        retention_days=cur.get("retention_days") or 0,
                        transfer_monthly_mb=cur.get("transfer_monthly_mb") or 0, remote_id=cur.get("id"))
            if cur.get("ownership"):   # proved through the API (or vouched) since
                vals["ownership"] = cur["ownership"]
            tenant = self._tenant(cur["partner_ref"])
            if record:
                if record.tenant_id != tenant:
                    vals["tenant_id"] = tenant.id
                if not record.active and vals["state"] == "suspended":
                    # archived in Odoo = suspended on the platform (the echo of
                    # our own archive): it stays archived, with its own state
                    del vals["active"], vals["state"]
                record.write(vals)
                return 1
            Model.create(dict(vals, name=cur["name"], tenant_id=tenant.id))
            return 1
        domain = Domain.search([("name", "=", cur.get("domain"))], limit=1)
        if not domain:
            return 0
        if res == "mailbox":
            vals = dict(synced, active=bool(cur.get("active", True)), quota_mb=cur.get("quota_mb") or 0)
            # with its auto-reply as the platform has it (not sent back)
            if record:
                record.write(dict(vals, **record._emboux_vacation_vals(cur.get("vacation"))))
            else:
                record = Model.create(dict(vals, domain_id=domain.id, local_part=cur["email"].partition("@")[0]))
                record._emboux_store_vacation(cur.get("vacation"))
            return 1
        # alias
        vals = dict(synced, active=True, destinations=cur.get("destination") or "")
        if record:
            record.write(vals)
        else:
            record = Model.create(dict(vals, domain_id=domain.id, source=cur["source"]))
        if record.is_catch_all:
            box = self.env["emboux.mailbox"].sudo().with_context(**QUIET).search(
                [("email", "=", record.destinations)], limit=1)
            if box:
                record.write({"mailbox_id": box.id})
                box.write({"catch_all": True})
        return 1
