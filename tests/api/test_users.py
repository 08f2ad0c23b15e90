"""Mailboxes ("users"), endpoint by endpoint."""

from passlib.hash import sha512_crypt


def test_create_list_password_delete(tenant, sql):
    d = tenant.domain()
    r = tenant.post("/users/", json={"domain_name": d, "email": f"Alice@{d.upper()}",
                                     "password": "s3cret-passw0rd", "quota_mb": 500})
    assert r.status_code == 201, r.text
    body = r.json()
    assert {"id", "domain_id", "email", "created_at"} <= body.keys()
    assert body["email"] == f"alice@{d}"
    assert "password" not in body and "password_hash" not in body
    stored = sql("SELECT password_hash, quota_mb FROM mailboxes WHERE email = %s", (f"alice@{d}",))[0]
    assert stored["password_hash"].startswith("{SHA512-CRYPT}$6$")
    assert sha512_crypt.verify("s3cret-passw0rd", stored["password_hash"][len("{SHA512-CRYPT}"):])
    assert stored["quota_mb"] == 500
    listed = tenant.get("/users/").json()
    assert [u["email"] for u in listed] == [f"alice@{d}"]
    assert all("password" not in k for u in listed for k in u)
    dom_id = body["domain_id"]
    assert [u["email"] for u in tenant.get(f"/users/?domain_id={dom_id}").json()] == [f"alice@{d}"]
    r = tenant.put(f"/users/alice@{d}", json={"password": "another-passw0rd"})
    assert r.status_code == 200 and r.json() == {"message": "Password updated"}
    new = sql("SELECT password_hash FROM mailboxes WHERE email = %s", (f"alice@{d}",))[0]["password_hash"]
    assert sha512_crypt.verify("another-passw0rd", new[len("{SHA512-CRYPT}"):])
    assert tenant.delete(f"/users/alice@{d}").status_code == 204
    r = tenant.delete(f"/users/alice@{d}")
    assert r.status_code == 404
    assert sql("SELECT 1 FROM mailboxes WHERE email = %s", (f"alice@{d}",)) == []


def test_duplicate_and_unknown_domain(tenant):
    d = tenant.domain()
    box = tenant.mailbox(d, "bob")
    r = tenant.post("/users/", json={"domain_name": d, "email": box, "password": "xxxxxxxx1"})
    assert r.status_code == 400 and r.json()["detail"] == "Email already exists"
    r = tenant.post("/users/", json={"domain_name": "missing-dom.emboux-test.net",
                                     "email": "a@missing-dom.emboux-test.net", "password": "xxxxxxxx1"})
    assert r.status_code == 404 and r.json()["detail"] == "Domain not found"


def test_email_must_match_domain(tenant):
    d = tenant.domain()
    r = tenant.post("/users/", json={"domain_name": d, "email": "x@elsewhere.net", "password": "xxxxxxxx1"})
    assert r.status_code == 400 and "email" in r.json()["detail"]


def test_quota_get_and_set(tenant):
    d = tenant.domain()
    box = tenant.mailbox(d, quota_mb=100)
    r = tenant.get(f"/users/{box}/quota")
    assert r.status_code == 200 and r.json()["quota_mb"] == 100 and r.json()["email"] == box
    r = tenant.put(f"/users/{box}/quota", json={"quota_mb": 250})
    assert r.json() == {"email": box, "quota_mb": 250}
    assert tenant.get(f"/users/{box}/quota").json()["quota_mb"] == 250


def test_deleting_mailbox_drops_alias_destinations(tenant, sql):
    d = tenant.domain()
    a, b = tenant.mailbox(d), tenant.mailbox(d)
    tenant.post("/aliases/", json={"domain_name": d, "source": f"team@{d}", "destination": f"{a},{b}"})
    tenant.delete(f"/users/{a}")
    assert [r["destination"] for r in sql("SELECT destination FROM aliases WHERE source = %s",
                                          (f"team@{d}",))] == [b]
