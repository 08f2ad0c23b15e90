"""API keys: tokens only as hashes, partners sharing quotas, delta sync."""

import datetime as dt
import hashlib


def test_create_returns_token_once_and_stores_hash(api, sql):
    r = api.post("/api-keys/", json={"token": "tok-" + "a1b2c3d4" * 5, "partner_ref": "acme-keys-1",
                                     "domains_allowed": 3})
    assert r.status_code == 201, r.text
    body = r.json()
    for field in ("id", "token", "partner_ref", "domains_allowed", "domains_used", "mailboxes_per_domain",
                  "aliases_per_mailbox", "active", "expires_at", "created_at", "last_used_at"):
        assert field in body, field
    token = body["token"]
    assert token == "tok-" + "a1b2c3d4" * 5
    assert (body["domains_allowed"], body["mailboxes_per_domain"], body["aliases_per_mailbox"]) == (3, 1, 5)
    assert body["active"] is True and body["expires_at"] is None
    rows = sql("SELECT * FROM api_keys WHERE partner_ref = 'acme-keys-1'")
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(rows)
    listed = [k for k in api.get("/api-keys/").json() if k["partner_ref"] == "acme-keys-1"]
    assert listed and token not in str(listed)
    r = api.post("/api-keys/", json={"token": token, "partner_ref": "acme-keys-1"})
    assert r.status_code == 400 and r.json()["detail"] == "API key already exists"
    assert api.delete(f"/api-keys/{token}").status_code == 204
    assert api.delete(f"/api-keys/{token}").status_code == 404


def test_generated_token_when_omitted(api, unique_ref):
    r = api.post("/api-keys/", json={"partner_ref": unique_ref})
    assert r.status_code == 201 and len(r.json()["token"]) >= 32
    assert api.get("/domains/", token=r.json()["token"]).status_code == 200


def test_short_token_says_it_is_too_short(api, unique_ref, sql):
    r = api.post("/api-keys/", json={"token": "a" * 23, "partner_ref": unique_ref})
    assert r.status_code == 400 and r.json() == {"detail": "token: Shorter than 24 characters.",
                                                 "code": "invalid_field"}
    r = api.post("/api-keys/", json={"token": "", "partner_ref": unique_ref})
    assert r.status_code == 400 and r.json()["detail"] == "token: Missing data for required field."
    assert not sql("SELECT 1 FROM api_keys WHERE partner_ref = %s", (unique_ref,))
    token = (unique_ref + "x" * 24)[:24]
    assert api.post("/api-keys/", json={"token": token, "partner_ref": unique_ref}).status_code == 201
    assert api.delete(f"/api-keys/{token}").status_code == 204


def test_partner_keys_share_resources_and_survive_deletion(api, tenant):
    d = tenant.domain()
    r = api.post("/api-keys/", json={"partner_ref": tenant.partner_ref})
    second = r.json()["token"]
    assert r.json()["domains_allowed"] == 10  # the partner's quotas, not reset to defaults
    assert [x["name"] for x in api.get("/domains/", token=second).json()] == [d]
    assert api.delete(f"/api-keys/{tenant.token}").status_code == 204
    assert [x["name"] for x in api.get("/domains/", token=second).json()] == [d]


