# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Shared helpers of the emboux_core tests. They run against the real
connector and the real mail DB of the dev stack (`./dev test` exports
EMBOUX_API_URL, EMBOUX_API_KEY and MAILDB_DSN from var/dev.env)."""

import os
import uuid

import psycopg2
import requests

from odoo.tests.common import TransactionCase

API_URL = os.environ.get("EMBOUX_API_URL", "")
API_KEY = os.environ.get("EMBOUX_API_KEY", "")
MAILDB_DSN = os.environ.get("MAILDB_DSN", "")
TEST_TLD = "emboux-odoo.test"


def require_stack():
    if not (API_URL and API_KEY and MAILDB_DSN):
        raise RuntimeError("EMBOUX_API_URL, EMBOUX_API_KEY and MAILDB_DSN are required: run `./dev test`")


def uniq(prefix="x"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def maildb(sql, params=()):
    """Rows from the mail DB, read directly (not through the connector)."""
    conn = psycopg2.connect(MAILDB_DSN)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def api(method, path, token=None, **kw):
    """The REST API as another integrator would call it."""
    return requests.request(method, API_URL + path, timeout=15,
                            headers={"Authorization": f"Bearer {token or API_KEY}"}, **kw)


def tables_containing(env, needle):
    """Every (table, column) of Odoo's database holding `needle` in clear."""
    env.flush_all()
    cr = env.cr
    cr.execute("""SELECT c.table_name, c.column_name FROM information_schema.columns c
                  JOIN information_schema.tables t ON t.table_name = c.table_name
                   AND t.table_schema = c.table_schema AND t.table_type = 'BASE TABLE'
                  WHERE c.table_schema = 'public'
                    AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')""")
    found = []
    for table, column in cr.fetchall():
        cr.execute(f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE %s LIMIT 1', (f"%{needle}%",))
        if cr.fetchone():
            found.append((table, column))
    return found


def sealed_secrets_holding(env, needle):
    """Ids of the sync jobs whose sealed secret, once unsealed, holds `needle`."""
    from ..services import secrets_box
    env.flush_all()
    env.cr.execute("SELECT id, secret_sealed FROM emboux_sync_job WHERE secret_sealed IS NOT NULL")
    return [jid for jid, sealed in env.cr.fetchall()
            if needle in (secrets_box.unseal(env.cr.dbname, sealed) or "")]


def set_connector(env, url=None):
    icp = env["ir.config_parameter"].sudo()
    icp.set_param("emboux.connector_url", url or API_URL)
    icp.set_param("emboux.master_token", API_KEY)


class EmbouxCase(TransactionCase):
    """Tests in one (rolled back) Odoo transaction. The sync queue is sent
    explicitly with `flush_queue()` (the post-commit hook never fires in a
    transaction that never commits); what reaches the connector is real and
    is cleaned up through the API."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_stack()
        set_connector(cls.env)
        cls.partner = cls.env["res.partner"].create({"name": "EmBoux test customer", "is_company": True})
        cls.tenant = cls.env["emboux.tenant"].create({
            "name": "Test tenant", "partner_id": cls.partner.id, "partner_ref": uniq("t-"),
            "domains_allowed": 20, "mailboxes_per_domain": 5, "aliases_per_mailbox": 3})
        cls.flush_queue()
        assert cls.tenant.sync_state == "synced", cls.tenant.sync_error

    @classmethod
    def flush_queue(cls):
        return cls.env["emboux.sync.job"]._process_queue(commit=False)

    def new_domain(self, tenant=None, **kw):
        name = f"{uniq('d')}.{TEST_TLD}"
        self.addCleanup(api, "DELETE", f"/domains/{name}")
        return self.env["emboux.domain"].create(dict({"name": name, "tenant_id": (tenant or self.tenant).id}, **kw))

    def hosted_domain(self):
        """A domain on the platform, vouched for by the manager (it receives
        mail, its reports are stored)."""
        dom = self.new_domain()
        self.flush_queue()
        self.env.cr.precommit.run()
        dom.action_vouch_ownership()
        self.flush_queue()
        self.assertEqual((dom.sync_state, dom.ownership), ("synced", "vouched"), dom.sync_error)
        return dom

    def pending_jobs(self, record=None):
        dom = [("state", "=", "pending")]
        if record is not None:
            dom += [("res_model", "=", record._name), ("res_id", "=", record.id)]
        return self.env["emboux.sync.job"].search(dom)

    @staticmethod
    def mail_domain(name):
        rows = maildb("SELECT name, partner_ref, status, retention_days, transfer_monthly_mb "
                      "FROM domains WHERE name = %s", (name,))
        return rows[0] if rows else None
