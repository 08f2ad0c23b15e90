"""Amazon SES (classic API, boto3): domain identity, Easy DKIM, status, and
the account-wide SMTP credential.

Settings: SES_REGION (us-east-1), SES_ENDPOINT_URL (a stand-in such as moto's
server; unset = AWS), SES_ACCESS_KEY_ID / SES_SECRET_ACCESS_KEY (else boto3's
usual chain), SES_SMTP_RELAY (default [email-smtp.<region>.amazonaws.com]:587).
"""

import base64
import hashlib
import hmac

from . import Credential, Identity, Provider, ProviderError, env


def smtp_password(secret_access_key, region):
    """AWS's documented derivation of the SES SMTP password from an IAM secret."""
    def sign(key, msg):
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()
    sig = sign(("AWS4" + secret_access_key).encode("utf-8"), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        sig = sign(sig, part)
    return base64.b64encode(bytes([0x04]) + sig).decode("ascii")


class SesProvider(Provider):
    name = "ses"
    spf_mechanism = "include:amazonses.com"
    dkim_record_type = "CNAME"

    def __init__(self):
        self.region = env("SES_REGION")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config
            kwargs = {"region_name": self.region,
                      "config": Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})}
            if env("SES_ENDPOINT_URL"):
                kwargs["endpoint_url"] = env("SES_ENDPOINT_URL")
            if env("SES_ACCESS_KEY_ID"):
                kwargs["aws_access_key_id"] = env("SES_ACCESS_KEY_ID")
                kwargs["aws_secret_access_key"] = env("SES_SECRET_ACCESS_KEY")
            self._client = boto3.client("ses", **kwargs)
        return self._client

    def _call(self, op, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            raise ProviderError(f"SES {op}: {exc.response.get('Error', {}).get('Code', 'error')}") from None
        except BotoCoreError as exc:
            raise ProviderError(f"SES {op}: {type(exc).__name__}") from None

    @staticmethod
    def records(domain, token, dkim_tokens):
        recs = [{"type": "TXT", "name": f"_amazonses.{domain}", "value": token, "purpose": "verification"}]
        recs += [{"type": "CNAME", "name": f"{t}._domainkey.{domain}", "value": f"{t}.dkim.amazonses.com",
                  "purpose": "dkim"} for t in dkim_tokens]
        recs.append({"type": "TXT", "name": domain, "value": "v=spf1 include:amazonses.com ~all",
                     "purpose": "spf"})
        return recs

    def start_verification(self, domain):
        token = self._call("verify_domain_identity", Domain=domain)["VerificationToken"]
        dkim_tokens = self._call("verify_domain_dkim", Domain=domain)["DkimTokens"]
        return Identity(state="pending", verification_token=token, dkim_tokens=list(dkim_tokens),
                        dns_records=self.records(domain, token, dkim_tokens))

    def verification_status(self, domain):
        attrs = self._call("get_identity_verification_attributes", Identities=[domain])
        a = attrs.get("VerificationAttributes", {}).get(domain)
        if a is None:
            return Identity(state="failed", detail="SES has no identity for this domain: POST verify first")
        dk = self._call("get_identity_dkim_attributes", Identities=[domain])
        d = dk.get("DkimAttributes", {}).get(domain, {})
        status = a.get("VerificationStatus")
        dkim_status = d.get("DkimVerificationStatus")
        token, tokens = a.get("VerificationToken"), list(d.get("DkimTokens") or [])
        if status == "Success" and dkim_status in ("Success", None):
            state = "verified"
        elif status in ("Failed", "TemporaryFailure") or dkim_status == "Failed":
            state = "failed"
        else:
            state = "pending"
        return Identity(state=state, verification_token=token, dkim_tokens=tokens,
                        dns_records=self.records(domain, token, tokens),
                        detail=f"identity {status}, DKIM {dkim_status}")

    def register_subdomain(self, subdomain, parent):
        # SES: a subdomain of a verified domain may send, and Easy DKIM of the
        # parent signs it (d=parent). Nothing to install provider-side.
        return Identity(state="inherited", detail=f"sends with the SES identity of {parent}")

    def remove(self, domain):
        self._call("delete_identity", Identity=domain)

    @property
    def account_wide_credential(self):
        return True

    def smtp_credential(self, domain=None):
        key_id = env("SES_ACCESS_KEY_ID") or env("AWS_ACCESS_KEY_ID")
        secret = env("SES_SECRET_ACCESS_KEY") or env("AWS_SECRET_ACCESS_KEY")
        if not key_id or not secret:
            raise ProviderError("SES credentials are not configured (SES_ACCESS_KEY_ID)")
        relay = env("SES_SMTP_RELAY") or f"[email-smtp.{self.region}.amazonaws.com]:587"
        return Credential(relayhost=relay, username=key_id, password=smtp_password(secret, self.region))
