"""Tenant isolation, tested from the other tenant's side: every endpoint
called with tenant B's token on tenant A's resources gets 404 (or 403 for a
master-only route) and changes nothing."""

import pytest


@pytest.fixture
def a_and_b(make_tenant):
    a, b = make_tenant(), make_tenant()
    d = a.domain()
    box = a.mailbox(d, "alice")
    r = a.post("/aliases/", json={"domain_name": d, "source": f"team@{d}", "destination": box})
    assert r.status_code == 201
    a.post("/aliases/", json={"domain_name": d, "source": f"@{d}", "destination": box})
    return a, b, d, box


CALLS = [
    ("GET", "/domains/{d}", None, 404),
    ("DELETE", "/domains/{d}", None, 404),
    ("GET", "/domains/{d}/retention", None, 404),
    ("GET", "/domains/{d}/transfer", None, 404),
    ("PUT", "/domains/{d}/suspend", None, 403),
    ("PUT", "/domains/{d}/activate", None, 403),
    ("PUT", "/domains/{d}/owner", {"partner_ref": "{b}"}, 403),
    ("PUT", "/domains/{d}/parent", {"wildcard": True}, 403),
    ("PUT", "/domains/{d}/retention", {"retention_days": 1}, 403),
    ("PUT", "/domains/{d}/transfer", {"transfer_monthly_mb": 1}, 403),
    ("POST", "/users/", {"domain_name": "{d}", "email": "mallory@{d}", "password": "xxxxxxxx1"}, 404),
    ("GET", "/users/{box}", None, 404),
    ("PUT", "/users/{box}", {"password": "stolen-passw0rd"}, 404),
    ("DELETE", "/users/{box}", None, 404),
    ("GET", "/users/{box}/quota", None, 404),
    ("PUT", "/users/{box}/quota", {"quota_mb": 1}, 404),
    ("POST", "/aliases/", {"domain_name": "{d}", "source": "team@{d}", "destination": "m@evil.net"}, 404),
    ("POST", "/aliases/", {"domain_name": "{d}", "source": "@{d}", "destination": "m@evil.net"}, 404),
    ("GET", "/aliases/team@{d}", None, 404),
    ("DELETE", "/aliases/team@{d}", None, 404),
    ("DELETE", "/aliases/@{d}", None, 404),
    ("GET", "/api-keys/{atoken}/usage", None, 404),
    ("PUT", "/api-keys/{atoken}", {"active": False}, 403),
    ("DELETE", "/api-keys/{atoken}", None, 403),
    ("POST", "/domains/", {"name": "{d}"}, 400),  # exists: refused, not revealed as owned
    # outbound control and sending identity
    ("GET", "/domains/{d}/outbound", None, 404),
    ("PUT", "/domains/{d}/outbound", {"outbound_daily_limit": 5}, 404),
    ("POST", "/domains/{d}/outbound/increment", None, 403),
    ("POST", "/domains/{d}/verify", None, 404),
    ("GET", "/domains/{d}/verify-status", None, 404),
    ("POST", "/domains/{d}/ses-verify", None, 404),
    ("GET", "/domains/{d}/ses-status", None, 404),
    ("POST", "/domains/sub.{d}/register-subdomain", None, 404),
    ("GET", "/domains/{d}/dns-check", None, 404),
    ("POST", "/domains/{d}/dkim/rotate", None, 403),
    ("PUT", "/users/{box}", {"spoofing_whitelist": ["*"]}, 404),
    ("PUT", "/users/{box}", {"submission_disabled": True}, 404),
]


def _fill(value, ctx):
    if isinstance(value, str):
        return value.format(**ctx)
    if isinstance(value, dict):
        return {k: _fill(v, ctx) for k, v in value.items()}
    return value


def _snapshot(sql, d):
    return (sql("SELECT * FROM domains WHERE name = %s OR name LIKE %s ORDER BY name", (d, "%." + d)),
            sql("SELECT m.* FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
                "WHERE d.name = %s ORDER BY email", (d,)),
            sql("SELECT source, destination FROM aliases a JOIN domains d ON d.id = a.domain_id "
                "WHERE d.name = %s ORDER BY source, destination", (d,)),
            sql("SELECT active FROM api_keys "
                "WHERE partner_ref = (SELECT partner_ref FROM domains WHERE name = %s)", (d,)))


@pytest.mark.parametrize("method,path,body,status", CALLS, ids=[f"{m} {p}" for m, p, _, _ in CALLS])
def test_other_tenant_cannot_touch(a_and_b, sql, method, path, body, status):
    a, b, d, box = a_and_b
    ctx = {"d": d, "box": box, "b": b.partner_ref, "atoken": a.token}
    before = _snapshot(sql, d)
    r = b.api.request(method, _fill(path, ctx), token=b.token, json=_fill(body, ctx))
    assert r.status_code == status, r.text
    assert set(r.json()) == {"detail", "code"}
    assert box not in r.text or method == "POST"
    assert _snapshot(sql, d) == before


def test_lists_show_nothing_of_the_other_tenant(a_and_b):
    a, b, d, box = a_and_b
    assert b.get("/domains/").json() == []
    assert b.get("/users/").json() == []
    assert b.get("/aliases/").json() == []
    dom_id = a.get(f"/domains/{d}").json()["id"]
    assert b.get(f"/users/?domain_id={dom_id}").json() == []
    assert b.get(f"/aliases/?domain_id={dom_id}").json() == []
    usage = b.get(f"/api-keys/{b.token}/usage").json()
    assert usage["counts"] == {"domains": 0, "mailboxes": 0, "aliases": 0}
    assert d not in str(usage["changes"]) and box not in str(usage["changes"])
    # and A still sees all of its own
    assert [x["name"] for x in a.get("/domains/").json()] == [d]
