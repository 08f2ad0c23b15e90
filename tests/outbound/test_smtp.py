"""Outbound rules enforced by the mail server itself: smtplib over the
submission port, Postfix asking emboux-policyd at RCPT and END-OF-MESSAGE."""

import smtplib

import pytest

from outbound_helpers import accepted, wait_until


def refusals(results):
    return [(code, text) for ok, code, text in results if not ok]


def test_hard_daily_cap_exactly_n(outbound, submit):
    outbound.set(outbound_daily_limit=5, warmup_profile=None, spike_max_multiplier=0)
    res = submit.send(outbound.alice, outbound.bob, n=8)
    assert accepted(res) == 5, res
    assert [ok for ok, _, _ in res] == [True] * 5 + [False] * 3
    for code, text in refusals(res):
        assert code == 554 and "Daily sending limit reached" in text, (code, text)
    outbound.settle(outbound_sent_today=5, outbound_sent_month=5)


def test_a_message_counts_its_recipients(outbound, submit, tenant):
    carol = tenant.mailbox(outbound.domain, "carol")
    outbound.set(outbound_daily_limit=5, warmup_profile=None, spike_max_multiplier=0)
    assert accepted(submit.send(outbound.alice, [outbound.bob, carol], n=2)) == 2   # 4 units
    res = submit.send(outbound.alice, [outbound.bob, carol])                        # 6 > 5
    assert accepted(res) == 0, res
    assert accepted(submit.send(outbound.alice, outbound.bob)) == 1                 # 5 = 5
    outbound.settle(outbound_sent_today=5)


def test_soft_cap_lets_through_and_counts_overage(outbound, submit):
    outbound.set(outbound_daily_limit=3, outbound_enforcement="soft", warmup_profile=None,
                 spike_max_multiplier=0)
    res = submit.send(outbound.alice, outbound.bob, n=5)
    assert accepted(res) == 5, res
    outbound.settle(outbound_sent_today=5, overage_today=2, overage_month=2)


def test_hourly_throttle(outbound, submit):
    # daily 100 x HOURLY_FRACTION 0.167 = 17 per hour
    state = outbound.set(outbound_daily_limit=100, warmup_profile=None, spike_max_multiplier=0)
    assert state["hourly_limit"] == 17
    res = submit.send(outbound.alice, outbound.bob, n=19)
    assert accepted(res) == 17, res
    for code, text in refusals(res):
        assert code == 451 and "Hourly sending limit" in text, (code, text)
    outbound.settle(outbound_sent_this_hour=17)


def test_hourly_floor_is_10(outbound, submit):
    assert outbound.set(outbound_daily_limit=20, warmup_profile=None)["hourly_limit"] == 10


def test_warmup_caps_a_new_domain_and_grows_daily(outbound, submit, sql):
    state = outbound.get()
    assert state["warmup_profile"] == "standard" and state["warmup_day"] == 0
    assert state["warmup_daily_cap"] == 50
    res = submit.send(outbound.alice, outbound.bob, n=52)
    assert accepted(res) == 50, res
    for code, text in refusals(res):
        assert code == 554 and "Warm-up limit" in text, (code, text)
    # the next day, as reset-daily leaves it (that step itself: test_resets.py; a
    # real reset-daily closes only a day that is over, once)
    outbound.settle(outbound_sent_today=50)
    sql("UPDATE outbound_counters c SET sent_today = 0, warmup_day = warmup_day + 1 FROM domains d "
        "WHERE d.id = c.domain_id AND d.name = %s", (outbound.domain,))
    state = outbound.settle(warmup_day=1, outbound_sent_today=0)
    assert state["warmup_daily_cap"] == 55                                # ceil(50 x 1.1)
    # a fast profile grows 1.8x per day: ceil(50 x 1.8) = 90
    assert outbound.set(warmup_profile="fast")["warmup_daily_cap"] == 90
    assert outbound.set(warmup_profile="conservative")["warmup_daily_cap"] == 53
    # the warm-up ends where the plan's daily limit is
    assert outbound.set(outbound_daily_limit=40)["warmup_daily_cap"] is None


