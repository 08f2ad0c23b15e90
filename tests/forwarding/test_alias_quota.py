"""The per-alias limit on destinations outside EmBoux (alias_external_destinations,
the tenant's quota; default 10, 0 = unlimited), from the tenant's side."""

from forwarding_helpers import outside


def post_alias(fwd, local, destinations, token=None):
    return fwd.api.post("/aliases/", token=token or fwd.tenant.token,
                        json={"domain_name": fwd.domain, "source": f"{local}@{fwd.domain}",
                              "destination": ",".join(destinations)})


def test_default_is_ten_and_shown_with_the_other_quotas(api, fwd):
    ref = fwd.tenant.partner_ref
    assert api.get(f"/partners/{ref}").json()["alias_external_destinations"] == 10
    assert fwd.tenant.get(f"/api-keys/{fwd.tenant.token}/usage").json()["alias_external_destinations"] == 10
    assert post_alias(fwd, "ten", [outside(f"x{i}") for i in range(10)]).status_code == 201
    r = post_alias(fwd, "eleven", [outside(f"x{i}") for i in range(11)])
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "quota_exceeded"
    assert "11/10" in r.json()["detail"] and "alias_external_destinations" in r.json()["detail"]
    # nothing written
    assert fwd.tenant.get(f"/aliases/eleven@{fwd.domain}").status_code == 404


def test_hosted_destinations_do_not_count(fwd):
    other = fwd.tenant.post("/users/", json={"domain_name": fwd.domain, "email": f"bob@{fwd.domain}",
                                             "password": "correct horse 1"})
    assert other.status_code == 201
    dests = [outside(f"x{i}") for i in range(10)] + [fwd.alice, f"bob@{fwd.domain}"]
    assert post_alias(fwd, "mixed", dests).status_code == 201


def test_master_sets_the_limit_a_client_cannot(api, fwd):
    ref = fwd.tenant.partner_ref
    r = api.put(f"/partners/{ref}", json={"alias_external_destinations": 2})
    assert r.status_code == 200 and r.json()["alias_external_destinations"] == 2
    assert post_alias(fwd, "two", [outside("a"), outside("b")]).status_code == 201
    # re-posting (an upsert) with a third outside address is refused, the alias keeps its two
    r = post_alias(fwd, "two", [outside("a"), outside("b"), outside("c")])
    assert r.status_code == 403 and r.json()["code"] == "quota_exceeded"
    assert fwd.tenant.get(f"/aliases/two@{fwd.domain}").json()["destination"].count(",") == 1
    # the tenant may not raise its own quota
    r = fwd.tenant.put(f"/partners/{ref}", json={"alias_external_destinations": 0})
    assert r.status_code == 403
    # 0 = unlimited (up to the 100 destinations an alias may have)
    assert api.put(f"/partners/{ref}", json={"alias_external_destinations": 0}).status_code == 200
    assert post_alias(fwd, "many", [outside(f"m{i}") for i in range(30)]).status_code == 201


def test_bad_quota_values_are_refused(api, fwd, unique_ref):
    ref = fwd.tenant.partner_ref
    for bad in (-1, "10", 1.5, None, 2**40):
        r = api.put(f"/partners/{ref}", json={"alias_external_destinations": bad})
        assert r.status_code == 400, (bad, r.text)
        assert "alias_external_destinations" in r.json()["detail"]
    r = api.post("/api-keys/", json={"partner_ref": unique_ref, "alias_external_destinations": 3})
    assert r.status_code == 201 and r.json()["alias_external_destinations"] == 3
    assert api.get(f"/partners/{ref}").json()["alias_external_destinations"] == 10
