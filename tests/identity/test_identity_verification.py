"""Provider verification end to end against the stand-ins: SES (moto server)
and Mailgun (tests/standins/mailgun.py), the legacy aliases, subdomains,
inheritance, delete clean-up and the Mailgun credential bootstrap."""

import uuid



def fresh(prefix="v"):
    return f"{prefix}{uuid.uuid4().hex[:10]}.emboux-test.net"


def set_provider(api, name, provider):
    r = api.put(f"/domains/{name}/outbound", json={"provider": provider})
    assert r.status_code == 200, r.text


def ses_identities(ses):
    return set(ses.list_identities(IdentityType="Domain")["Identities"])


def test_ses_verify_then_status_verifies_end_to_end(api, ses, sql):
    name = fresh()
    assert api.post("/domains/", json={"name": name}).status_code == 201
    set_provider(api, name, "ses")
    r = api.post(f"/domains/{name}/verify")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provider"] == "ses" and body["verified"] is False
    kinds = {(x["type"], x["purpose"]) for x in body["dns_records"]}
    assert ("TXT", "verification") in kinds and ("CNAME", "dkim") in kinds
    assert name in ses_identities(ses)          # the identity exists at "SES"
    r = api.get(f"/domains/{name}/verify-status")
    assert r.status_code == 200 and r.json()["verified"] is True and r.json()["state"] == "verified"
    row = sql("SELECT provider_verified FROM domains WHERE name = %s", (name,))[0]
    assert row["provider_verified"] is True
    assert api.get(f"/domains/{name}/outbound").json()["ses_verified"] is True
    # the account-wide SMTP credential is in place for Postfix
    rel = sql("SELECT relayhost, credential FROM mailserver.sender_relays WHERE domain = %s", (name,))
    assert rel and rel[0]["credential"].startswith("AKIA")


def test_legacy_aliases(api, ses):
    name = fresh()
    api.post("/domains/", json={"name": name})
    set_provider(api, name, "ses")
    assert api.post(f"/domains/{name}/ses-verify").status_code == 200
    r = api.get(f"/domains/{name}/ses-status")
    assert r.status_code == 200 and r.json()["ses_verified"] is True


def test_client_sees_only_its_domains(make_tenant):
    a, b = make_tenant(), make_tenant()
    name = a.domain()
    assert a.post(f"/domains/{name}/verify").status_code == 200
    for path in ("verify", "register-subdomain", "ses-verify"):
        r = b.post(f"/domains/{name}/{path}")
        assert r.status_code == 404 and r.json()["detail"] == "Domain not found"
    assert b.get(f"/domains/{name}/verify-status").status_code == 404
    assert b.get(f"/domains/{name}/dns-check").status_code == 404


def test_master_verifies_a_root_domain_not_hosted(api, ses, sql):
    name = fresh("root")
    r = api.post(f"/domains/{name}/verify", json={"provider": "ses"})
    assert r.status_code == 200 and r.json()["hosted"] is False
    assert name in ses_identities(ses)
    assert sql("SELECT 1 FROM domains WHERE name = %s", (name,)) == []
    # a client cannot
    assert api.post(f"/domains/{fresh()}/verify").status_code == 200  # master: any
    ses.delete_identity(Identity=name)


def test_client_cannot_verify_unhosted(tenant):
    r = tenant.post(f"/domains/{fresh()}/verify")
    assert r.status_code == 404


def test_ses_verification_starts_on_creation_except_under_a_verified_parent(api, ses, sql):
    parent = fresh("p")
    api.post("/domains/", json={"name": parent})
    set_provider(api, parent, "ses")
    assert api.put(f"/domains/{parent}/parent", json={"wildcard": True}).status_code == 200
    # parent not verified yet: a new subdomain starts its own SES verification
    sub1 = f"a.{parent}"
    assert api.post("/domains/", json={"name": sub1}).status_code == 201
    assert sql("SELECT provider FROM domains WHERE name = %s", (sub1,))[0]["provider"] == "ses"
    assert sub1 in ses_identities(ses)
    # verify the parent; the next subdomain inherits and SES is not asked
    api.post(f"/domains/{parent}/verify")
    assert api.get(f"/domains/{parent}/verify-status").json()["verified"] is True
    sub2 = f"b.{parent}"
    assert api.post("/domains/", json={"name": sub2}).status_code == 201
    assert sub2 not in ses_identities(ses)
    st = api.get(f"/domains/{sub2}/verify-status").json()
    assert st["verified"] is True and st["inherited_from"] == parent
    # deleting a subdomain removes what SES had for it
    assert api.delete(f"/domains/{sub1}").status_code == 204
    assert sub1 not in ses_identities(ses)


def test_subdomains_inherit_provider_tier_and_enforcement(api, sql):
    parent = fresh("p")
    api.post("/domains/", json={"name": parent})
    r = api.put(f"/domains/{parent}/outbound", json={"provider": "mailgun", "outbound_tier": "dedicated",
                                                      "outbound_enforcement": "soft"})
    assert r.status_code == 200, r.text
    sub = f"x.{parent}"
    api.post("/domains/", json={"name": sub})
    # not linked (no wildcard): own defaults
    assert sql("SELECT provider FROM domains WHERE name = %s", (sub,))[0]["provider"] == "local"
    assert api.put(f"/domains/{sub}/parent", json={"parent": parent}).status_code == 200
    row = sql("SELECT provider, outbound_tier, outbound_enforcement FROM domains WHERE name = %s", (sub,))[0]
    assert row == {"provider": "mailgun", "outbound_tier": "dedicated", "outbound_enforcement": "soft"}


