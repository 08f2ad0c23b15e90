# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""End-to-end tests of the running Odoo of the dev stack (./dev up), run by
`./dev test` with Odoo's virtualenv. Settings come from var/dev.env."""

import os
import sys
import uuid
import xmlrpc.client
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
# tests/'s helpers (browser_helpers, dns_zones, stack_clients), after this folder's own modules
sys.path.append(str(ROOT / "tests"))


def _env():
    env = dict(os.environ)
    f = ROOT / "var" / "dev.env"
    if f.exists():
        for line in f.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env.setdefault(k, v.strip().strip("'"))
    return env


ENV = _env()


def master_api(env, method, path, **kw):
    """The connector's REST API with the master token (as Odoo calls it), e.g. to
    check what reached the platform or to play another integrator."""
    return requests.request(method, env["EMBOUX_API_URL"] + path, timeout=30,
                            headers={"Authorization": f"Bearer {env['EMBOUX_API_KEY']}"}, **kw)


class Odoo:
    """XML-RPC as an integrator scripts Odoo."""

    def __init__(self):
        self.url, self.db = ENV["ODOO_URL"], ENV["ODOO_DB"]
        self.login, self.password = ENV["ODOO_LOGIN"], ENV["ODOO_PASSWORD"]
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(self.db, self.login, self.password, {})
        assert self.uid, "cannot log into Odoo with ODOO_LOGIN/ODOO_PASSWORD of var/dev.env"
        self.models = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)

    def __call__(self, model, method, *args, **kw):
        return self.models.execute_kw(self.db, self.uid, self.password, model, method, list(args), kw)


@pytest.fixture(scope="session")
def env():
    for key in ("ODOO_URL", "ODOO_DB", "ODOO_LOGIN", "ODOO_PASSWORD", "EMBOUX_API_URL", "MAILDB_DSN"):
        assert ENV.get(key), f"{key} missing from var/dev.env: run ./dev up first"
    return ENV


@pytest.fixture(scope="session")
def odoo(env):
    return Odoo()


@pytest.fixture
def tenant(odoo):
    """A fresh tenant for the test, removed afterwards."""
    ref = "e2e-" + uuid.uuid4().hex[:8]
    partner = odoo("res.partner", "create", {"name": f"E2E customer {ref}", "is_company": True})
    tid = odoo("emboux.tenant", "create", {"name": f"E2E {ref}", "partner_id": partner, "partner_ref": ref,
                                          "mailboxes_per_domain": 0, "domains_allowed": 0})
    yield {"id": tid, "ref": ref, "name": f"E2E {ref}"}
    domains = odoo("emboux.domain", "search", [("tenant_id", "=", tid)], context={"active_test": False})
    if domains:
        odoo("emboux.domain", "unlink", domains)
    odoo("emboux.tenant", "unlink", [tid])
