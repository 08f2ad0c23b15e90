"""Domain ownership before routing (issue 9), at the API: what is refused
outright, who waits for a DNS proof, how the proof is checked against the
dev stack's real DNS server (NSD), and that a proof never carries over to
another tenant. The mail server's side is in tests/mail/test_mail_ownership.py."""

import datetime as dt
import uuid

import pytest

from dns_zones import prove_ownership, publish_ownership


def unique(prefix="t"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def name():
    return f"{unique('o')}.emboux-test.net"


def create(client, domain, **body):
    r = client.post("/domains/", json={"name": domain, **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_client_domain_waits_for_proof_with_a_record_to_publish(tenant, sql):
    d = name()
    body = create(tenant, d)
    assert body["ownership"] == "pending"
    rec = body["ownership_record"]
    assert rec["type"] == "TXT" and rec["name"] == f"_emboux-verification.{d}"
    assert rec["value"].startswith("emboux-verify=") and len(rec["value"]) > 40
    assert body["ownership_method"] is None and body["ownership_at"] is None
    got = tenant.get(f"/domains/{d}").json()
    assert got["ownership"] == "pending" and got["ownership_record"] == rec
    assert tenant.get(f"/domains/{d}/ownership").json()["ownership_record"] == rec
    # the contract's fields are all still there
    assert {"id", "name", "created_at", "partner_ref", "status", "suspended"} <= set(body)
    # and the mail server does not see it
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d,)) == []


def test_master_domain_is_vouched_unless_it_asks_for_proof(api, tenant, sql):
    d = name()
    body = create(api, d, partner_ref=tenant.partner_ref)
    assert body["ownership"] == "vouched"
    assert body["ownership_method"] == "operator" and body["ownership_by"] == "master"
    assert body["ownership_at"]
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d,)) == [{"?column?": 1}]
    d2 = name()
    body = create(api, d2, partner_ref=tenant.partner_ref, require_ownership_proof=True)
    assert body["ownership"] == "pending"
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d2,)) == []
    # a client cannot opt out of the proof
    d3 = name()
    assert create(tenant, d3, require_ownership_proof=False)["ownership"] == "pending"
    r = api.post("/domains/", json={"name": name(), "require_ownership_proof": "yes"})
    assert r.status_code == 400 and r.json()["detail"].startswith("require_ownership_proof:")


@pytest.mark.parametrize("typed, suffix", [("CO.UK", "co.uk"), ("github.io", "github.io"),
                                           ("com.au.", "com.au"), ("blogspot.com", "blogspot.com"),
                                           ("公司.香港", "xn--55qx5d.xn--j6w193g")])
def test_public_suffixes_refused_to_everyone(api, tenant, sql, typed, suffix):
    for client in (tenant, api):
        r = client.post("/domains/", json={"name": typed})
        assert r.status_code == 400, r.text
        assert r.json() == {"detail": f"name: {suffix} is a public suffix (a registry's zone, not a domain "
                                      "anyone owns)", "code": "domain_public_suffix"}
    assert sql("SELECT 1 FROM domains WHERE name = %s", (suffix,)) == []


def test_platform_names_refused(api, tenant, devenv, sql):
    host = devenv["MAIL_HOSTNAME"]                  # mail.emboux.test
    platform = host.split(".", 1)[1]                # its registrable domain, emboux.test
    for client in (tenant, api):                    # the host name: nobody
        r = client.post("/domains/", json={"name": host})
        assert r.status_code == 400 and r.json()["code"] == "domain_reserved", r.text
    for n in (platform, f"{unique('s')}.{platform}", f"x.{host}"):   # the platform's domain: no client
        r = tenant.post("/domains/", json={"name": n})
        assert r.status_code == 400 and r.json()["code"] == "domain_reserved", r.text
        assert r.json()["detail"].startswith(f"name: {n} ")
        assert sql("SELECT 1 FROM domains WHERE name = %s", (n,)) == []
    # the operator may host its own subdomains (the dev stack's demo.emboux.test)
    sub = f"{unique('s')}.{platform}"
    assert create(api, sub, partner_ref=tenant.partner_ref)["ownership"] == "vouched"
    assert api.delete(f"/domains/{sub}").status_code == 204


