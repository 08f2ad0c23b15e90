"""Provider webhooks: Mailgun events and SES notifications over SNS.

No bearer token: each request authenticates by its signature. Anything that
fails a check is refused with 4xx and changes nothing (the request's single
transaction rolls back). Both feed feedback.apply().
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Blueprint, request

from .. import feedback, settings
from ..errors import ApiError
from ..routing import _json_body, endpoint, refuse_unstorable

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


def _env(key):
    return settings.get(key)


# --- Mailgun -------------------------------------------------------------------

def _mailgun_payload():
    """JSON (current webhooks) or form fields (legacy webhooks)."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        f = request.form
        data = {"signature": {"timestamp": f.get("timestamp"), "token": f.get("token"),
                              "signature": f.get("signature")},
                "event-data": {"event": f.get("event"), "recipient": f.get("recipient"),
                               "id": f.get("Message-Id") or f.get("message-id"),
                               "envelope": {"sender": f.get("sender")},
                               "message": {"headers": {"from": f.get("from")}}}}
        refuse_unstorable(data)
        return data
    return _json_body()


def mailgun_signature_ok(key, timestamp, token, signature):
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def _mailgun_kind(ev):
    event, severity = ev.get("event"), ev.get("severity")
    if event == "permanent_fail" or (event == "failed" and severity == "permanent"):
        return "bounce"
    if event == "temporary_fail" or (event == "failed" and severity in ("temporary", None)):
        return "temporary"
    if event in ("complained", "complaint"):
        return "complaint"
    return None


def _mailgun_signed_token(key, data, max_age):
    """The payload's token once its signature block is well-formed, its HMAC
    right and its timestamp fresh; ApiError otherwise."""
    sig = data.get("signature")
    if not isinstance(sig, dict):
        raise ApiError(400, "signature: required")
    ts, token, signature = sig.get("timestamp"), sig.get("token"), sig.get("signature")
    if isinstance(ts, int) and not isinstance(ts, bool):
        ts = str(ts)
    if not (isinstance(ts, str) and ts.isdigit() and len(ts) <= 12):
        raise ApiError(400, "signature.timestamp: expected a Unix time")
    if not (isinstance(token, str) and 1 <= len(token) <= 200):
        raise ApiError(400, "signature.token: required")
    if not (isinstance(signature, str) and re.fullmatch(r"[0-9a-fA-F]{64}", signature)):
        raise ApiError(403, "Invalid signature")
    if not mailgun_signature_ok(key, ts, token, signature.lower()):
        raise ApiError(403, "Invalid signature")
    if abs(time.time() - int(ts)) > max_age:
        raise ApiError(403, "Stale timestamp")
    return token


@endpoint(bp, "/webhooks/mailgun", "POST", role=None, errors=(400, 403, 409, 413),
          summary="Mailgun events (signed): permanent_fail -> bounce, complained -> complaint")
def mailgun_webhook(cur, caller):
    """HMAC-SHA256 of timestamp+token with MAILGUN_WEBHOOK_SIGNING_KEY, compared
    in constant time; timestamps more than MAILGUN_WEBHOOK_MAX_AGE seconds
    (300) away refused; a token is accepted once. Temporary failures are
    counted, not suppressed; other events are acknowledged and ignored."""
    key = _env("MAILGUN_WEBHOOK_SIGNING_KEY")
    if not key:
        raise ApiError(503, "Mailgun webhook is not configured")
    data = _mailgun_payload()
    max_age = int(_env("MAILGUN_WEBHOOK_MAX_AGE"))
    token = _mailgun_signed_token(key, data, max_age)
    ev = data.get("event-data")
    if not isinstance(ev, dict):
        raise ApiError(400, "event-data: required")
    kind = _mailgun_kind(ev)
    email = None
    if kind:
        email = feedback.normalise_email(ev.get("recipient"))
        if email is None:
            raise ApiError(400, "event-data.recipient: invalid email address")
    cur.execute("INSERT INTO webhook_tokens (provider, token) VALUES ('mailgun', %s) "
                "ON CONFLICT DO NOTHING RETURNING token", (token,))
    if cur.fetchone() is None:
        raise ApiError(409, "Token already used")
    cur.execute("DELETE FROM webhook_tokens WHERE provider = 'mailgun' "
                "AND seen_at < now() - make_interval(secs => %s)", (max_age * 4,))
    if kind is None:
        return {"status": "ignored", "event": str(ev.get("event"))[:50]}
    headers = (ev.get("message") or {}).get("headers") or {} if isinstance(ev.get("message"), dict) else {}
    envelope = ev.get("envelope") if isinstance(ev.get("envelope"), dict) else {}
    source = feedback.sender_domain(envelope.get("sender")) or feedback.sender_domain(
        headers.get("from") if isinstance(headers, dict) else None)
    event_id = f"{ev.get('id') or token}:{email}"
    summary = feedback.apply(cur, [feedback.Event("mailgun", str(event_id), kind, email, source)])
    return {"status": "ok", "kind": kind, **summary}