def test_update_is_partial(api, tenant):
    r = api.put(f"/api-keys/{tenant.token}", json={"mailboxes_per_domain": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["mailboxes_per_domain"] == 7 and body["domains_allowed"] == 10 and body["active"] is True
    assert api.put("/api-keys/unknown-token-unknown-token", json={"active": False}).status_code == 404


def test_usage_and_delta_sync(api, tenant, make_tenant):
    start = tenant.get(f"/api-keys/{tenant.token}/usage").json()
    assert start["counts"] == {"domains": 0, "mailboxes": 0, "aliases": 0}
    since = start["next_since"]
    d = tenant.domain(prove=False)  # (a proof would report the domain as 'updated')
    box = tenant.mailbox(d)
    tenant.post("/aliases/", json={"domain_name": d, "source": f"@{d}", "destination": box})
    usage = tenant.get(f"/api-keys/{tenant.token}/usage", params={"since": since}).json()
    assert usage["counts"] == {"domains": 1, "mailboxes": 1, "aliases": 1}
    assert usage["domains_used"] == 1
    got = {(c["resource"], c["key"]): c["action"] for c in usage["changes"]}
    assert got == {("domain", d): "created", ("mailbox", box): "created", ("alias", f"@{d}"): "created"}
    mailbox_change = next(c for c in usage["changes"] if c["resource"] == "mailbox")
    assert mailbox_change["current"]["email"] == box and "password_hash" not in mailbox_change["current"]
    # Next round: only what changed after next_since.
    since2 = usage["next_since"]
    tenant.delete(f"/users/{box}")
    usage = tenant.get(f"/api-keys/{tenant.token}/usage", params={"since": since2}).json()
    assert {(c["resource"], c["key"], c["action"]) for c in usage["changes"]} >= {("mailbox", box, "deleted")}
    assert ("domain", d) not in {(c["resource"], c["key"]) for c in usage["changes"]}
    # another tenant's key is not visible to this one; the master sees it
    other = make_tenant()
    assert tenant.get(f"/api-keys/{other.token}/usage").status_code == 404
    assert api.get(f"/api-keys/{other.token}/usage").status_code == 200


def test_a_vacation_change_is_a_mailbox_change_in_the_feed(api, tenant, make_tenant):
    """Migration 0035: Odoo learns of an auto-reply set through the API from
    the feed; the mailbox's state carries it, as GET .../vacation shows it."""
    d = tenant.domain(prove=False)
    box = tenant.mailbox(d)
    since = tenant.get(f"/api-keys/{tenant.token}/usage").json()["next_since"]
    reply = {"enabled": True, "subject": "Away", "body": "Back on Monday.", "start": "2026-12-01",
             "end": None, "days": 4}
    assert tenant.put(f"/users/{box}/vacation", json=reply).status_code == 200
    feed = tenant.get(f"/api-keys/{tenant.token}/usage", params={"since": since}).json()
    mine = [c for c in feed["changes"] if c["key"] == box]
    assert [(c["resource"], c["action"]) for c in mine] == [("mailbox", "updated")], feed
    assert mine[0]["current"]["vacation"] == reply
    assert tenant.get(f"/users/{box}/vacation").json() == dict(reply, email=box)
    # the master's feed has it too; another tenant's does not
    master = api.get("/changes", params={"since": since}).json()
    assert any(c["key"] == box and c["current"]["vacation"] == reply for c in master["changes"])
    other = make_tenant()
    theirs = other.get(f"/api-keys/{other.token}/usage", params={"since": since}).json()
    assert box not in {c["key"] for c in theirs["changes"]}
    # a mailbox that never had a reply shows the defaults
    plain = tenant.mailbox(d)
    feed = tenant.get(f"/api-keys/{tenant.token}/usage", params={"since": since}).json()
    state = next(c["current"] for c in feed["changes"] if c["key"] == plain)
    assert state["vacation"] == {"enabled": False, "subject": "", "body": "", "start": None, "end": None, "days": 7}


def test_delta_sync_rejects_bad_since(tenant):
    r = tenant.get(f"/api-keys/{tenant.token}/usage", params={"since": "yesterday"})
    assert r.status_code == 400 and r.json()["detail"].startswith("since:")


def test_master_change_feed(api, tenant):
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    d = tenant.domain()
    feed = api.get("/changes", params={"since": since}).json()
    assert ("domain", d) in {(c["resource"], c["key"]) for c in feed["changes"]}


def test_keys_managed_by_id(api, tenant, sql):
    key_id = sql("SELECT id FROM api_keys WHERE partner_ref = %s", (tenant.partner_ref,))[0]["id"]
    r = api.put(f"/api-keys/by-id/{key_id}", json={"active": False, "domains_allowed": 4})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["domains_allowed"] == 4
    assert tenant.get("/domains/").json()["detail"] == "API key is deactivated"
    assert tenant.put(f"/api-keys/by-id/{key_id}", json={"active": True}).status_code == 403
    assert api.put("/api-keys/by-id/99999999999", json={"active": True}).status_code == 404
    assert api.put("/api-keys/by-id/99999999999999999999999", json={"active": True}).status_code == 404
    assert api.delete(f"/api-keys/by-id/{key_id}").status_code == 204
    assert tenant.get("/domains/").json()["detail"] == "Invalid API key"


def test_partner_quotas_without_a_token(api, unique_ref, make_tenant):
    r = api.put(f"/partners/{unique_ref}", json={"domains_allowed": 2, "mailboxes_per_domain": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["domains_allowed"], body["mailboxes_per_domain"], body["aliases_per_mailbox"]) == (2, 3, 5)
    assert body["api_keys"] == {"active": 0, "total": 0}
    assert api.put(f"/partners/{unique_ref}", json={"aliases_per_mailbox": 9}).json()["domains_allowed"] == 2
    # a key created later inherits the partner's quotas
    r = api.post("/api-keys/", json={"partner_ref": unique_ref})
    assert r.json()["domains_allowed"] == 2 and r.json()["aliases_per_mailbox"] == 9
    got = api.get(f"/partners/{unique_ref}").json()
    assert got["counts"] == {"domains": 0, "mailboxes": 0, "aliases": 0} and got["api_keys"]["active"] == 1
    assert api.get("/partners/does-not-exist").status_code == 404
    assert api.put("/partners/bad%20ref", json={}).status_code == 400
    assert api.put(f"/partners/{unique_ref}", json={"domains_allowed": -1}).status_code == 400
    assert make_tenant().get(f"/partners/{unique_ref}").json()["detail"] == "Master token required"
