"""Secrets stay secret: not in the access log, not in any response after creation."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_tokens_never_reach_the_access_log(api, tenant):
    api.put(f"/api-keys/{tenant.token}", json={"domains_allowed": 11})
    tenant.get(f"/api-keys/{tenant.token}/usage")
    api.get(f"/api-keys/{tenant.token}-unknown/usage")
    log = (ROOT / "var" / "log" / "connector-access.log").read_text()
    assert "/api-keys/***" in log
    assert tenant.token not in log
    assert api.master not in log


def test_token_and_password_never_returned(api, tenant, sql):
    d = tenant.domain()
    box = tenant.mailbox(d, password="a-long-secret-passw0rd")
    bodies = [api.get("/api-keys/").text, api.get(f"/api-keys/{tenant.token}/usage").text,
              tenant.get("/users/").text, tenant.get(f"/users/{box}").text, api.get("/changes").text,
              api.put(f"/api-keys/{tenant.token}", json={"active": True}).text]
    for body in bodies:
        assert tenant.token not in body
        assert "a-long-secret-passw0rd" not in body and "SHA512-CRYPT" not in body
