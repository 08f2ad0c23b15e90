"""The outbound endpoints: role rules, the atomic increment (the daemon's
own decision code), idempotent resets, billing, PUT /users fields."""

import pytest


def test_get_outbound_fields_and_isolation(outbound, make_tenant):
    r = outbound.tenant.get(f"/domains/{outbound.domain}/outbound")
    assert r.status_code == 200, r.text
    body = r.json()
    for f in ("outbound_tier", "outbound_status", "outbound_daily_limit", "outbound_monthly_limit",
              "outbound_sent_today", "outbound_sent_month", "outbound_enforcement", "bounce_count",
              "complaint_count", "bounce_rate", "complaint_rate", "ses_verified", "warmup_profile",
              "spike_max_multiplier"):
        assert f in body, f
    assert body["outbound_tier"] == "shared" and body["outbound_enforcement"] == "hard"
    assert body["warmup_profile"] == "standard" and body["spike_max_multiplier"] == 5
    other = make_tenant()
    assert other.get(f"/domains/{outbound.domain}/outbound").status_code == 404
    assert other.put(f"/domains/{outbound.domain}/outbound",
                     json={"outbound_daily_limit": 5}).status_code == 404


@pytest.mark.parametrize("field,value", [
    ("outbound_tier", "dedicated"), ("outbound_enforcement", "soft"), ("outbound_status", "suspended"),
    ("warmup_profile", "fast"), ("spike_max_multiplier", 2), ("ses_verified", True), ("provider", "ses"),
])
def test_client_may_not_change_master_fields(outbound, field, value):
    before = outbound.get()
    r = outbound.tenant.put(f"/domains/{outbound.domain}/outbound", json={field: value})
    assert r.status_code == 403 and r.json()["detail"] == "Master token required"
    assert outbound.get() == before


def test_client_may_change_limits_master_everything(outbound):
    r = outbound.tenant.put(f"/domains/{outbound.domain}/outbound",
                            json={"outbound_daily_limit": 77, "outbound_monthly_limit": 900})
    assert r.status_code == 200, r.text
    assert r.json()["outbound_daily_limit"] == 77 and r.json()["outbound_monthly_limit"] == 900
    body = outbound.set(outbound_tier="dedicated", outbound_enforcement="soft", warmup_profile="fast",
                        spike_max_multiplier=2.5)
    assert (body["outbound_tier"], body["outbound_enforcement"], body["warmup_profile"],
            body["spike_max_multiplier"]) == ("dedicated", "soft", "fast", 2.5)


@pytest.mark.parametrize("body", [
    {}, {"outbound_daily_limit": -1}, {"outbound_daily_limit": "10"}, {"outbound_daily_limit": 1.5},
    {"outbound_enforcement": "medium"}, {"warmup_profile": "turbo"}, {"spike_max_multiplier": "5"},
    {"spike_max_multiplier": -1}, {"ses_verified": "yes"}, {"provider": "sendgrid"},
])
def test_bad_outbound_input(outbound, api, body):
    r = api.put(f"/domains/{outbound.domain}/outbound", json=body)
    assert r.status_code == 400, (body, r.text)


def test_increment_is_the_daemons_decision(outbound, api, tenant):
    path = f"/domains/{outbound.domain}/outbound/increment"
    assert tenant.post(path).status_code == 403
    outbound.set(outbound_daily_limit=2, warmup_profile=None)
    got = [api.post(path).json() for _ in range(3)]
    assert [g["allowed"] for g in got] == [True, True, False]
    assert got[2]["outbound_sent_today"] == 2 and "Daily sending limit" in got[2]["reason"]
    assert set(got[0]) == {"name", "outbound_sent_today", "outbound_sent_month", "allowed", "reason"}
    # soft: allowed with a reason, counted as overage
    outbound.set(outbound_enforcement="soft")
    r = api.post(path).json()
    assert r["allowed"] is True and "overage" in r["reason"] and r["outbound_sent_today"] == 3
    # a message id is counted once
    for _ in range(2):
        r = api.post(path, json={"message_id": f"once-{outbound.domain}"}).json()
    assert r["outbound_sent_today"] == 4
    # the domain rules too
    outbound.set(outbound_status="suspended")
    r = api.post(path).json()
    assert r["allowed"] is False and "suspended" in r["reason"] and r["outbound_sent_today"] == 4
    assert api.post("/domains/nope.emboux-test.net/outbound/increment").status_code == 404


