"""Seed 004's `POST /mailboxes` (issue 14): idempotent provisioning. The same
request again answers 200 with the existing mailbox and changes nothing; an
`Idempotency-Key` makes a retry safe even with a different body; the other
tenant can neither provision into a domain nor replay someone else's key."""

import uuid

import pytest

PASSWORD = "correct horse 1"


def _row(sql, email):
    rows = sql("SELECT id, password_hash, quota_mb, updated_at FROM mailboxes WHERE email = %s", (email,))
    return rows[0] if rows else None


def test_same_request_twice(tenant, sql):
    domain = tenant.domain()
    email = f"alice@{domain}"
    r = tenant.post("/mailboxes", json={"email": email, "password": PASSWORD, "quota_mb": 50})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["created"] is True and first["email"] == email and first["quota_mb"] == 50
    before = _row(sql, email)
    r = tenant.post("/mailboxes", json={"email": email, "password": PASSWORD, "quota_mb": 50})
    assert r.status_code == 200, r.text
    assert r.json() == {**first, "created": False}
    assert _row(sql, email) == before
    # the native API sees the same mailbox
    assert tenant.get(f"/users/{email}").json()["id"] == first["id"]
    # without quota_mb the request asks nothing about it: still the same mailbox
    assert tenant.post("/mailboxes", json={"email": email.upper(), "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("change", [{"password": "another horse 2"}, {"quota_mb": 51}])
def test_a_different_request_for_an_existing_mailbox_changes_nothing(tenant, sql, change):
    domain = tenant.domain()
    email = f"alice@{domain}"
    assert tenant.post("/mailboxes", json={"email": email, "password": PASSWORD, "quota_mb": 50}).status_code == 201
    before = _row(sql, email)
    r = tenant.post("/mailboxes", json={"email": email, "password": PASSWORD, "quota_mb": 50, **change})
    assert r.status_code == 409 and r.json()["code"] == "mailbox_exists_different", r.text
    assert _row(sql, email) == before


def test_idempotency_key_replays_the_first_answer_even_with_another_body(tenant, sql):
    domain = tenant.domain()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    r1 = tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD}, headers=key)
    assert r1.status_code == 201 and "Idempotent-Replayed" not in r1.headers
    r2 = tenant.post("/mailboxes", json={"email": f"b@{domain}", "password": "other password 3"}, headers=key)
    assert r2.status_code == 201 and r2.json() == r1.json()
    assert r2.headers["Idempotent-Replayed"] == "true" and r2.headers["Idempotent-Body-Differs"] == "true"
    assert _row(sql, f"b@{domain}") is None                     # nothing done for the second body
    r3 = tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD}, headers=key)
    assert r3.status_code == 201 and "Idempotent-Body-Differs" not in r3.headers
    # a new key runs again: the mailbox exists as asked
    r4 = tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD},
                     headers={"Idempotency-Key": f"k-{uuid.uuid4()}"})
    assert r4.status_code == 200 and r4.json()["created"] is False


def test_a_failed_first_request_is_not_remembered(tenant, sql):
    domain = tenant.domain()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    r = tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": "short"}, headers=key)
    assert r.status_code == 400
    r = tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD}, headers=key)
    assert r.status_code == 201, r.text


def test_other_tenant(make_tenant, sql):
    owner, other = make_tenant(), make_tenant()
    domain = owner.domain()
    key = {"Idempotency-Key": "shared-key-" + uuid.uuid4().hex}
    assert owner.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD}, headers=key).status_code == 201
    # into the owner's domain: 404, nothing created or changed
    before = _row(sql, f"a@{domain}")
    for body in ({"email": f"a@{domain}", "password": PASSWORD}, {"email": f"z@{domain}", "password": PASSWORD}):
        r = other.post("/mailboxes", json=body)
        assert r.status_code == 404 and r.json()["code"] == "domain_not_found"
    assert _row(sql, f"a@{domain}") == before and _row(sql, f"z@{domain}") is None
    # the same key from the other tenant is the other tenant's own key: no replay of the owner's answer
    mine = other.domain()
    r = other.post("/mailboxes", json={"email": f"a@{mine}", "password": PASSWORD}, headers=key)
    assert r.status_code == 201 and r.json()["email"] == f"a@{mine}" and "Idempotent-Replayed" not in r.headers


@pytest.mark.parametrize("body", [
    {}, {"email": "not-an-address", "password": PASSWORD}, {"email": 7, "password": PASSWORD},
    {"email": "a@x.example"}, {"password": PASSWORD}, {"email": "a" * 700 + "@x.example", "password": PASSWORD},
    {"email": "a@x.example", "password": "x" * 300}, {"email": "a@x.example", "password": PASSWORD, "quota_mb": -1},
])
def test_bad_input_stores_nothing(tenant, body, sql):
    domain = tenant.domain()
    if isinstance(body.get("email"), str) and body["email"].endswith("@x.example"):
        body = {**body, "email": body["email"].replace("x.example", domain)}
    r = tenant.post("/mailboxes", json=body)
    assert r.status_code == 400, r.text
    assert sql("SELECT 1 FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = %s", (domain,)) == []


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there", "é"])
def test_malformed_idempotency_key(tenant, key, sql):
    domain = tenant.domain()
    r = tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD},
                    headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_invalid", r.text
    assert _row(sql, f"a@{domain}") is None


def test_alias_address_and_quota(make_tenant, sql):
    t = make_tenant(mailboxes_per_domain=1)
    domain = t.domain()
    assert t.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD}).status_code == 201
    r = t.post("/mailboxes", json={"email": f"b@{domain}", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["code"] == "quota_exceeded"
    assert t.post("/aliases/", json={"domain_name": domain, "source": f"info@{domain}",
                                     "destination": f"a@{domain}"}).status_code == 201
    r = t.post("/mailboxes", json={"email": f"info@{domain}", "password": PASSWORD})
    assert r.status_code == 400 and r.json()["code"] == "email_exists"


def test_parallel_retries_with_one_key_create_once(tenant, sql):
    """Two requests with the same key at once: the second waits for the first and replays it."""
    from concurrent.futures import ThreadPoolExecutor
    domain = tenant.domain()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    bodies = [{"email": f"p{i}@{domain}", "password": PASSWORD} for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda b: tenant.post("/mailboxes", json=b, headers=key), bodies))
    assert [r.status_code for r in answers] == [201] * 4
    assert len({r.json()["email"] for r in answers}) == 1
    assert sum("Idempotent-Replayed" in r.headers for r in answers) == 3
    assert len(sql("SELECT 1 FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = %s",
                   (domain,))) == 1


def test_a_key_expires_after_a_day(tenant, sql):
    domain = tenant.domain()
    key = f"k-{uuid.uuid4()}"
    assert tenant.post("/mailboxes", json={"email": f"a@{domain}", "password": PASSWORD},
                       headers={"Idempotency-Key": key}).status_code == 201
    sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = %s", (key,))
    r = tenant.post("/mailboxes", json={"email": f"b@{domain}", "password": PASSWORD},
                    headers={"Idempotency-Key": key})
    assert r.status_code == 201 and r.json()["email"] == f"b@{domain}" and "Idempotent-Replayed" not in r.headers
    assert len(sql("SELECT 1 FROM idempotency_keys WHERE key = %s", (key,))) == 1
