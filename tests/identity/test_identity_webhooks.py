"""POST /webhooks/mailgun and /webhooks/ses: signatures, replay, freshness,
the shared feedback routine (suppression, counters, guillotine) and the
suppression endpoints. Forged or bad input: 4xx, nothing stored or counted."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

import datetime as dt


def sns_notification(topic, message, msg_id=None):
    return {"Type": "Notification", "MessageId": msg_id or str(uuid.uuid4()), "TopicArn": topic,
            "Message": json.dumps(message), "Timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}


def fresh(prefix="wh"):
    return f"{prefix}{uuid.uuid4().hex[:10]}.emboux-test.net"


def rcpt():
    return f"r{uuid.uuid4().hex[:10]}@example.org"


def mailgun_event(key, event, recipient, sender, severity=None, ts=None, token=None, sig=None):
    ts = str(int(time.time()) if ts is None else ts)
    token = token or uuid.uuid4().hex
    sig = sig or hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    data = {"event": event, "recipient": recipient, "id": uuid.uuid4().hex,
            "envelope": {"sender": sender}, "message": {"headers": {"from": f"Shop <{sender}>"}}}
    if severity:
        data["severity"] = severity
    return {"signature": {"timestamp": ts, "token": token, "signature": sig}, "event-data": data}


def counters(sql, name):
    return sql("SELECT c.bounce_count, c.complaint_count, c.temp_fail_count, d.outbound_status, "
               "d.outbound_status_reason FROM outbound_counters c JOIN domains d ON d.id = c.domain_id "
               "WHERE d.name = %s", (name,))[0]


def suppressed(sql, email):
    return sql("SELECT reason, source_domain, provider FROM suppression WHERE email = %s ORDER BY reason", (email,))


@pytest.fixture
def domain(api):
    name = fresh()
    assert api.post("/domains/", json={"name": name}).status_code == 201
    return name


def test_mailgun_permanent_fail_is_a_bounce(hook, devenv, sql, domain, api):
    key, to = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"], rcpt()
    r = hook("/webhooks/mailgun", mailgun_event(key, "failed", to, f"news@{domain}", "permanent"))
    assert r.status_code == 200, r.text
    assert suppressed(sql, to) == [{"reason": "bounce", "source_domain": domain, "provider": "mailgun"}]
    assert counters(sql, domain)["bounce_count"] == 1
    chk = api.get(f"/suppression/check/{to}").json()
    assert chk == {"email": to, "suppressed": True, "reasons": ["bounce"]}
    # legacy event name
    to2 = rcpt()
    assert hook("/webhooks/mailgun", mailgun_event(key, "permanent_fail", to2, f"a@{domain}")).status_code == 200
    assert suppressed(sql, to2)[0]["reason"] == "bounce"


def test_mailgun_complaint_and_temporary(hook, devenv, sql, domain):
    key, to = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"], rcpt()
    assert hook("/webhooks/mailgun", mailgun_event(key, "complained", to, f"a@{domain}")).status_code == 200
    assert suppressed(sql, to)[0]["reason"] == "complaint"
    to2 = rcpt()
    assert hook("/webhooks/mailgun", mailgun_event(key, "failed", to2, f"a@{domain}", "temporary")).status_code == 200
    assert suppressed(sql, to2) == []
    c = counters(sql, domain)
    assert (c["complaint_count"], c["temp_fail_count"], c["bounce_count"]) == (1, 1, 0)


def test_mailgun_forged_stale_replayed_are_refused(hook, devenv, sql, domain):
    key, to = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"], rcpt()
    bad = mailgun_event("not-the-key", "failed", to, f"a@{domain}", "permanent")
    r = hook("/webhooks/mailgun", bad)
    assert r.status_code == 403 and r.json()["detail"] == "Invalid signature"
    stale = mailgun_event(key, "failed", to, f"a@{domain}", "permanent", ts=int(time.time()) - 3600)
    r = hook("/webhooks/mailgun", stale)
    assert r.status_code == 403 and r.json()["detail"] == "Stale timestamp"
    # a signed event body altered: the signature covers timestamp+token only,
    # but changing them breaks it
    good = mailgun_event(key, "failed", to, f"a@{domain}", "permanent")
    tampered = json.loads(json.dumps(good))
    tampered["signature"]["timestamp"] = str(int(good["signature"]["timestamp"]) + 1)
    assert hook("/webhooks/mailgun", tampered).status_code == 403
    assert suppressed(sql, to) == [] and counters(sql, domain)["bounce_count"] == 0
    assert hook("/webhooks/mailgun", good).status_code == 200
    replay = json.loads(json.dumps(good))
    replay["event-data"]["recipient"] = rcpt()
    r = hook("/webhooks/mailgun", replay)
    assert r.status_code == 409 and r.json()["detail"] == "Token already used"
    assert counters(sql, domain)["bounce_count"] == 1
    assert suppressed(sql, replay["event-data"]["recipient"]) == []


def test_mailgun_bad_input(hook, devenv, sql, domain):
    key = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"]
    for payload in ({}, {"signature": "x"}, {"signature": {"timestamp": "abc", "token": "t", "signature": "0" * 64}}):
        r = hook("/webhooks/mailgun", payload)
        assert 400 <= r.status_code < 500 and "detail" in r.json()
    ev = mailgun_event(key, "failed", "not an address", f"a@{domain}", "permanent")
    r = hook("/webhooks/mailgun", ev)
    assert r.status_code == 400 and "recipient" in r.json()["detail"]
    # the token of the refused request was not consumed
    assert sql("SELECT 1 FROM webhook_tokens WHERE token = %s", (ev["signature"]["token"],)) == []
    r = requests.post(devenv["EMBOUX_API_URL"] + "/webhooks/mailgun", data=b"{nope", timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_guillotine_suspends_outbound_above_bounce_rate(hook, devenv, sql, domain, api):
    key = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"]
    sql("UPDATE outbound_counters SET sent_month = 400 FROM domains d "
        "WHERE d.id = domain_id AND d.name = %s", (domain,))
    # 2/400 = 0.5 %: not above the threshold
    for _ in range(2):
        hard_bounce = mailgun_event(key, "failed", rcpt(), f"a@{domain}", "permanent")
        assert hook("/webhooks/mailgun", hard_bounce).status_code == 200
    assert counters(sql, domain)["outbound_status"] == "active"
    hard_bounce = mailgun_event(key, "failed", rcpt(), f"a@{domain}", "permanent")
    assert hook("/webhooks/mailgun", hard_bounce).status_code == 200
    c = counters(sql, domain)
    assert c["outbound_status"] == "suspended" and "bounce rate 0.75%" in c["outbound_status_reason"]
    out = api.get(f"/domains/{domain}/outbound").json()
    assert out["outbound_status"] == "suspended" and out["bounce_count"] == 3


def test_guillotine_complaints_and_minimum_volume(hook, devenv, sql, api):
    key = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"]
    small, big = fresh(), fresh()
    for n in (small, big):
        api.post("/domains/", json={"name": n})
    sql("UPDATE outbound_counters SET sent_month = 10 FROM domains d WHERE d.id = domain_id AND d.name = %s", (small,))
    sql("UPDATE outbound_counters SET sent_month = 500 FROM domains d WHERE d.id = domain_id AND d.name = %s", (big,))
    hook("/webhooks/mailgun", mailgun_event(key, "complained", rcpt(), f"a@{small}"))
    assert counters(sql, small)["outbound_status"] == "active"     # 10 % but below the minimum volume
    hook("/webhooks/mailgun", mailgun_event(key, "complained", rcpt(), f"a@{big}"))
    c = counters(sql, big)
    assert c["outbound_status"] == "suspended" and "complaint rate 0.20%" in c["outbound_status_reason"]


# --- SES over SNS -------------------------------------------------------------------

def ses_bounce(domain, emails, btype="Permanent"):
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": btype, "bouncedRecipients": [{"emailAddress": e} for e in emails]},
            "mail": {"source": f"news@{domain}", "messageId": uuid.uuid4().hex}}


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_signed_v1_and_v2(hook, sns_signer, devenv, sql, domain, version):
    topic = devenv["SNS_TOPIC_ARNS"].split(",")[0]
    a, b = rcpt(), rcpt()
    msg = sns_signer(sns_notification(topic, ses_bounce(domain, [a, b])), version=version)
    r = hook("/webhooks/ses", msg)
    assert r.status_code == 200, r.text
    assert suppressed(sql, a) == [{"reason": "bounce", "source_domain": domain, "provider": "ses"}]
    assert counters(sql, domain)["bounce_count"] == 2
    # redelivered by SNS: counted once
    assert hook("/webhooks/ses", msg).status_code == 200
    assert counters(sql, domain)["bounce_count"] == 2


def test_ses_complaint_and_transient(hook, sns_signer, devenv, sql, domain):
    topic = devenv["SNS_TOPIC_ARNS"].split(",")[0]
    c = rcpt()
    complaint = {"notificationType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": c}]},
                 "mail": {"source": f"a@{domain}"}}
    assert hook("/webhooks/ses", sns_signer(sns_notification(topic, complaint))).status_code == 200
    t = rcpt()
    soft_bounce = ses_bounce(domain, [t], "Transient")
    assert hook("/webhooks/ses", sns_signer(sns_notification(topic, soft_bounce))).status_code == 200
    assert suppressed(sql, c)[0]["reason"] == "complaint" and suppressed(sql, t) == []
    k = counters(sql, domain)
    assert (k["complaint_count"], k["temp_fail_count"]) == (1, 1)


def test_ses_forgeries_are_refused(hook, sns_signer, devenv, sql, domain):
    from cryptography.hazmat.primitives.asymmetric import rsa
    topic = devenv["SNS_TOPIC_ARNS"].split(",")[0]
    to = rcpt()
    note = sns_notification(topic, ses_bounce(domain, [to]))
    # signed by another key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = hook("/webhooks/ses", sns_signer(note, signing_key=other))
    assert r.status_code == 403 and r.json()["detail"] == "Invalid signature"
    # body changed after signing
    signed = sns_signer(note)
    r = hook("/webhooks/ses", dict(signed, Message=json.dumps(ses_bounce(domain, [rcpt()]))))
    assert r.status_code == 403
    # certificate URL not on sns.<region>.amazonaws.com over https
    for url in ("http://sns.us-east-1.amazonaws.com/x.pem", "https://sns.us-east-1.amazonaws.com.evil.net/x.pem",
                "https://evil.net/sns.us-east-1.amazonaws.com.pem", "https://s3.amazonaws.com/x.pem"):
        r = hook("/webhooks/ses", sns_signer(note, cert_url=url))
        assert r.status_code == 403 and r.json()["detail"] == "Invalid signing certificate URL", url
    r = hook("/webhooks/ses", sns_signer(note, version="3"))
    assert r.status_code == 400
    r = hook("/webhooks/ses", sns_signer(sns_notification("arn:aws:sns:us-east-1:999:other", ses_bounce(domain, [to]))))
    assert r.status_code == 403 and r.json()["detail"] == "Topic not allowed"
    assert hook("/webhooks/ses", {"Type": "Notification"}).status_code == 400
    assert suppressed(sql, to) == [] and counters(sql, domain)["bounce_count"] == 0


def test_ses_subscription_confirmation(hook, sns_signer, sns, devenv):
    topic = devenv["SNS_TOPIC_ARNS"].split(",")[0]
    sns.create_topic(Name=topic.rsplit(":", 1)[1])
    conf = {"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
            "Token": uuid.uuid4().hex * 2, "Message": "You have chosen to subscribe...",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": "2026-01-01T00:00:00.000Z"}
    r = hook("/webhooks/ses", sns_signer(conf, version="1"))
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
    other = dict(conf, TopicArn="arn:aws:sns:us-east-1:123456789012:not-ours")
    r = hook("/webhooks/ses", sns_signer(other))
    assert r.status_code == 403 and r.json()["detail"] == "Topic not allowed"


# --- suppression endpoints ------------------------------------------------------

def test_suppression_list_filter_delete(api, hook, devenv, sql, domain, tenant):
    key = devenv["MAILGUN_WEBHOOK_SIGNING_KEY"]
    b, c = rcpt(), rcpt()
    hook("/webhooks/mailgun", mailgun_event(key, "failed", b, f"a@{domain}", "permanent"))
    hook("/webhooks/mailgun", mailgun_event(key, "complained", c, f"a@{domain}"))
    r = api.get("/suppression", params={"domain": domain})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2 and {e["email"] for e in body["entries"]} == {b, c}
    assert set(body["entries"][0]) == {"id", "email", "reason", "source_domain", "provider", "created_at"}
    r = api.get("/suppression", params={"domain": domain, "reason": "complaint"}).json()
    assert r["count"] == 1 and r["entries"][0]["email"] == c
    page = api.get("/suppression", params={"domain": domain, "limit": 1, "offset": 1}).json()
    assert page["count"] == 2 and len(page["entries"]) == 1
    assert api.get("/suppression", params={"reason": "spam"}).status_code == 400
    assert api.get("/suppression", params={"limit": "x"}).status_code == 400
    assert tenant.get("/suppression").status_code == 403
    assert tenant.delete(f"/suppression/{b}").status_code == 403
    r = api.delete(f"/suppression/{b.upper()}")
    assert r.status_code == 200 and r.json()["removed"] == ["bounce"]
    assert api.get(f"/suppression/check/{b}").json()["suppressed"] is False
    assert api.delete(f"/suppression/{b}").status_code == 404
    assert api.delete("/suppression/not-an-address").status_code == 400
