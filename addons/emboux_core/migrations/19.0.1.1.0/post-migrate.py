# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""19.0.1.1.0: Odoo keeps no copy of an API token any more.

- `emboux.api.key.token_sealed` goes: each key's connector id is learnt
  through one last call by token, queued like any change (the token waits
  sealed in that job, and is wiped once sent); later calls use
  `/api-keys/by-id/{id}`.
- `emboux.tenant.quota_handle` (an inactive helper key holding the quotas)
  goes: quotas are set with `PUT /partners/{ref}`; the helper key is deleted
  from the connector, and the handle is scrubbed from past jobs' paths.
"""

import logging

from odoo import SUPERUSER_ID, api
from odoo.tools.sql import column_exists

from odoo.addons.emboux_core.services import secrets_box
from odoo.addons.emboux_core.services.connector_client import ConnectorError

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {"active_test": False})
    Job = env["emboux.sync.job"]
    if column_exists(cr, "emboux_api_key", "token_sealed"):
        cr.execute("SELECT id, token_sealed FROM emboux_api_key "
                   "WHERE token_sealed IS NOT NULL AND COALESCE(connector_key_id, 0) = 0")
        for key_id, sealed in cr.fetchall():
            token = secrets_box.unseal(cr.dbname, sealed)
            key = env["emboux.api.key"].browse(key_id)
            if token:
                key._emboux_enqueue("api_key.resolve", "PUT", "/api-keys/{token}", {},
                                    secret=token, secret_field="token")
        cr.execute("ALTER TABLE emboux_api_key DROP COLUMN token_sealed")
    _match_remaining_keys(env)
    if column_exists(cr, "emboux_tenant", "quota_handle"):
        cr.execute("SELECT id, partner_ref, quota_handle FROM emboux_tenant WHERE quota_handle IS NOT NULL")
        for tenant_id, ref, handle in cr.fetchall():
            cr.execute("UPDATE emboux_sync_job SET path = %s WHERE path = %s",
                       (f"/partners/{ref}", f"/api-keys/{handle}"))
            tenant = env["emboux.tenant"].browse(tenant_id)
            Job._enqueue(tenant, "api_key.delete", "DELETE", "/api-keys/{token}",
                         secret=handle, secret_field="token")
        cr.execute("ALTER TABLE emboux_tenant DROP COLUMN quota_handle")


def _match_remaining_keys(env):
    """Keys with neither a sealed token nor an id queued for resolution (e.g.
    the field was dropped before this script ran): match them in the
    connector's list by tenant and token hint, when that match is unique."""
    keys = env["emboux.api.key"].search([("connector_key_id", "=", False)])
    queued = set(env["emboux.sync.job"].search([("res_model", "=", "emboux.api.key"),
                                                ("kind", "=", "api_key.resolve")]).mapped("res_id"))
    keys = keys.filtered(lambda k: k.id not in queued and k.token_hint)
    if not keys:
        return
    try:
        remote = env["emboux.connector"]._client().call("GET", "/api-keys/") or []
    except ConnectorError as exc:
        _logger.warning("emboux_core migration: the connector cannot list API keys (%s): %d key(s) keep no "
                        "connector id; their updates will wait for one", exc, len(keys))
        return
    for key in keys:
        hits = [r for r in remote if r.get("partner_ref") == key.tenant_id.partner_ref
                and (r.get("token") or "").startswith(key.token_hint + "...")]
        if len(hits) == 1:
            key.with_context(emboux_no_sync=True).write({"connector_key_id": hits[0]["id"]})
        else:
            _logger.warning("emboux_core migration: API key %s (%s...) not matched on the connector",
                            key.id, key.token_hint)
