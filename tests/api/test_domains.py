"""Domains, endpoint by endpoint."""


def test_create_list_get_delete(api, tenant, domain_name, sql):
    r = tenant.post("/domains/", json={"name": domain_name.upper() + "."})
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == domain_name
    assert {"id", "name", "created_at"} <= body.keys()
    assert body["partner_ref"] == tenant.partner_ref
    names = [d["name"] for d in tenant.get("/domains/").json()]
    assert names == [domain_name]
    assert tenant.get(f"/domains/{domain_name}").json()["name"] == domain_name
    r = tenant.post("/domains/", json={"name": domain_name})
    assert r.status_code == 400 and r.json()["detail"] == "Domain already exists"
    assert tenant.delete(f"/domains/{domain_name}").status_code == 204
    r = tenant.delete(f"/domains/{domain_name}")
    assert r.status_code == 404 and r.json()["detail"] == "Domain not found"
    assert sql("SELECT 1 FROM domains WHERE name = %s", (domain_name,)) == []


def test_idn_stored_as_punycode(tenant, domain_name):
    r = tenant.post("/domains/", json={"name": f"Bücher-Ümlaut.{domain_name}"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == f"xn--bcher-mlaut-thbf.{domain_name}"
    assert tenant.get(f"/domains/Bücher-Ümlaut.{domain_name}").status_code == 200


def test_delete_cascades_to_mailboxes_and_aliases(tenant, sql):
    d = tenant.domain()
    box = tenant.mailbox(d)
    assert tenant.post("/aliases/", json={"domain_name": d, "source": f"@{d}", "destination": box}).status_code == 201
    assert tenant.delete(f"/domains/{d}").status_code == 204
    assert sql("SELECT 1 FROM mailboxes WHERE email = %s", (box,)) == []
    assert sql("SELECT 1 FROM aliases WHERE source = %s", (f"@{d}",)) == []
    assert tenant.get("/users/").json() == []


def test_master_creates_on_behalf_of_partner(api, tenant, domain_name, sql):
    r = api.post("/domains/", json={"name": domain_name, "partner_ref": tenant.partner_ref})
    assert r.status_code == 201 and r.json()["partner_ref"] == tenant.partner_ref
    assert [d["name"] for d in tenant.get("/domains/").json()] == [domain_name]
    assert sql("SELECT domains_used FROM partners WHERE partner_ref = %s",
               (tenant.partner_ref,))[0]["domains_used"] == 1


def test_client_cannot_attribute_to_another_partner(make_tenant, domain_name):
    a, b = make_tenant(), make_tenant()
    r = a.post("/domains/", json={"name": domain_name, "partner_ref": b.partner_ref})
    assert r.status_code == 201 and r.json()["partner_ref"] == a.partner_ref
    assert b.get("/domains/").json() == []


def test_suspend_and_activate(api, tenant, sql):
    d = tenant.domain()
    r = api.put(f"/domains/{d}/suspend")
    assert r.status_code == 200
    assert r.json() == {"name": d, "suspended": True, "message": "Domain suspended"}
    assert sql("SELECT status FROM domains WHERE name = %s", (d,))[0]["status"] == "suspended"
    r = api.put(f"/domains/{d}/activate")
    assert r.json() == {"name": d, "suspended": False, "message": "Domain activated"}
    assert api.put("/domains/nope-nope.emboux-test.net/suspend").json()["detail"] == "Domain not found"


def test_owner_transfer_adjusts_both_counters(api, make_tenant, sql):
    a, b = make_tenant(), make_tenant()
    d = a.domain()
    r = api.put(f"/domains/{d}/owner", json={"partner_ref": b.partner_ref})
    assert r.status_code == 200, r.text
    assert a.get("/domains/").json() == []
    assert [x["name"] for x in b.get("/domains/").json()] == [d]
    used = {r["partner_ref"]: r["domains_used"] for r in
            sql("SELECT partner_ref, domains_used FROM partners WHERE partner_ref IN (%s, %s)",
                (a.partner_ref, b.partner_ref))}
    assert used == {a.partner_ref: 0, b.partner_ref: 1}


def test_owner_refuses_partner_without_active_key(api, make_tenant):
    a, b = make_tenant(), make_tenant()
    d = a.domain()
    api.put(f"/api-keys/{b.token}", json={"active": False})
    r = api.put(f"/domains/{d}/owner", json={"partner_ref": b.partner_ref})
    assert r.status_code == 400 and "no active API key" in r.json()["detail"]
    r = api.put(f"/domains/{d}/owner", json={"partner_ref": "nobody-at-all"})
    assert r.status_code == 400
    assert [x["name"] for x in a.get("/domains/").json()] == [d]


def test_wildcard_parent_links_subdomains(api, tenant):
    parent = tenant.domain()
    r = api.put(f"/domains/{parent}/parent", json={"wildcard": True})
    assert r.status_code == 200 and r.json()["wildcard"] is True
    r = tenant.post("/domains/", json={"name": f"shop.{parent}"})
    assert r.status_code == 201 and r.json()["parent"] == parent
    # explicit parent, unlink, and a refusal for a non-suffix
    other = tenant.domain()
    r = api.put(f"/domains/shop.{parent}/parent", json={"parent": None})
    assert r.json()["parent"] is None
    r = api.put(f"/domains/shop.{parent}/parent", json={"parent": other})
    assert r.status_code == 400 and "not a subdomain" in r.json()["detail"]
    r = api.put(f"/domains/shop.{parent}/parent", json={"parent": parent})
    assert r.status_code == 200 and r.json()["parent"] == parent


def test_client_cannot_create_under_another_tenants_domain(make_tenant):
    a, b = make_tenant(), make_tenant()
    d = a.domain()
    r = b.post("/domains/", json={"name": f"evil.{d}"})
    assert r.status_code == 400
    assert b.get("/domains/").json() == []


def test_retention_and_transfer(api, tenant):
    d = tenant.domain()
    assert tenant.get(f"/domains/{d}/retention").json() == {"name": d, "retention_days": 0}
    r = api.put(f"/domains/{d}/retention", json={"retention_days": 30})
    assert r.status_code == 200 and r.json() == {"name": d, "retention_days": 30}
    assert tenant.get(f"/domains/{d}/retention").json()["retention_days"] == 30
    assert tenant.get(f"/domains/{d}/transfer").json() == {"name": d, "transfer_monthly_mb": 0}
    r = api.put(f"/domains/{d}/transfer", json={"transfer_monthly_mb": 2048})
    assert r.json() == {"name": d, "transfer_monthly_mb": 2048}
