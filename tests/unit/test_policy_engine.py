"""The outbound decision engine's rules, on plain data (docs/outbound.md).
The same functions decide for the policy daemon and the API; the end-to-end
tests in tests/outbound show them through Postfix."""

import dataclasses

import pytest

from emboux_connector.policy import engine
from emboux_connector.policy.engine import DomainState, Settings

S = Settings()


def state(**kw):
    base = dict(id=1, name="example.com", status="active", outbound_status="active",
                outbound_status_reason="", provider="local", verified=True, daily_limit=1000,
                monthly_limit=20000, enforcement="hard", warmup_profile=None,
                spike_multiplier=0.0, history_days=0, history_avg=0.0, transfer_monthly_mb=0)
    base.update(kw)
    return DomainState(**base)


def counters(**kw):
    c = dict(sent_today=0, sent_month=0, bytes_month=0, sent_hour=0, warmup_day=0,
             reserved_units=0, reserved_bytes=0)
    c.update(kw)
    return c


@pytest.mark.parametrize("daily,hourly", [(200, 33), (1000, 167), (10000, 1670), (30, 10), (0, None)])
def test_hourly_throttle_is_a_fraction_of_the_daily_limit_never_below_ten(daily, hourly):
    """The contract's own examples: 200 -> 33, 1,000 -> 167, 10,000 -> 1,670."""
    assert engine.hourly_cap(state(daily_limit=daily), S) == hourly


def test_domain_rules_in_order_suspension_first():
    assert engine.domain_check(state()) is None
    v = engine.domain_check(state(status="suspended", outbound_status="suspended", verified=False))
    assert v.kind == "suspended" and v.action.startswith("554 5.7.1")
    v = engine.domain_check(state(outbound_status="suspended", outbound_status_reason="bounce rate 3%"))
    assert v.kind == "outbound_suspended" and "bounce rate 3%" in v.reason
    v = engine.domain_check(state(verified=False, provider="ses"))
    assert v.kind == "unverified" and "(ses)" in v.reason


def test_suppressed_recipient_is_refused_with_550():
    assert engine.recipient_check("a@b.c", []) is None
    v = engine.recipient_check("a@b.c", ["bounce"])
    assert not v.allowed and v.action.startswith("550 5.1.1") and "suppression list" in v.reason
    assert "bounce" not in v.reason       # why is the master's to know, not another tenant's sender


@pytest.mark.parametrize("profile,day,cap", [
    ("standard", 0, 50), ("standard", 1, 55), ("fast", 1, 90), ("conservative", 2, 56),
    ("standard", 100, None),       # the plan's daily limit reached: warm-up over
    (None, 0, None),
])
def test_warmup_cap_grows_by_the_profile_factor(profile, day, cap):
    assert engine.warmup_cap(state(warmup_profile=profile), day, S) == cap


def test_hard_daily_cap_refuses_the_message_that_would_cross_it():
    st = state(daily_limit=100, monthly_limit=0)
    c = counters(sent_today=99)
    verdict, _ = engine.count_check(st, c, 1, 10, S)
    assert verdict.allowed and verdict.counted and c["sent_today"] == 100
    refused = engine.count_check(st, c, 1, 10, S)
    assert not refused.allowed and refused.kind == "daily"
    assert "100/100" in refused.reason and c["sent_today"] == 100   # nothing counted


def test_reserved_units_count_as_spent():
    st = state(daily_limit=100, monthly_limit=0)
    refused = engine.count_check(st, counters(sent_today=90, reserved_units=10), 1, 0, S)
    assert not refused.allowed and refused.kind == "daily"


def test_soft_cap_accepts_and_bills_the_overage():
    st = state(daily_limit=100, monthly_limit=0, enforcement="soft")
    c = counters(sent_today=99, sent_hour=0)
    verdict, _ = engine.count_check(st, c, 3, 0, S)
    assert verdict.allowed and verdict.overage == 2 and "overage" in verdict.reason


def test_the_hourly_throttle_defers_even_when_soft():
    st = state(daily_limit=1000, enforcement="soft")
    refused = engine.count_check(st, counters(sent_hour=167), 1, 0, S)
    assert not refused.allowed and refused.kind == "hourly" and refused.action.startswith("451")


def test_transfer_cap_in_bytes():
    st = state(transfer_monthly_mb=1, daily_limit=0, monthly_limit=0)
    refused = engine.count_check(st, counters(bytes_month=engine.MB - 10), 1, 11, S)
    assert not refused.allowed and refused.kind == "transfer"
    verdict, over = engine.count_check(dataclasses.replace(st, enforcement="soft"),
                                       counters(bytes_month=engine.MB - 10), 1, 11, S)
    assert verdict.allowed and over == 1


def test_spike_blocks_hard_and_warns_soft():
    st = state(spike_multiplier=2.0, history_days=7, history_avg=100.0, daily_limit=0, monthly_limit=0)
    assert engine.spike_cap(st, S) == 200
    refused = engine.count_check(st, counters(sent_today=200), 1, 0, S)
    assert not refused.allowed and refused.kind == "spike"
    verdict, _ = engine.count_check(dataclasses.replace(st, enforcement="soft"),
                                    counters(sent_today=200), 1, 0, S)
    assert verdict.allowed and verdict.warn and verdict.overage == 0


def test_lease_grants_shrink_near_the_cap_and_never_pass_it():
    st = state(daily_limit=0, monthly_limit=100)     # no daily limit: no hourly throttle
    c = counters()
    total = 0
    while True:
        units, _, refusal = engine.lease_grant(st, c, 1, 0, S)
        if refusal:
            break
        assert units >= 1
        total += units
    assert total == 100 and c["reserved_units"] == 100
    assert refusal.kind == "monthly"


def test_the_hourly_throttle_binds_a_lease_first():
    st = state(daily_limit=100, monthly_limit=0)     # 17 an hour
    c = counters()
    grants = [engine.lease_grant(st, c, 1, 0, S) for _ in range(200)]
    assert sum(g[0] for g in grants) == 17
    assert grants[-1][2].kind == "hourly"


def test_settings_from_env_refuse_a_malformed_number():
    assert Settings.from_env({"HOURLY_FRACTION": "0.5"}).hourly_fraction == 0.5
    with pytest.raises(SystemExit, match="HOURLY_FLOOR"):
        Settings.from_env({"HOURLY_FLOOR": "ten"})
