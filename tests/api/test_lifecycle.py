"""Start-up reconciliation, atomicity, health and migrations."""

import os
import subprocess
import sys
import time

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


def test_pooled_connections_closed_by_the_server_are_replaced(devenv, sql):
    """After PostgreSQL restarts, every pooled connection is dead: none of them
    may cost a request a 503 (the deployment's restart test met exactly that)."""
    app = create_app(Config.from_env(devenv), reconcile=False)
    db = app.extensions["emboux_db"]
    client = app.test_client()
    master = {"Authorization": f"Bearer {devenv['EMBOUX_API_KEY']}"}
    try:
        assert client.get("/domains/", headers=master).status_code == 200
        pids = [conn.get_backend_pid() for conn in db._get_pool()._pool]
        assert len(pids) == db.maxconn
        sql("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        for _ in range(200):   # the backends exit asynchronously
            if not sql("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the terminated backends did not exit")
        for _ in range(db.maxconn + 2):
            r = client.get("/domains/", headers=master)
            assert r.status_code == 200, r.get_json()
    finally:
        db.close()