def test_spike_block(outbound, submit, sql):
    outbound.set(warmup_profile=None, outbound_daily_limit=1000)
    dom_id = sql("SELECT id FROM domains WHERE name = %s", (outbound.domain,))[0]["id"]
    for i in range(7):
        sql("INSERT INTO outbound_history (domain_id, day, sent) VALUES (%s, DATE '2000-01-01' + %s, 20)",
            (dom_id, i))
    state = outbound.set(spike_max_multiplier=3)      # also tells the daemon (NOTIFY)
    assert state["daily_average_7d"] == 20 and state["spike_daily_cap"] == 60
    res = submit.send(outbound.alice, outbound.bob, n=62)
    assert accepted(res) == 60, res
    for code, text in refusals(res):
        assert code == 554 and "spike" in text, (code, text)
    # soft enforcement: a warning, not a block
    outbound.set(outbound_enforcement="soft")
    assert accepted(submit.send(outbound.alice, outbound.bob, n=2)) == 2


def test_transfer_cap_by_bytes(outbound, submit, api):
    outbound.set(warmup_profile=None)
    assert api.put(f"/domains/{outbound.domain}/transfer",
                   json={"transfer_monthly_mb": 1}).status_code == 200
    body = ("x" * 998 + "\r\n") * 300                  # ~300 kB per message
    res = submit.send(outbound.alice, outbound.bob, n=5, body=body)
    assert accepted(res) == 3, res                     # 3 x 300 kB < 1 MiB < 4 x 300 kB
    for code, text in refusals(res):
        assert code == 554 and "transfer limit" in text, (code, text)
    state = wait_until(lambda: (lambda s: s if s["outbound_bytes_month"] > 900_000 else None)(outbound.get()))
    assert state and 900_000 < state["outbound_bytes_month"] <= 1024 * 1024, state


def test_suppressed_recipient_gets_550(outbound, submit, sql, api):
    victim = "bounced-" + outbound.domain.split(".")[0] + "@example.org"
    sql("INSERT INTO suppression (email, reason, source_domain, provider) VALUES (%s, 'bounce', %s, 'ses')",
        (victim, outbound.domain))
    r = api.get(f"/suppression/check/{victim}")
    assert r.json() == {"email": victim, "suppressed": True, "reasons": ["bounce"]}
    s = submit.connect(outbound.alice)
    try:
        s.mail(outbound.alice)
        code, text = s.rcpt(victim)
        assert code == 550 and b"5.1.1" in text and b"suppression" in text, (code, text)
        # other recipients in the same transaction still go
        assert s.rcpt(outbound.bob)[0] == 250
    finally:
        s.quit()
    sql("DELETE FROM suppression WHERE email = %s", (victim,))
    assert not api.get(f"/suppression/check/{victim}").json()["suppressed"]


def test_spoofed_from_refused_unless_whitelisted(outbound, submit, tenant):
    other = tenant.domain()
    target = f"ceo@{other}"
    for sender in (outbound.bob, target):
        res = submit.send(outbound.alice, outbound.bob, sender=sender)
        assert not res[0][0] and "not owned by user" in res[0][2], res
    # alice's own alias is fine
    assert tenant.post("/aliases/", json={"domain_name": outbound.domain, "source": f"info@{outbound.domain}",
                                          "destination": outbound.alice}).status_code == 201
    assert accepted(submit.send(outbound.alice, outbound.bob, sender=f"info@{outbound.domain}")) == 1
    # an address on the whitelist, then a whole domain, then anything
    r = tenant.put(f"/users/{outbound.alice}", json={"spoofing_whitelist": [target]})
    assert r.status_code == 200 and r.json()["spoofing_whitelist"] == [target], r.text
    assert accepted(submit.send(outbound.alice, outbound.bob, sender=target)) == 1
    assert not submit.send(outbound.alice, outbound.bob, sender=f"cfo@{other}")[0][0]
    tenant.put(f"/users/{outbound.alice}", json={"spoofing_whitelist": [other]})
    assert accepted(submit.send(outbound.alice, outbound.bob, sender=f"cfo@{other}")) == 1
    assert not submit.send(outbound.alice, outbound.bob, sender="x@example.com")[0][0]
    tenant.put(f"/users/{outbound.alice}", json={"spoofing_whitelist": ["*"]})
    assert accepted(submit.send(outbound.alice, outbound.bob, sender="x@example.com")) == 1
    tenant.put(f"/users/{outbound.alice}", json={"spoofing_whitelist": []})
    assert not submit.send(outbound.alice, outbound.bob, sender="x@example.com")[0][0]
    # bob was never whitelisted for anything
    assert not submit.send(outbound.bob, outbound.alice, sender=target)[0][0]


