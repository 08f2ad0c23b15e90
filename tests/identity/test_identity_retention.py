"""A suspension imposed by the bounce/complaint guillotine (real Mailgun webhook,
real feedback routine) survives deleting and re-creating the domain, whoever
re-creates it (issue 9; the rest is in tests/outbound/test_retention.py)."""

from test_identity_webhooks import fresh, mailgun_event, rcpt


def test_guillotined_name_stays_suspended_after_delete(hook, devenv, sql, api, make_tenant):
    key = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"]
    owner, squatter = make_tenant(), make_tenant()
    name = fresh("gl")
    assert api.post("/domains/", json={"name": name, "partner_ref": owner.partner_ref}).status_code == 201
    sql("UPDATE outbound_counters SET sent_month = 200 FROM domains d "
        "WHERE d.id = domain_id AND d.name = %s", (name,))
    for _ in range(3):   # 3/200 = 1.5 % > 0.5 %
        r = hook("/webhooks/mailgun", mailgun_event(key, "failed", rcpt(), f"a@{name}", "permanent"))
        assert r.status_code == 200, r.text
    out = api.get(f"/domains/{name}/outbound").json()
    assert out["outbound_status"] == "suspended" and out["outbound_status_reason"].startswith("guillotine")
    reason = out["outbound_status_reason"]

    assert owner.delete(f"/domains/{name}").status_code == 204
    assert api.post("/domains/", json={"name": name, "partner_ref": owner.partner_ref}).status_code == 201
    out = owner.get(f"/domains/{name}/outbound").json()
    assert (out["outbound_status"], out["outbound_status_reason"]) == ("suspended", reason)
    assert (out["outbound_sent_month"], out["bounce_count"]) == (200, 3)

    # another tenant takes the freed name: still suspended, but not the owner's numbers
    assert owner.delete(f"/domains/{name}").status_code == 204
    assert api.post("/domains/", json={"name": name, "partner_ref": squatter.partner_ref}).status_code == 201
    out = squatter.get(f"/domains/{name}/outbound").json()
    assert (out["outbound_status"], out["outbound_status_reason"]) == ("suspended", reason)
    assert (out["outbound_sent_month"], out["bounce_count"]) == (0, 0)