def test_reset_daily_is_idempotent_and_feeds_history(outbound, api, sql, next_day):
    outbound.set(warmup_profile=None)
    path = f"/domains/{outbound.domain}/outbound/increment"
    for _ in range(2):
        assert api.post(path).json()["allowed"]
    assert outbound.tenant.post("/outbound/reset-daily").status_code == 403
    day = next_day()
    r = api.post("/outbound/reset-daily", json={"day": day})
    assert r.status_code == 200 and r.json()["already_done"] is False, r.text
    state = outbound.get()
    assert state["outbound_sent_today"] == 0 and state["outbound_sent_month"] == 2
    assert state["daily_average_7d"] == 2
    api.post(path)
    again = api.post("/outbound/reset-daily", json={"day": day})
    assert again.status_code == 200 and again.json()["already_done"] is True
    assert outbound.get()["outbound_sent_today"] == 1              # untouched the second time
    rows = sql("SELECT day::text, sent FROM outbound_history h JOIN domains d ON d.id = h.domain_id "
               "WHERE d.name = %s", (outbound.domain,))
    assert rows == [{"day": day, "sent": 2}]
    assert api.post("/outbound/reset-daily", json={"day": "yesterday"}).status_code == 400


def test_reset_monthly_freezes_for_billing_once(outbound, api, next_month):
    outbound.set(warmup_profile=None, outbound_daily_limit=2, outbound_enforcement="soft")
    path = f"/domains/{outbound.domain}/outbound/increment"
    for _ in range(3):
        api.post(path, json={"bytes": 1000})
    month = next_month()
    r = api.post("/outbound/reset-monthly", json={"month": month})
    assert r.status_code == 200 and r.json()["already_done"] is False, r.text
    state = outbound.get()
    assert state["outbound_sent_month"] == 0 and state["overage_month"] == 0
    api.post(path)
    assert api.post("/outbound/reset-monthly", json={"month": month}).json()["already_done"] is True
    assert outbound.get()["outbound_sent_month"] == 1
    bill = api.get("/outbound/billing", params={"month": month}).json()["entries"]
    mine = [b for b in bill if b["domain_name"] == outbound.domain]
    assert len(mine) == 1
    assert (mine[0]["sent"], mine[0]["overage"], mine[0]["bytes"]) == (3, 1, 3000)
    assert outbound.tenant.get("/outbound/billing").status_code == 403


def test_put_user_fields(outbound, tenant):
    alice = outbound.alice
    r = tenant.put(f"/users/{alice}", json={"password": "a new one 2"})
    assert r.status_code == 200 and r.json() == {"message": "Password updated"}
    r = tenant.put(f"/users/{alice}", json={})
    assert r.status_code == 400 and "password" in r.json()["detail"]
    r = tenant.put(f"/users/{alice}", json={"spoofing_whitelist": ["Boss@Example.COM", "@example.net",
                                                                   "example.org", "*"]})
    assert r.status_code == 200, r.text
    assert r.json()["spoofing_whitelist"] == ["*", "@example.net", "@example.org", "boss@example.com"]
    for bad in (["not an address@"], "x@y.com", [5], ["a@@b.com"]):
        r = tenant.put(f"/users/{alice}", json={"spoofing_whitelist": bad})
        assert r.status_code == 400, (bad, r.text)
    r = tenant.put(f"/users/{alice}", json={"submission_disabled": "yes"})
    assert r.status_code == 400
    got = tenant.get(f"/users/{alice}").json()
    assert got["submission_disabled"] is False and "*" in got["spoofing_whitelist"]


def test_suppression_check(api, tenant, sql):
    r = tenant.get("/suppression/check/Nobody@Example.ORG")
    assert r.status_code == 200
    assert r.json() == {"email": "nobody@example.org", "suppressed": False, "reasons": []}
    assert api.get("/suppression/check/not-an-address").status_code == 400