def test_unauthenticated_submission_refused(outbound, submit):
    s = submit.connect()
    try:
        code, _ = s.mail(outbound.alice)
        code, text = s.rcpt(outbound.bob)
        assert code >= 500, (code, text)
        code, text = s.rcpt("someone@example.org")
        assert code >= 500, (code, text)
    finally:
        s.quit()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submit.connect(outbound.alice, "wrong password")


def test_outbound_suspended_refuses_at_once(outbound, submit):
    assert accepted(submit.send(outbound.alice, outbound.bob)) == 1
    outbound.set(outbound_status="suspended", outbound_status_reason="bounce rate 4.2% above 0.5%")
    res = submit.send(outbound.alice, outbound.bob)
    assert not res[0][0] and res[0][1] == 554, res
    assert "Outbound mail for" in res[0][2] and "bounce rate 4.2%" in res[0][2], res
    outbound.set(outbound_status="active")
    assert accepted(submit.send(outbound.alice, outbound.bob)) == 1
    outbound.settle(outbound_sent_today=2)                   # refused: not counted


def test_suspended_domain_cannot_send(outbound, submit, api):
    s = submit.connect(outbound.alice)           # logged in before the suspension
    try:
        assert api.put(f"/domains/{outbound.domain}/suspend").status_code == 200
        s.mail(outbound.alice)
        code, text = s.rcpt(outbound.bob)
        assert code >= 500 and b"suspended" in text, (code, text)
    finally:
        s.quit()
        api.put(f"/domains/{outbound.domain}/activate")


def test_unverified_provider_domain_refused_subdomain_inherits(outbound, submit, api, tenant):
    outbound.set(provider="ses", ses_verified=False)
    res = submit.send(outbound.alice, outbound.bob)
    assert not res[0][0] and "not verified" in res[0][2], res
    outbound.set(ses_verified=True)
    assert accepted(submit.send(outbound.alice, outbound.bob)) == 1
    # a subdomain with its own (unverified) SES identity sends under its parent's
    sub = f"news.{outbound.domain}"
    tenant.domain(sub)   # (its ownership proved: its mailbox may log in)
    writer = tenant.mailbox(sub, "writer")
    assert api.put(f"/domains/{sub}/outbound", json={"provider": "ses", "ses_verified": False}).status_code == 200
    assert not submit.send(writer, outbound.bob)[0][0]
    assert api.put(f"/domains/{sub}/parent", json={"parent": outbound.domain}).status_code == 200
    assert api.get(f"/domains/{sub}/outbound").json()["ses_verified"] is True
    assert accepted(submit.send(writer, outbound.bob)) == 1


def test_submission_disabled_mailbox(outbound, submit, tenant):
    r = tenant.put(f"/users/{outbound.alice}", json={"submission_disabled": True})
    assert r.status_code == 200 and r.json()["submission_disabled"] is True, r.text
    res = submit.send(outbound.alice, outbound.bob)
    assert not res[0][0] and "Sending is disabled" in res[0][2], res
    assert accepted(submit.send(outbound.bob, outbound.alice)) == 1     # others unaffected
    tenant.put(f"/users/{outbound.alice}", json={"submission_disabled": False})
    assert accepted(submit.send(outbound.alice, outbound.bob)) == 1


def test_new_limit_applies_at_next_transaction(outbound, submit):
    outbound.set(outbound_daily_limit=2, warmup_profile=None)
    assert accepted(submit.send(outbound.alice, outbound.bob, n=3)) == 2
    outbound.set(outbound_daily_limit=4)
    assert accepted(submit.send(outbound.alice, outbound.bob, n=3)) == 2
    outbound.set(outbound_daily_limit=0, outbound_monthly_limit=5)
    assert accepted(submit.send(outbound.alice, outbound.bob, n=2)) == 1
