"""Bad input of every kind: a 4xx naming the problem, nothing written, no 500."""

import threading
import uuid

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


# --- Out-of-range and odd ISO dates: 400 or a correct answer, never a 500 ------

ODD_SINCE = ["0888-11-21T15:37:12+21:52", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
             "0000-01-01T00:00:00Z", "2020-13-01T00:00:00Z", "2020-01-01T00:00:00+24:00", "1e400",
             "-2020-01-01", "2020-01-01T00:00:00+15:59", "0001-01-01", "9999-12-31T23:59:59Z"]


@pytest.mark.parametrize("since", ODD_SINCE)
def test_odd_since_on_usage_and_changes(api, tenant, since, nothing_written):
    for who, path in ((tenant, f"/api-keys/{tenant.token}/usage"), (api, "/changes")):
        r = who.get(path, params={"since": since})
        assert r.status_code in (200, 400), (path, since, r.status_code, r.text)
        if r.status_code == 400:
            assert r.json()["code"] == "invalid_field" and r.json()["detail"].startswith("since:")
        else:  # echoed in UTC, which PostgreSQL and Python both hold
            assert r.json()["since"].endswith("+00:00")


def test_since_with_a_large_offset_means_the_same_instant(tenant):
    """+21:52 is beyond PostgreSQL's offsets but a real instant: 17:45:12 UTC the day before."""
    r = tenant.get(f"/api-keys/{tenant.token}/usage", params={"since": "0888-11-21T15:37:12+21:52"})
    assert r.status_code == 200, r.text
    assert r.json()["since"] == "0888-11-20T17:45:12+00:00"


@pytest.mark.parametrize("expires_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00",
                                        "0000-12-31T00:00:00Z", "10000-01-01T00:00:00Z"])
def test_out_of_range_expiry_is_refused_everywhere(api, tenant, expires_at, nothing_written):
    key_id = api.get("/api-keys/").json()[-1]["id"]
    for method, path, body in (
            ("POST", "/api-keys/", {"partner_ref": tenant.partner_ref, "expires_at": expires_at}),
            ("PUT", f"/api-keys/{tenant.token}", {"expires_at": expires_at}),
            ("PUT", f"/api-keys/by-id/{key_id}", {"expires_at": expires_at})):
        r = api.request(method, path, json=body)
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        assert r.json()["code"] == "invalid_field" and r.json()["detail"].startswith("expires_at:")


def test_expiry_with_a_large_offset_is_stored_in_utc(api, unique_ref):
    r = api.post("/api-keys/", json={"partner_ref": unique_ref, "expires_at": "2999-01-01T05:00:00+21:30"})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] == "2998-12-31T07:30:00+00:00"
    token = r.json()["token"]
    r = api.put(f"/api-keys/{token}", json={"expires_at": "0001-01-01T00:00:00-01:00"})
    assert r.status_code == 200 and r.json()["expires_at"] == "0001-01-01T01:00:00+00:00"
    assert api.get(f"/api-keys/{token}/usage").status_code == 200   # readable back
    assert api.get("/domains/", token=token).json()["code"] == "auth_key_expired"


# --- Strings PostgreSQL cannot store: a lone UTF-16 surrogate, NUL --------------

BAD_CHARS = ["\ud800", "\udfff", "a\x00b"]


def _string_fields(tenant, dom):
    """(token, method, path, body, field): every string field of every body."""
    t, m = tenant.token, None
    box = f"box@{dom}"
    return [
        (m, "POST", "/api-keys/", {"partner_ref": "{x}"}, "partner_ref"),
        (m, "POST", "/api-keys/", {"partner_ref": "p1", "token": "{x}" + "a" * 30}, "token"),
        (m, "POST", "/domains/", {"name": "ok.example.com", "partner_ref": "{x}"}, "partner_ref"),
        (t, "POST", "/domains/", {"name": "{x}.example.com"}, "name"),
        (m, "PUT", f"/domains/{dom}/owner", {"partner_ref": "{x}"}, "partner_ref"),
        (m, "PUT", f"/domains/{dom}/parent", {"parent": "{x}.com"}, "parent"),
        (t, "POST", "/users/", {"domain_name": dom, "email": f"n{{x}}@{dom}", "password": "long enough 1"}, "email"),
        (t, "POST", "/users/", {"domain_name": "{x}", "email": f"n@{dom}", "password": "long enough 1"},
         "domain_name"),
        (t, "POST", "/users/", {"domain_name": dom, "email": f"n@{dom}", "password": "long {x} enough"}, "password"),
        (t, "PUT", f"/users/{box}", {"password": "long {x} enough"}, "password"),
        (t, "PUT", f"/users/{box}", {"spoofing_whitelist": ["ok.com", "{x}"]}, "spoofing_whitelist[1]"),
        (t, "POST", "/aliases/", {"domain_name": dom, "source": f"s@{dom}", "destination": "{x}@b.com"},
         "destination"),
        (t, "POST", "/aliases/", {"domain_name": dom, "source": f"s{{x}}@{dom}", "destination": "a@b.com"},
         "source"),
        (m, "PUT", f"/domains/{dom}/outbound", {"outbound_status_reason": "why {x}"}, "outbound_status_reason"),
        (m, "POST", f"/domains/{dom}/outbound/increment", {"message_id": "<{x}@x>"}, "message_id"),
        (m, "POST", "/outbound/reset-daily", {"day": "{x}"}, "day"),
        (m, "POST", "/outbound/reset-monthly", {"month": "{x}"}, "month"),
        (m, "POST", f"/domains/{dom}/verify", {"provider": "{x}"}, "provider"),
        (m, "POST", "/webhooks/mailgun", {"signature": {"timestamp": "1", "token": "{x}", "signature": "0"}},
         "signature.token"),
        (m, "POST", "/webhooks/ses", {"Type": "Notification", "Message": "{x}"}, "Message"),
        (t, "POST", "/domains/", {"name": "ok.example.com", "{x}": 1}, "body"),
    ]