# --- SES over SNS -------------------------------------------------------------------

SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def string_to_sign(msg):
    out = []
    for k in SIGNED_KEYS[msg["Type"]]:
        if k == "Subject" and msg.get("Subject") is None:
            continue
        out.append(f"{k}\n{msg[k]}\n")
    return "".join(out).encode("utf-8")


def valid_sns_url(url):
    try:
        u = urlsplit(url)
    except ValueError:
        return False
    return (u.scheme == "https" and u.hostname is not None and SNS_HOST.match(u.hostname) is not None
            and u.port in (None, 443) and not u.username and not u.password)


def signing_certificate(cur, url):
    """The certificate at url (https sns.<region>.amazonaws.com only), cached
    in sns_certificates."""
    if not valid_sns_url(url) or not urlsplit(url).path.endswith(".pem"):
        raise ApiError(403, "Invalid signing certificate URL")
    cur.execute("SELECT pem FROM sns_certificates WHERE url = %s", (url,))
    row = cur.fetchone()
    if row:
        pem = row["pem"]
    else:
        try:
            r = requests.get(url, timeout=5, allow_redirects=False)
        except requests.RequestException as exc:
            raise ApiError(502, f"Signing certificate unavailable: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise ApiError(400, f"Signing certificate unavailable: HTTP {r.status_code}")
        pem = r.text
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        raise ApiError(400, "Signing certificate unreadable") from None
    now = dt.datetime.now(dt.UTC)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise ApiError(403, "Signing certificate expired or not yet valid")
    if not row:
        # separate statement so that a later 4xx (rollback) does not lose it? No:
        # a forged message changes nothing, so the cache fills with the request.
        cur.execute("INSERT INTO sns_certificates (url, pem) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (url, pem))
    return cert


def verify_sns(cur, msg):
    for k in ("Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion",
              "Signature", "SigningCertURL"):
        if not isinstance(msg.get(k), str) or not msg[k]:
            raise ApiError(400, f"{k}: required")
    if msg["Type"] not in SIGNED_KEYS:
        raise ApiError(400, f"Type: unsupported message type {msg['Type'][:40]!r}")
    if msg["Type"] != "Notification":
        for k in ("SubscribeURL", "Token"):
            if not isinstance(msg.get(k), str) or not msg[k]:
                raise ApiError(400, f"{k}: required")
    if "Subject" in msg and msg["Subject"] is not None and not isinstance(msg["Subject"], str):
        raise ApiError(400, "Subject: must be a string")
    algo = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(msg["SignatureVersion"])
    if algo is None:
        raise ApiError(400, "SignatureVersion: must be 1 or 2")
    try:
        signature = base64.b64decode(msg["Signature"], validate=True)
    except ValueError:
        raise ApiError(403, "Invalid signature") from None
    cert = signing_certificate(cur, msg["SigningCertURL"])
    try:
        cert.public_key().verify(signature, string_to_sign(msg), padding.PKCS1v15(), algo)
    except (InvalidSignature, TypeError, ValueError):
        raise ApiError(403, "Invalid signature") from None


def topics():
    return {t.strip() for t in _env("SNS_TOPIC_ARNS").split(",") if t.strip()}


def confirm_subscription(topic_arn, token):
    """ConfirmSubscription through the SNS API (SNS_ENDPOINT_URL for a stand-in)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    parts = topic_arn.split(":")
    region = parts[3] if len(parts) > 5 else _env("SES_REGION")
    kwargs = {"region_name": region}
    if _env("SNS_ENDPOINT_URL"):
        kwargs["endpoint_url"] = _env("SNS_ENDPOINT_URL")
    if _env("SES_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = _env("SES_ACCESS_KEY_ID")
        kwargs["aws_secret_access_key"] = _env("SES_SECRET_ACCESS_KEY")
    try:
        r = boto3.client("sns", **kwargs).confirm_subscription(TopicArn=topic_arn, Token=token)
    except (BotoCoreError, ClientError) as exc:
        raise ApiError(502, f"Subscription confirmation failed: {type(exc).__name__}") from exc
    return r.get("SubscriptionArn")


def ses_events(msg):
    """feedback.Event list of an SES notification (bounce / complaint)."""
    try:
        body = json.loads(msg["Message"])
    except ValueError:
        raise ApiError(400, "Message: not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Message: not a JSON object")
    ntype = body.get("notificationType") or body.get("eventType")
    mail = body.get("mail") if isinstance(body.get("mail"), dict) else {}
    source = feedback.sender_domain(mail.get("source"))
    if ntype == "Bounce":
        b = body.get("bounce")
        if not isinstance(b, dict) or not isinstance(b.get("bouncedRecipients"), list):
            raise ApiError(400, "bounce.bouncedRecipients: required")
        kind = "bounce" if b.get("bounceType") == "Permanent" else "temporary"
        recips = b["bouncedRecipients"]
    elif ntype == "Complaint":
        c = body.get("complaint")
        if not isinstance(c, dict) or not isinstance(c.get("complainedRecipients"), list):
            raise ApiError(400, "complaint.complainedRecipients: required")
        kind, recips = "complaint", c["complainedRecipients"]
    else:
        return None
    events = []
    for r in recips[:1000]:
        email = feedback.normalise_email(r.get("emailAddress") if isinstance(r, dict) else None)
        if email is None:
            raise ApiError(400, "emailAddress: invalid email address")
        events.append(feedback.Event("ses", f"{msg['MessageId']}:{email}", kind, email, source))
    if not events:
        raise ApiError(400, "no recipients in the notification")
    return events


@endpoint(bp, "/webhooks/ses", "POST", role=None, errors=(400, 403, 413, 502),
          summary="SES notifications over SNS (signature v1/v2 verified); subscription confirmation")
def ses_webhook(cur, caller):
    """The SNS signature is verified against the signing certificate, whose
    URL must be https://sns.<region>.amazonaws.com/...pem (certificates are
    cached). SubscriptionConfirmation is confirmed only for the topics in
    SNS_TOPIC_ARNS; when SNS_TOPIC_ARNS is set, notifications from other
    topics are refused too."""
    msg = _json_body()
    verify_sns(cur, msg)
    allowed = topics()
    if msg["Type"] == "SubscriptionConfirmation":
        if msg["TopicArn"] not in allowed:
            raise ApiError(403, "Topic not allowed")
        arn = confirm_subscription(msg["TopicArn"], msg["Token"])
        log.info("confirmed SNS subscription to %s", msg["TopicArn"])
        return {"status": "confirmed", "topic": msg["TopicArn"], "subscription": arn}
    if msg["Type"] == "UnsubscribeConfirmation":
        return {"status": "ignored"}
    if allowed and msg["TopicArn"] not in allowed:
        raise ApiError(403, "Topic not allowed")
    events = ses_events(msg)
    if events is None:
        return {"status": "ignored"}
    kind = events[0].kind
    return {"status": "ok", "kind": kind, **feedback.apply(cur, events)}