def test_mailgun_verify_registers_domain_and_webhooks(api, mailgun, devenv):
    name = fresh("mg")
    api.post("/domains/", json={"name": name})
    set_provider(api, name, "mailgun")
    r = api.post(f"/domains/{name}/verify")
    assert r.status_code == 200, r.text
    assert any(x["purpose"] == "dkim" and x["type"] == "TXT" for x in r.json()["dns_records"])
    state = mailgun.domain(name)
    assert state is not None
    assert set(state["webhooks"]) == {"permanent_fail", "temporary_fail", "complained"}
    assert state["webhooks"]["permanent_fail"] == [devenv["MAILGUN_WEBHOOK_URL"]]
    assert api.get(f"/domains/{name}/verify-status").json()["verified"] is True


def test_activate_bootstraps_mailgun_credential_idempotently(api, mailgun, sql):
    name = fresh("mg")
    api.post("/domains/", json={"name": name})
    set_provider(api, name, "mailgun")
    api.post(f"/domains/{name}/verify")
    assert sql("SELECT 1 FROM mailserver.sender_relays WHERE domain = %s", (name,)) == []
    r = api.put(f"/domains/{name}/activate")
    assert r.status_code == 200
    assert r.json() == {"name": name, "suspended": False, "message": "Domain activated"}
    cred = sql("SELECT credential FROM mailserver.sender_relays WHERE domain = %s", (name,))[0]["credential"]
    login, _, password = cred.partition(":")
    assert mailgun.domain(name)["credentials"] == {login: password}
    assert password not in r.text
    r = api.put(f"/domains/{name}/activate")
    assert r.status_code == 200
    # idempotent: the same credential, not a new one
    assert sql("SELECT credential FROM mailserver.sender_relays WHERE domain = %s", (name,))[0]["credential"] == cred
    assert mailgun.domain(name)["credentials"] == {login: password}
    assert sql("SELECT count(*) AS n FROM relay_credentials r JOIN domains d ON d.id = r.domain_id "
               "WHERE d.name = %s", (name,))[0]["n"] == 1


def test_activate_skips_ses_and_local(api, sql):
    name = fresh()
    api.post("/domains/", json={"name": name})
    assert api.put(f"/domains/{name}/activate").status_code == 200
    set_provider(api, name, "ses")
    assert api.put(f"/domains/{name}/activate").status_code == 200
    assert sql("SELECT count(*) AS n FROM relay_credentials r JOIN domains d ON d.id = r.domain_id "
               "WHERE d.name = %s", (name,))[0]["n"] == 0


def test_register_subdomain_mailgun_is_self_contained_and_delete_cleans_up(api, mailgun, sql):
    parent = fresh("mgp")
    api.post("/domains/", json={"name": parent})
    set_provider(api, parent, "mailgun")
    api.post(f"/domains/{parent}/verify")
    api.get(f"/domains/{parent}/verify-status")
    sub = f"news.{parent}"
    api.post("/domains/", json={"name": sub})   # not linked: parent is not wildcard
    r = api.post(f"/domains/{sub}/register-subdomain")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["provider"] == "mailgun" and body["verified"] is True
    assert body["dkim_identity"]["domain"] == parent
    st = mailgun.domain(sub)
    assert st["dkim_authority"] == parent           # signs with the parent's DKIM
    assert len(st["credentials"]) == 1 and st["webhooks"]
    rel = sql("SELECT credential FROM mailserver.sender_relays WHERE domain = %s", (sub,))
    assert rel and rel[0]["credential"].startswith(f"postmaster@{sub}:")
    assert api.delete(f"/domains/{sub}").status_code == 204
    assert mailgun.domain(sub) is None               # every provider-side trace gone
    assert mailgun.domain(parent) is not None


def test_register_subdomain_needs_a_hosted_parent(api):
    name = fresh()
    api.post("/domains/", json={"name": name})
    r = api.post(f"/domains/{name}/register-subdomain")
    assert r.status_code == 400 and "not a subdomain" in r.json()["detail"]


def test_register_subdomain_local_signs_with_parent_key(api, sql):
    parent = fresh("lp")
    api.post("/domains/", json={"name": parent})
    sub = f"shop.{parent}"
    api.post("/domains/", json={"name": sub})
    r = api.post(f"/domains/{sub}/register-subdomain")
    assert r.status_code == 200, r.text
    sel = r.json()["dkim_identity"]
    assert sel["domain"] == parent and sel["selector"]
    row = sql("SELECT s.key_name, k.domain, k.selector FROM mailserver.dkim_signing s "
              "JOIN mailserver.dkim_keys k USING (key_name) WHERE s.domain = %s", (sub,))
    assert row == [{"key_name": row[0]["key_name"], "domain": parent, "selector": sel["selector"]}]


def test_provider_errors_are_502_and_store_nothing(api, sql, devenv):
    # the Mailgun stand-in answers 404 for verify-status of a domain it does not know
    name = fresh("mg")
    api.post("/domains/", json={"name": name})
    set_provider(api, name, "mailgun")
    r = api.get(f"/domains/{name}/verify-status")
    assert r.status_code == 200 and r.json()["verified"] is False and r.json()["state"] == "failed"


def test_bad_names_are_400(api):
    for bad in ("nodot", "-bad-.com", "a..b"):
        r = api.post(f"/domains/{bad}/verify")
        assert r.status_code in (400, 404), r.text
        assert "detail" in r.json()
