"""Start-up reconciliation, atomicity, health and migrations."""

import os
import subprocess
import sys

from emboux_connector.app import create_app
from emboux_connector.config import Config


def test_domains_used_reconciled_at_start(devenv, tenant, sql):
    tenant.domain(), tenant.domain()
    sql("UPDATE partners SET domains_used = 17 WHERE partner_ref = %s", (tenant.partner_ref,))
    # A connector start (the real app factory, the real DB) cures the drift.
    create_app(Config.from_env(devenv)).extensions["emboux_db"].close()
    assert sql("SELECT domains_used FROM partners WHERE partner_ref = %s",
               (tenant.partner_ref,))[0]["domains_used"] == 2


def test_failure_half_way_leaves_nothing(tenant, sql):
    """An alias whose second destination is invalid must not leave the first."""
    d = tenant.domain()
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"x@{d}",
                                       "destination": f"ok@{d},bad dest@{d}"})
    assert r.status_code == 400
    assert sql("SELECT 1 FROM aliases WHERE source = %s", (f"x@{d}",)) == []


def test_health(api):
    r = api.session.get(api.base + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"]["ok"] is True


def test_health_reports_unreachable_db(devenv):
    env = dict(devenv, MAILDB_DSN="postgresql://nobody:nothing@127.0.0.1:1/none")
    app = create_app(Config.from_env(env))
    r = app.test_client().get("/health")
    assert r.status_code == 503
    assert r.get_json()["database"]["ok"] is False
    r = app.test_client().get("/domains/", headers={"Authorization": f"Bearer {env['EMBOUX_API_KEY']}"})
    assert r.status_code == 503 and r.get_json() == {"detail": "Mail DB unavailable", "code": "db_unavailable"}


def test_migrate_is_idempotent(devenv):
    out = subprocess.run([sys.executable, "-m", "emboux_connector.cli", "migrate"], env={**os.environ, **devenv},
                         capture_output=True, text=True, check=True)
    assert "applied 0 migration(s)" in out.stdout
