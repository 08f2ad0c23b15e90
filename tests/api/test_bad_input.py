"""Bad input of every kind: a 4xx naming the problem, nothing written, no 500."""

import pytest

@pytest.fixture
def nothing_written(sql):
    """No row appeared or changed anywhere in the API's tables while the test
    ran. Background jobs of the stack (Odoo's sync, the policy daemon) write
    elsewhere or nothing, so this holds on a running stack."""
    start = sql("SELECT clock_timestamp() AS t")[0]["t"]
    counts = ("SELECT (SELECT count(*) FROM partners) AS partners, (SELECT count(*) FROM api_keys) AS keys, "
              "(SELECT count(*) FROM domains) AS domains, (SELECT count(*) FROM mailboxes) AS mailboxes, "
              "(SELECT count(*) FROM aliases) AS aliases")
    before = sql(counts)
    yield
    assert sql(counts) == before
    assert sql("SELECT resource, key, action FROM changes WHERE changed_at >= %s", (start,)) == []


@pytest.fixture
def dom(tenant):
    d = tenant.domain()
    tenant.mailbox(d, "box")
    return d


def _check(r, *words):
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    detail = r.json()["detail"]
    for w in words:
        assert w in detail, (w, detail)


BAD_DOMAINS = ["", "   ", "nodot", "-lead.com", "trail-.com", "a..b.com", "spa ce.com", "x_y.com",
               "exa'mple.com", "a.b.c;DROP TABLE domains", "../../etc/passwd", "1.2.3.4",
               "a" * 64 + ".com", ("a" * 60 + ".") * 5 + "com", "xn--zz.com", "ex@mple.com", "☃.-x.com"]


@pytest.mark.parametrize("name", BAD_DOMAINS)
def test_invalid_domain_names(tenant, name, nothing_written):
    _check(tenant.post("/domains/", json={"name": name}), "name")


@pytest.mark.parametrize("body,field", [
    ({"name": 123}, "name"), ({"name": None}, "name"), ({"name": ["a.com"]}, "name"), ({}, "name"),
    ({"name": "x" * 5000}, "name"),
])
def test_wrong_types_for_domain(tenant, body, field, nothing_written):
    _check(tenant.post("/domains/", json=body), field)


@pytest.mark.parametrize("raw,ctype", [
    (b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"\xff\xfe", "application/json"),
    (b'"string"', "application/json"), (b"name=a.com", "application/x-www-form-urlencoded"),
])
def test_malformed_bodies(tenant, raw, ctype, nothing_written):
    r = tenant.api.session.post(tenant.api.base + "/domains/", data=raw, headers={
        "Authorization": f"Bearer {tenant.token}", "Content-Type": ctype})
    _check(r)


def test_oversized_body(tenant, nothing_written):
    r = tenant.post("/domains/", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"] == "Request body too large"


@pytest.mark.parametrize("email,word", [
    ("has space@{d}", "email"), ("@{d}", "email"), ("no-at-sign", "email"), ("a@@{d}", "email"),
    (".lead@{d}", "email"), ("dou..ble@{d}", "email"), ("quote'or'1'='1@{d}", "email"),
    ("semi;colon@{d}", "email"), ("x" * 65 + "@{d}", "email"), ("../../etc@{d}", "email"),
    ("percent%hack@{d}", "email"), ("new\nline@{d}", "email"),
])
def test_invalid_mailbox_addresses(tenant, dom, email, word, nothing_written):
    r = tenant.post("/users/", json={"domain_name": dom, "email": email.format(d=dom), "password": "xxxxxxxx1"})
    _check(r, word)


@pytest.mark.parametrize("body,word", [
    ({"password": "short"}, "password"), ({"password": 12345678}, "password"),
    ({"password": "x" * 300}, "password"), ({"password": "tab\tinside1"}, "password"),
    ({"quota_mb": "100"}, "quota_mb"), ({"quota_mb": -1}, "quota_mb"), ({"quota_mb": 1.5}, "quota_mb"),
    ({"quota_mb": True}, "quota_mb"), ({"email": None}, "email"), ({"domain_name": 7}, "domain_name"),
])
def test_invalid_mailbox_fields(tenant, dom, body, word, nothing_written):
    full = {"domain_name": dom, "email": f"new@{dom}", "password": "xxxxxxxx1", **body}
    _check(tenant.post("/users/", json=full), word)


@pytest.mark.parametrize("body,word", [
    ({"password": "short"}, "password"), ({}, "password"), ({"password": None}, "password"),
])
def test_invalid_password_change(tenant, dom, body, word, nothing_written):
    _check(tenant.put(f"/users/box@{dom}", json=body), word)


@pytest.mark.parametrize("path", [
    "/users/..%2F..%2Fetc%2Fpasswd", "/users/box@..", "/users/%27%20OR%201=1--",
    "/domains/..%2Fetc", "/domains/a%00b.com", "/aliases/%40", "/users/a%40b%40c.com/quota",
])
def test_path_traversal_and_garbage_in_paths(tenant, path, nothing_written):
    for method in ("GET", "DELETE"):
        r = tenant.api.request(method, path, token=tenant.token)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert "detail" in r.json()


@pytest.mark.parametrize("body,word", [
    ({"retention_days": "30"}, "retention_days"), ({"retention_days": -3}, "retention_days"),
    ({"retention_days": None}, "retention_days"), ({}, "retention_days"),
])
def test_invalid_retention(api, dom, body, word, nothing_written):
    _check(api.put(f"/domains/{dom}/retention", json=body), word)


@pytest.mark.parametrize("body,word", [
    ({"partner_ref": ""}, "partner_ref"), ({"partner_ref": "has space"}, "partner_ref"),
    ({"partner_ref": "p", "token": "short"}, "token"), ({"partner_ref": "p", "domains_allowed": -1}, "domains_allowed"),
    ({"partner_ref": "p", "active": "yes"}, "active"), ({"partner_ref": "p", "expires_at": "soon"}, "expires_at"),
    ({"partner_ref": "p", "token": "white space" * 4}, "token"),
])
def test_invalid_api_keys(api, body, word, nothing_written):
    _check(api.post("/api-keys/", json=body), word)


def test_query_string_types(tenant, nothing_written):
    _check(tenant.get("/users/?domain_id=abc"), "domain_id")
    _check(tenant.get("/aliases/?domain_id=-1"), "domain_id")


def test_unknown_route_and_method_are_json(tenant):
    r = tenant.get("/nope")
    assert r.status_code == 404 and r.json()["detail"] == "Not Found"
    r = tenant.api.request("PATCH", "/domains/", token=tenant.token)
    assert r.status_code == 405 and "detail" in r.json()