def _fill(value, x):
    if isinstance(value, str):
        return value.replace("{x}", x)
    if isinstance(value, dict):
        return {_fill(k, x): _fill(v, x) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, x) for v in value]
    return value


@pytest.mark.parametrize("bad", BAD_CHARS, ids=["high-surrogate", "low-surrogate", "nul"])
def test_unstorable_characters_in_every_string_field(api, tenant, dom, bad, nothing_written):
    for token, method, path, body, field in _string_fields(tenant, dom):
        r = api.request(method, path, token=token, json=_fill(body, bad))
        assert r.status_code == 400, (method, path, field, r.status_code, r.text)
        assert r.json() == {"detail": f"{field}: NUL characters and lone UTF-16 surrogates are not allowed",
                            "code": "invalid_field"}, (method, path)


@pytest.mark.parametrize("path", [
    "/partners/p%00", "/api-keys/abc%00def/usage", "/suppression/check/a%00@b.com",
    "/changes?since=2020-01-01%00", "/suppression?domain=a%00.com",
    "/outbound/billing?month=2020-01%00", "/users/?domain_id=1%00"])
def test_nul_in_paths_and_query_strings(api, path, nothing_written):
    r = api.get(path)
    assert r.status_code in (400, 404), (path, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")


def test_nul_in_a_legacy_mailgun_form(api, nothing_written):
    r = api.session.post(api.base + "/webhooks/mailgun", data={
        "timestamp": "1", "token": "a\x00b", "signature": "0" * 64, "event": "complained"})
    assert r.status_code == 400 and r.json()["detail"].startswith("signature.token:")


# --- Concurrent first-time inserts --------------------------------------------

def test_parallel_verify_of_a_new_domain(api, tenant, sql):
    """Three (then six) parallel POST verify on a domain that never had an
    identity: all succeed, and exactly one signing key exists."""
    import concurrent.futures

    for n in (3, 6):
        name = f"v{uuid.uuid4().hex[:10]}.emboux-test.net"
        r = api.post("/domains/", json={"name": name, "partner_ref": tenant.partner_ref})
        assert r.status_code == 201, r.text
        barrier = threading.Barrier(n)

        def verify(_, barrier=barrier, name=name):
            barrier.wait()
            return tenant.post(f"/domains/{name}/verify", json={})

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(verify, range(n)))
        assert [a.status_code for a in answers] == [200] * n, [a.text for a in answers]
        assert sql("SELECT count(*) AS n FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
                   "WHERE d.name = %s AND k.status = 'active'", (name,))[0]["n"] == 1
        assert len({a.json()["dns_records"][0]["value"] for a in answers}) == 1


def test_a_final_newline_is_not_a_valid_ending(api, tenant, dom, nothing_written):
    """A regex ending in $ also matches before a final newline: these slipped through."""
    _check(tenant.post("/users/", json={"domain_name": dom, "email": f"new\n@{dom}", "password": "long enough 1"}),
           "email")
    _check(api.post("/api-keys/", json={"partner_ref": "p\n"}), "partner_ref")
    _check(api.post("/api-keys/", json={"partner_ref": "p", "token": "a" * 30 + "\n"}), "token")
    _check(api.put("/partners/p%0A", json={}), "partner_ref")
    _check(api.post("/domains/", json={"name": f"x{dom}", "partner_ref": "p\n"}), "partner_ref")
    _check(api.put(f"/domains/{dom}/owner", json={"partner_ref": f"{tenant.partner_ref}\n"}), "partner_ref")


def test_whitespace_is_not_a_json_body(api, tenant):
    """No body means no fields; a body of blanks is not JSON (found by the fuzzer)."""
    dom = f"w{uuid.uuid4().hex[:10]}.emboux-test.net"
    assert api.post("/domains/", json={"name": dom, "partner_ref": tenant.partner_ref}).status_code == 201
    r = tenant.api.session.post(tenant.api.base + f"/domains/{dom}/verify", data=b"  \n ", headers={
        "Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "malformed_json", r.text
    r = tenant.api.session.post(tenant.api.base + f"/domains/{dom}/verify", headers={
        "Authorization": f"Bearer {tenant.token}"})
    assert r.status_code == 200, r.text