def test_big_provider_can_be_created_but_stays_pending(tenant, sql):
    """Not refused by a list: it simply never receives anything (no proof)."""
    d = "yahoo.com"
    taken = sql("SELECT partner_ref FROM domains WHERE name = %s", (d,))
    if taken:
        pytest.skip("yahoo.com is held in this dev DB")
    body = create(tenant, d)
    try:
        assert body["ownership"] == "pending"
        r = tenant.post(f"/domains/{d}/ownership/check")
        assert r.status_code == 200 and r.json()["ownership"] == "pending", r.text
        assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d,)) == []
    finally:
        tenant.delete(f"/domains/{d}")


def test_check_finds_the_token_on_the_record_or_the_apex(tenant, dns_zones, sql):
    d = name()
    body = create(tenant, d)
    # nothing published (the zone exists, the record does not): stays pending and says why
    dns_zones.write(d, [])
    r = tenant.post(f"/domains/{d}/ownership/check")
    assert r.status_code == 200 and r.json()["ownership"] == "pending" and r.json()["found"] == []
    assert "not found" in r.json()["detail"]
    # a wrong token (someone else's): still pending, and what was found is shown
    dns_zones.write(d, [(f"_emboux-verification.{d}.", "TXT", "emboux-verify=not-the-token")])
    r = tenant.post(f"/domains/{d}/ownership/check")
    assert r.json()["ownership"] == "pending" and r.json()["found"] == ["emboux-verify=not-the-token"]
    # the right one on the apex
    dns_zones.write(d, [("@", "TXT", body["ownership_record"]["value"]), ("@", "TXT", "v=spf1 -all")])
    r = tenant.post(f"/domains/{d}/ownership/check")
    assert r.status_code == 200 and r.json()["ownership"] == "verified", r.text
    assert r.json()["ownership_method"] == "dns_txt" and r.json()["ownership_at"]
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d,)) == [{"?column?": 1}]
    # idempotent, and no DNS needed any more
    dns_zones.remove(d)
    r = tenant.post(f"/domains/{d}/ownership/check")
    assert r.json()["ownership"] == "verified"


def test_other_tenant_cannot_check_see_or_vouch(tenant, make_tenant):
    other = make_tenant()
    d = tenant.domain(prove=False)
    for call in (lambda: other.post(f"/domains/{d}/ownership/check"),
                 lambda: other.get(f"/domains/{d}/ownership")):
        r = call()
        assert r.status_code == 404 and r.json()["code"] == "domain_not_found"
    for client in (other, tenant):
        r = client.put(f"/domains/{d}/ownership/vouch", json={})
        assert r.status_code == 403 and r.json() == {"detail": "Master token required", "code": "master_required"}
    assert tenant.get(f"/domains/{d}").json()["ownership"] == "pending"


def test_master_vouches_and_it_is_recorded(api, tenant, sql):
    d = tenant.domain(prove=False)
    r = api.put(f"/domains/{d}/ownership/vouch", json={"vouched_by": "Alice (odoo: alice)"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ownership"] == "vouched" and body["ownership_method"] == "operator"
    assert body["ownership_by"] == "master: Alice (odoo: alice)" and body["ownership_at"]
    assert sql("SELECT ownership, ownership_by FROM domains WHERE name = %s", (d,)) == [
        {"ownership": "vouched", "ownership_by": "master: Alice (odoo: alice)"}]
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d,)) == [{"?column?": 1}]
    # vouching twice changes nothing
    again = api.put(f"/domains/{d}/ownership/vouch", json={}).json()
    assert again["ownership_by"] == body["ownership_by"] and again["ownership_at"] == body["ownership_at"]
    r = api.put("/domains/nowhere-" + unique() + ".emboux-test.net/ownership/vouch", json={})
    assert r.status_code == 404


