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
    # the guillotine's thresholds (dev defaults) beside the rates (issue 11)
    assert (body["bounce_rate_threshold"], body["complaint_rate_threshold"]) == (0.5, 0.1)
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


def test_client_may_lower_limits_master_everything(outbound):
    r = outbound.tenant.put(f"/domains/{outbound.domain}/outbound",
                            json={"outbound_daily_limit": 77, "outbound_monthly_limit": 900})
    assert r.status_code == 200, r.text
    assert r.json()["outbound_daily_limit"] == 77 and r.json()["outbound_monthly_limit"] == 900
    # the operator's values (the defaults here) stay the ceilings
    assert (r.json()["outbound_daily_ceiling"], r.json()["outbound_monthly_ceiling"]) == (1000, 20000)
    body = outbound.set(outbound_tier="dedicated", outbound_enforcement="soft", warmup_profile="fast",
                        spike_max_multiplier=2.5)
    assert (body["outbound_tier"], body["outbound_enforcement"], body["warmup_profile"],
            body["spike_max_multiplier"]) == ("dedicated", "soft", "fast", 2.5)


def client_put(outbound, **fields):
    return outbound.tenant.put(f"/domains/{outbound.domain}/outbound", json=fields)


def test_client_never_raises_its_limits_above_the_masters(outbound, sql):
    outbound.set(outbound_daily_limit=100, outbound_monthly_limit=2000)
    state = outbound.get()
    assert (state["outbound_daily_ceiling"], state["outbound_monthly_ceiling"]) == (100, 2000)
    # 0 is unlimited: more than any ceiling, and it would lift the hourly throttle too
    for fields in ({"outbound_daily_limit": 0}, {"outbound_daily_limit": 101},
                   {"outbound_monthly_limit": 0}, {"outbound_monthly_limit": 2001},
                   {"outbound_daily_limit": 50, "outbound_monthly_limit": 0}):
        r = client_put(outbound, **fields)
        assert r.status_code == 403 and r.json()["code"] == "limit_above_ceiling", (fields, r.text)
        refused_field = next(f for f, v in fields.items() if v in (0, 101, 2001))
        assert r.json()["detail"].startswith(f"{refused_field}: ") and "operator" in r.json()["detail"]
        assert outbound.get() == state, "a refused change writes nothing"
    # lower, then back up to the ceiling, not beyond
    r = client_put(outbound, outbound_daily_limit=10, outbound_monthly_limit=300)
    assert r.status_code == 200 and r.json()["outbound_daily_limit"] == 10, r.text
    assert r.json()["outbound_daily_ceiling"] == 100 and r.json()["hourly_limit"] == 10
    assert client_put(outbound, outbound_daily_limit=101).status_code == 403
    r = client_put(outbound, outbound_daily_limit=100, outbound_monthly_limit=2000)
    assert r.status_code == 200 and r.json()["outbound_daily_limit"] == 100, r.text
    assert client_put(outbound, outbound_daily_limit=0).status_code == 403
    # the master sets a new ceiling, in either direction; 0 = the client may choose anything
    outbound.set(outbound_daily_limit=0)
    r = client_put(outbound, outbound_daily_limit=20)
    assert r.status_code == 200 and r.json()["outbound_daily_ceiling"] == 0, r.text
    assert client_put(outbound, outbound_daily_limit=0).json()["outbound_daily_limit"] == 0
    outbound.set(outbound_daily_limit=30)
    assert client_put(outbound, outbound_daily_limit=31).status_code == 403
    assert client_put(outbound, outbound_daily_limit=0).status_code == 403
    assert sql("SELECT outbound_daily_limit, outbound_daily_ceiling FROM domains WHERE name = %s",
               (outbound.domain,)) == [{"outbound_daily_limit": 30, "outbound_daily_ceiling": None}]


def test_a_lowered_limit_is_enforced_on_submission(outbound, submit):
    outbound.set(warmup_profile=None, spike_max_multiplier=0)
    assert client_put(outbound, outbound_daily_limit=4).status_code == 200
    res = submit.send(outbound.alice, outbound.bob, n=5)
    assert [ok for ok, _, _ in res] == [True] * 4 + [False], res
    assert res[-1][1] == 554 and "Daily sending limit reached" in res[-1][2], res
    outbound.settle(outbound_sent_today=4)


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


def test_suppression_reasons_are_the_masters_only(api, make_tenant, sql):
    """Tenant A's mail bounced and drew a complaint from an address; tenant B
    learns that its own mail there would be refused, never why (nor whose)."""
    a, b = make_tenant(), make_tenant()
    source = a.domain()
    victim = f"complained-{source.split('.')[0]}@example.org"
    for reason in ("bounce", "complaint"):
        sql("INSERT INTO suppression (email, reason, source_domain, provider) VALUES (%s, %s, %s, 'ses')",
            (victim, reason, source))
    try:
        for tenant in (b, a):
            r = tenant.get(f"/suppression/check/{victim}")
            assert r.status_code == 200 and r.json() == {"email": victim, "suppressed": True, "reasons": []}
            assert source not in r.text and "ses" not in r.text
        r = api.get(f"/suppression/check/{victim.upper()}")
        assert r.json() == {"email": victim, "suppressed": True, "reasons": ["bounce", "complaint"]}
        assert b.get("/suppression", params={"domain": source}).status_code == 403
    finally:
        sql("DELETE FROM suppression WHERE email = %s", (victim,))
