"""GET /health reports what an operator watches (issue 13): Postfix's queue
depth, OpenDKIM answering with a key for every signing domain, and the
scheduler's last run of each job -- against the dev stack's real Postfix,
OpenDKIM and mail DB. (The deployment's: tests/deploy/test_compose.py.)"""

import uuid

from emboux_connector.app import create_app
from emboux_connector.config import Config


def test_health_reports_queue_opendkim_and_scheduler(api, devenv):
    assert devenv.get("OPENDKIM_MILTER"), "./dev up writes OPENDKIM_MILTER (scripts/dev/stack-identity.sh)"
    body = api.session.get(api.base + "/health").json()
    q, dkim = body["queue"], body["opendkim"]
    assert q["ok"] is True and q["active"] >= 0 and q["deferred"] >= 0, q
    assert dkim["ok"] is True and dkim["reachable"] is True and dkim["missing_keys"] == [], dkim
    assert dkim["signing_domains"] >= 0 and dkim["unsigned_local_domains"] >= 0
    assert body["scheduler"]["ok"] is True and isinstance(body["scheduler"]["jobs"], dict)


def test_a_signing_domain_whose_key_is_unusable_is_named(api, sql, devenv, monkeypatch):
    """A key row OpenDKIM could not sign with (no PEM) makes the check fail
    and names the domain; checked in-process so that the live /health of the
    shared stack never sees it."""
    name = f"h{uuid.uuid4().hex[:10]}.emboux-test.net"
    assert api.post("/domains/", json={"name": name, "partner_ref": "health-watch"}).status_code == 201
    assert api.post(f"/domains/{name}/verify").status_code == 200   # makes its DKIM key
    key = sql("SELECT k.id, k.private_key FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
              "WHERE d.name = %s AND k.status = 'active'", (name,))
    assert key, "POST /verify made no active DKIM key"
    monkeypatch.setenv("OPENDKIM_MILTER", devenv["OPENDKIM_MILTER"])
    app = create_app(Config.from_env(devenv))
    try:
        sql("UPDATE dkim_keys SET private_key = 'not a key' WHERE id = %s", (key[0]["id"],))
        r = app.test_client().get("/health")
    finally:
        sql("UPDATE dkim_keys SET private_key = %s WHERE id = %s", (key[0]["private_key"], key[0]["id"]))
    dkim = r.get_json()["opendkim"]
    assert r.status_code == 503 and dkim["ok"] is False and name in dkim["missing_keys"], dkim
    assert dkim["reachable"] is True
    api.delete(f"/domains/{name}")


def test_a_port_that_is_no_milter_is_not_reachable(devenv, monkeypatch):
    """Postfix's port 25 accepts the connection but is no milter: a bare
    connect would pass, the handshake does not."""
    app = create_app(Config.from_env(devenv))
    monkeypatch.setenv("OPENDKIM_MILTER", f"inet:127.0.0.1:{devenv['SMTP_PORT']}")
    r = app.test_client().get("/health")
    dkim = r.get_json()["opendkim"]
    assert r.status_code == 503 and dkim["ok"] is False and dkim["reachable"] is False, dkim
    monkeypatch.setenv("OPENDKIM_MILTER", "inet:127.0.0.1:1")
    dkim = app.test_client().get("/health").get_json()["opendkim"]
    assert dkim["reachable"] is False and "127.0.0.1:1" in dkim["detail"], dkim