def test_a_proof_never_carries_over_to_the_next_holder(api, tenant, make_tenant, dns_zones, sql):
    """A proves example.test and deletes it; B re-creates it while A's record
    is still published: B's claim has its own token, so it stays pending,
    and no provider verification may start for it either."""
    d = name()
    first = create(tenant, d)
    prove_ownership(dns_zones, tenant, first)
    other = make_tenant()
    # while A holds it: B cannot create it, nor verify it with a provider
    r = other.post("/domains/", json={"name": d})
    assert r.status_code == 400 and r.json()["code"] == "domain_exists"
    assert other.post(f"/domains/{d}/verify", json={}).status_code == 404
    assert tenant.delete(f"/domains/{d}").status_code == 204
    publish_ownership(dns_zones, first)                 # A's record stays in DNS
    second = create(other, d)
    assert second["ownership"] == "pending"
    assert second["ownership_record"]["value"] != first["ownership_record"]["value"]
    r = other.post(f"/domains/{d}/ownership/check")
    assert r.json()["ownership"] == "pending" and r.json()["found"] == [first["ownership_record"]["value"]]
    for path in (f"/domains/{d}/verify", f"/domains/{d}/ses-verify"):
        r = other.post(path, json={})
        assert r.status_code == 409 and r.json()["code"] == "ownership_pending", r.text
    r = other.get(f"/domains/{d}/verify-status")
    assert r.status_code == 409 and r.json()["code"] == "ownership_pending"
    r = other.post(f"/domains/{d}/register-subdomain")
    assert r.status_code == 409 and r.json()["code"] == "ownership_pending"
    assert sql("SELECT 1 FROM provider_identities i JOIN domains d ON d.id = i.domain_id WHERE d.name = %s",
               (d,)) == []
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (d,)) == []


def test_master_external_verify_refuses_a_public_suffix(api):
    r = api.post("/domains/co.uk/verify", json={"provider": "ses"})
    assert r.status_code == 400 and r.json()["code"] == "domain_public_suffix"


def test_transfer_gives_a_fresh_token(api, tenant, make_tenant, sql):
    other = make_tenant()
    owned, pending = tenant.domain(prove=False), tenant.domain(prove=False)
    api.put(f"/domains/{owned}/ownership/vouch", json={})
    before = {d: tenant.get(f"/domains/{d}").json() for d in (owned, pending)}
    for d in (owned, pending):
        assert api.put(f"/domains/{d}/owner", json={"partner_ref": other.partner_ref}).status_code == 200
    moved = other.get(f"/domains/{owned}").json()
    # the operator moved it: it keeps being routed, on the operator's word
    assert moved["ownership"] == "vouched" and moved["ownership_method"] == "transfer"
    assert moved["ownership_by"] == f"master: moved from {tenant.partner_ref}"
    still = other.get(f"/domains/{pending}").json()
    assert still["ownership"] == "pending"
    for d, now in ((owned, moved), (pending, still)):
        assert now["ownership_record"]["value"] != before[d]["ownership_record"]["value"]


def test_subdomain_under_owned_wildcard_parent_inherits(api, tenant, make_tenant, dns_zones, sql):
    parent = tenant.domain()                                     # proved through DNS
    assert api.put(f"/domains/{parent}/parent", json={"wildcard": True}).status_code == 200
    sub = create(tenant, f"shop.{parent}")
    assert sub["parent"] == parent
    assert sub["ownership"] == "verified" and sub["ownership_method"] == "parent"
    assert sub["ownership_by"] == parent
    assert sql("SELECT 1 FROM mailserver.domains WHERE name = %s", (sub["name"],)) == [{"?column?": 1}]
    # another tenant's domain under it: refused (the parent is managed by A)
    other = make_tenant()
    r = other.post("/domains/", json={"name": f"blog.{parent}"})
    assert r.status_code == 400


def test_pending_subdomains_follow_their_parent(api, tenant, dns_zones):
    parent = create(tenant, name())
    assert api.put(f"/domains/{parent['name']}/parent", json={"wildcard": True}).status_code == 200
    sub = create(tenant, f"www.{parent['name']}")
    assert sub["ownership"] == "pending"
    prove_ownership(dns_zones, tenant, parent)
    got = tenant.get(f"/domains/{sub['name']}").json()
    assert got["ownership"] == "verified" and got["ownership_method"] == "parent"


def test_change_feed_carries_ownership(api, tenant):
    d = tenant.domain(prove=False)
    at = api.put(f"/domains/{d}/ownership/vouch", json={}).json()["ownership_at"]
    # since just before the vouch's transaction: the shared dev DB's feed since
    # an older instant may hold more than one page
    since = (dt.datetime.fromisoformat(at) - dt.timedelta(seconds=1)).isoformat()
    feed = api.get("/changes", params={"since": since}).json()["changes"]
    mine = [c for c in feed if c["key"] == d]
    assert mine and mine[-1]["current"]["ownership"] == "vouched"
