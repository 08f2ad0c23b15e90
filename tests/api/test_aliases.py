"""Aliases and catch-alls."""


def test_create_multi_destination_and_upsert(tenant, sql):
    d = tenant.domain()
    a, b = tenant.mailbox(d), tenant.mailbox(d)
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"Office@{d}",
                                       "destination": f"{a}, {b.upper()}"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert {"id", "domain_id", "source", "destination", "created_at"} <= body.keys()
    assert body["source"] == f"office@{d}" and body["destination"] == f"{a},{b}"
    rows = sql("SELECT destination FROM aliases WHERE source = %s ORDER BY id", (f"office@{d}",))
    assert [r["destination"] for r in rows] == [a, b]  # one row per destination
    # re-posting is an upsert, not an error
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"office@{d}", "destination": f"{a},{b}"})
    assert r.status_code == 201 and r.json()["id"] == body["id"]
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"office@{d}", "destination": b})
    assert r.json()["destination"] == b
    assert len(sql("SELECT 1 FROM aliases WHERE source = %s", (f"office@{d}",))) == 1
    listed = tenant.get("/aliases/").json()
    assert [(x["source"], x["destination"]) for x in listed] == [(f"office@{d}", b)]
    assert tenant.delete(f"/aliases/office@{d}").status_code == 204
    assert tenant.delete(f"/aliases/office@{d}").status_code == 404
    assert tenant.get("/aliases/").json() == []


def test_catch_all_and_external_destination(tenant):
    d = tenant.domain()
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"@{d}",
                                       "destination": "someone@example.org"})
    assert r.status_code == 201 and r.json()["source"] == f"@{d}"
    assert tenant.get(f"/aliases/@{d}").json()["destination"] == "someone@example.org"
    assert tenant.delete(f"/aliases/@{d}").status_code == 204


def test_alias_source_cannot_be_a_mailbox(tenant):
    d = tenant.domain()
    box = tenant.mailbox(d)
    r = tenant.post("/aliases/", json={"domain_name": d, "source": box, "destination": "x@example.org"})
    assert r.status_code == 400 and r.json()["detail"] == "Alias source already exists"
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"x@{d}", "destination": "y@example.org"})
    assert r.status_code == 201
    r = tenant.post("/users/", json={"domain_name": d, "email": f"x@{d}", "password": "xxxxxxxx1"})
    assert r.status_code == 400 and r.json()["detail"] == "Email already exists"


def test_alias_errors(tenant):
    d = tenant.domain()
    r = tenant.post("/aliases/", json={"domain_name": "nope-x.emboux-test.net",
                                       "source": "a@nope-x.emboux-test.net", "destination": "b@example.org"})
    assert r.status_code == 404 and r.json()["detail"] == "Domain not found"
    r = tenant.post("/aliases/", json={"domain_name": d, "source": "a@other.net", "destination": "b@example.org"})
    assert r.status_code == 400 and r.json()["detail"].startswith("source:")
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"a@{d}", "destination": " , "})
    assert r.status_code == 400 and r.json()["detail"].startswith("destination:")
    r = tenant.post("/aliases/", json={"domain_name": d, "source": f"a@{d}",
                                       "destination": "ok@example.org,bad address@x.org"})
    assert r.status_code == 400 and r.json()["detail"].startswith("destination:")
    assert tenant.get("/aliases/").json() == []
