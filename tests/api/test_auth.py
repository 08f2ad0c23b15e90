"""Authentication and roles: the four auth errors and 'Master token required'."""

import datetime as dt

import pytest

MASTER_ONLY = [
    ("PUT", "/domains/{d}/suspend", None),
    ("PUT", "/domains/{d}/activate", None),
    ("PUT", "/domains/{d}/owner", {"partner_ref": "x"}),
    ("PUT", "/domains/{d}/parent", {"wildcard": True}),
    ("PUT", "/domains/{d}/retention", {"retention_days": 3}),
    ("PUT", "/domains/{d}/transfer", {"transfer_monthly_mb": 3}),
    ("POST", "/api-keys/", {"partner_ref": "x"}),
    ("GET", "/api-keys/", None),
    ("PUT", "/api-keys/sometoken", {"active": False}),
    ("DELETE", "/api-keys/sometoken", None),
    ("GET", "/changes", None),
    ("PUT", "/api-keys/by-id/1", {"active": False}),
    ("DELETE", "/api-keys/by-id/1", None),
    ("GET", "/partners/", None),
    ("GET", "/partners/x", None),
    ("PUT", "/partners/x", {"domains_allowed": 1}),
    ("POST", "/retention/purge", None),
]


def test_missing_or_malformed_header(api):
    for header in [None, "", "Token abc", "Bearer", "Bearer ", "Basic abc"]:
        hdrs = {} if header is None else {"Authorization": header}
        r = api.session.get(api.base + "/domains/", headers=hdrs)
        assert r.status_code == 403, header
        assert r.json() == {"detail": "Invalid authorization header format",
                            "code": "auth_header_invalid"}


def test_scheme_is_case_insensitive(api):
    """RFC 9110: the auth scheme is case-insensitive; the token is not."""
    for scheme in ("bearer", "BEARER", "BeArEr"):
        r = api.session.get(api.base + "/domains/",
                            headers={"Authorization": f"{scheme} {api.master}"})
        assert r.status_code == 200, scheme
    r = api.session.get(api.base + "/domains/",
                        headers={"Authorization": f"Bearer {api.master.upper()}x"})
    assert r.json()["code"] == "auth_invalid_key"


def test_unknown_token(api):
    r = api.get("/domains/", token="not-a-real-token-at-all-0123456789")
    assert r.status_code == 403
    assert r.json()["detail"] == "Invalid API key"


def test_deactivated_and_expired_keys(api, make_tenant):
    t = make_tenant()
    assert t.get("/domains/").status_code == 200
    r = api.put(f"/api-keys/{t.token}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert t.get("/domains/").json()["detail"] == "API key is deactivated"
    api.put(f"/api-keys/{t.token}", json={"active": True})
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    assert api.put(f"/api-keys/{t.token}", json={"expires_at": past}).status_code == 200
    r = t.get("/domains/")
    assert r.status_code == 403 and r.json()["detail"] == "API key has expired"
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    api.put(f"/api-keys/{t.token}", json={"expires_at": future})
    assert t.get("/domains/").status_code == 200


@pytest.mark.parametrize("method,path,body", MASTER_ONLY)
def test_client_token_on_master_only_routes(tenant, method, path, body):
    d = tenant.domain()
    r = tenant.api.request(method, path.format(d=d), token=tenant.token, json=body)
    assert r.status_code == 403
    assert r.json()["detail"] == "Master token required"


def test_openapi_marks_master_only_operations(api):
    r = api.session.get(api.base + "/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for method, path, _ in MASTER_ONLY:
        oapath = (path.replace("{d}", "{name}").replace("sometoken", "{token}")
                  .replace("by-id/1", "by-id/{key_id}").replace("/partners/x", "/partners/{partner_ref}"))
        op = paths[oapath][method.lower()]
        assert op.get("x-required-role") == "master", (method, path)
    assert "x-required-role" not in paths["/domains/"]["post"]
    assert "x-required-role" not in paths["/users/"]["post"]
    # schemas generated from the request validators
    body = paths["/users/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" in body


def test_last_used_at_is_recorded(api, tenant):
    tenant.get("/domains/")
    keys = {k["partner_ref"]: k for k in api.get("/api-keys/").json()}
    assert keys[tenant.partner_ref]["last_used_at"] is not None
