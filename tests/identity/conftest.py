"""Fixtures for the sending-identity tests: the stand-ins ./dev up runs
(moto for SES/SNS, the Mailgun stand-in, the SMTP capture sink), the real
NSD on loopback with zones written here, and a test SNS signing certificate.

Shared fixtures (devenv, api, sql, make_tenant) come from tests/conftest.py;
the SMTP helpers from tests/mail/conftest.py are reused through `mail`.
"""

import base64
import datetime as dt
import uuid

import boto3
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from dns_zones import Zones
from stack_clients import Sink, submission_session

PASSWORD = "correct horse 1"


def need(devenv, *keys):
    missing = [k for k in keys if not devenv.get(k)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing in var/dev.env: the identity stack is not up (./dev up)")


class Submission:
    """Send through the dev stack's submission port as a mailbox."""

    def __init__(self, env):
        self.host = env.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(env["SUBMISSION_PORT"])

    def send(self, user, rcpts, subject=None, password=PASSWORD, sender=None, body="hello\r\n"):
        subject = subject or f"t-{uuid.uuid4().hex[:12]}"
        sender = sender or user
        rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
        msg = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject}@{sender.split('@')[1]}>\r\n\r\n{body}")
        with submission_session(self.host, self.port, user, password) as s:
            refused = s.sendmail(sender, rcpts, msg)
        assert not refused, refused
        return subject


@pytest.fixture(scope="session")
def submission(devenv):
    need(devenv, "SUBMISSION_PORT")
    return Submission(devenv)


@pytest.fixture(scope="session")
def ses(devenv):
    need(devenv, "SES_ENDPOINT_URL")
    return boto3.client("ses", endpoint_url=devenv["SES_ENDPOINT_URL"], region_name=devenv["SES_REGION"],
                        aws_access_key_id=devenv["SES_ACCESS_KEY_ID"],
                        aws_secret_access_key=devenv["SES_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def sns(devenv):
    return boto3.client("sns", endpoint_url=devenv["SNS_ENDPOINT_URL"], region_name=devenv["SES_REGION"],
                        aws_access_key_id=devenv["SES_ACCESS_KEY_ID"],
                        aws_secret_access_key=devenv["SES_SECRET_ACCESS_KEY"])


class MailgunStandin:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def calls(self, domain=None):
        calls = requests.get(self.base + "/_calls", timeout=10).json()
        return [c for c in calls if domain is None or f"/{domain}" in c["path"] or c["form"].get("name") == domain]

    def domain(self, name):
        r = requests.get(f"{self.base}/_domains/{name}", timeout=10)
        return r.json() if r.status_code == 200 else None


@pytest.fixture(scope="session")
def mailgun(devenv):
    need(devenv, "MAILGUN_API_URL")
    return MailgunStandin(devenv["MAILGUN_API_URL"])


@pytest.fixture(scope="session")
def sink(devenv):
    need(devenv, "OUTBOUND_SINK_DIR", "OUTBOUND_SINK_PORT")
    return Sink(devenv["OUTBOUND_SINK_DIR"])


@pytest.fixture
def hook(devenv):
    """POST a JSON payload to one of the connector's webhook endpoints."""
    url = devenv["EMBOUX_API_URL"]

    def post(path, payload, **kw):
        return requests.post(url + path, json=payload, timeout=30, **kw)
    return post


@pytest.fixture
def zones(devenv):
    need(devenv, "DNS_ZONES_DIR", "NSD_CONF", "DNS_RESOLVER")
    z = Zones(devenv)
    yield z
    z.cleanup()


# --- SNS: a test signing certificate, reached through the certificate cache ---
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-emboux-test.pem"


@pytest.fixture(scope="session")
def sns_signer(maildb):
    """Signs SNS messages with a test key whose certificate sits in the
    connector's certificate cache (sns_certificates) under an
    sns.us-east-1.amazonaws.com URL: the webhook verifies it exactly like a
    fetched one (there is no switch that disables verification)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    with maildb.cursor() as cur:
        cur.execute("INSERT INTO sns_certificates (url, pem) VALUES (%s, %s) "
                    "ON CONFLICT (url) DO UPDATE SET pem = EXCLUDED.pem, fetched_at = now()", (CERT_URL, pem))

    def sign(msg, version="2", cert_url=CERT_URL, signing_key=None):
        msg = dict(msg, SignatureVersion=version, SigningCertURL=cert_url)
        # AWS's canonical form, written out here independently of the connector
        keys = (["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
                if msg["Type"] == "Notification" else
                ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"])
        text = "".join(f"{k}\n{msg[k]}\n" for k in keys if msg.get(k) is not None)
        algo = hashes.SHA1() if version == "1" else hashes.SHA256()
        sig = (signing_key or key).sign(text.encode(), padding.PKCS1v15(), algo)
        msg["Signature"] = base64.b64encode(sig).decode()
        return msg
    sign.key = key
    return sign
