"""Mailgun (HTTP API, requests): domains, verification, per-domain SMTP
credentials, webhooks, DKIM authority of subdomains.

Settings: MAILGUN_API_URL (https://api.mailgun.net; a stand-in in dev),
MAILGUN_API_KEY, MAILGUN_SMTP_RELAY ([smtp.mailgun.org]:587),
MAILGUN_WEBHOOK_URL (where Mailgun posts events: our POST /webhooks/mailgun;
unset = no webhook registration).
"""

import secrets

import requests

from . import Credential, Identity, Provider, ProviderError, env

WEBHOOK_EVENTS = ("permanent_fail", "temporary_fail", "complained")


class MailgunProvider(Provider):
    name = "mailgun"
    spf_mechanism = "include:mailgun.org"
    dkim_record_type = "TXT"

    def __init__(self):
        self.base = env("MAILGUN_API_URL").rstrip("/")
        self.key = env("MAILGUN_API_KEY")
        self.session = requests.Session()

    def _req(self, method, path, ok=(200,), **kwargs):
        if not self.key:
            raise ProviderError("Mailgun is not configured (MAILGUN_API_KEY)")
        try:
            r = self.session.request(method, self.base + path, auth=("api", self.key), timeout=10, **kwargs)
        except requests.RequestException as exc:
            raise ProviderError(f"Mailgun unreachable: {type(exc).__name__}") from None
        if r.status_code not in ok:
            try:
                msg = r.json().get("message", "")
            except ValueError:
                msg = ""
            raise ProviderError(f"Mailgun {method} {path.split('?')[0]}: {r.status_code} {msg}".strip())
        return r

    @staticmethod
    def records(body):
        out = []
        for rec in body.get("sending_dns_records") or []:
            value = rec.get("value", "")
            purpose = "dkim" if "_domainkey" in rec.get("name", "") else (
                "spf" if value.startswith("v=spf1") else "tracking")
            out.append({"type": rec.get("record_type", "TXT"), "name": rec.get("name"),
                        "value": value, "purpose": purpose, "valid": rec.get("valid")})
        return out

    def _identity(self, body):
        state = (body.get("domain") or {}).get("state")
        return Identity(state="verified" if state == "active" else "pending",
                        dns_records=self.records(body), detail=f"Mailgun state {state}")

    def _create(self, domain):
        r = self._req("POST", "/v4/domains", ok=(200, 400), data={"name": domain})
        if r.status_code == 400:   # already there: fine, read it
            r = self._req("GET", f"/v4/domains/{domain}")
        return r.json()

    def _webhooks(self, domain):
        url = env("MAILGUN_WEBHOOK_URL")
        if not url:
            return
        for event in WEBHOOK_EVENTS:
            r = self._req("POST", f"/v3/domains/{domain}/webhooks", ok=(200, 400),
                          data={"id": event, "url": url})
            if r.status_code == 400:   # exists: point it at us
                self._req("PUT", f"/v3/domains/{domain}/webhooks/{event}", data={"url": url})

    def start_verification(self, domain):
        self._create(domain)
        self._webhooks(domain)
        return self._identity(self._req("PUT", f"/v4/domains/{domain}/verify").json())

    def verification_status(self, domain):
        r = self._req("PUT", f"/v4/domains/{domain}/verify", ok=(200, 404))
        if r.status_code == 404:
            return Identity(state="failed", detail="Mailgun has no such domain: POST verify first")
        return self._identity(r.json())

    def register_subdomain(self, subdomain, parent):
        self._create(subdomain)
        # Sign with the parent's DKIM key (d=parent): nothing new to publish.
        self._req("PUT", f"/v3/domains/{subdomain}/dkim_authority", data={"self": "false"})
        self._webhooks(subdomain)
        ident = self._identity(self._req("PUT", f"/v4/domains/{subdomain}/verify").json())
        ident.state = "inherited" if ident.state != "verified" else "verified"
        return ident

    def remove(self, domain):
        self._req("DELETE", f"/v3/domains/{domain}", ok=(200, 404))

    def smtp_credential(self, domain):
        """A fresh credential postmaster@domain (created or its password reset)."""
        login = f"postmaster@{domain}"
        password = secrets.token_urlsafe(24)
        r = self._req("POST", f"/v3/domains/{domain}/credentials", ok=(200, 400, 409),
                      data={"login": login, "password": password})
        if r.status_code != 200:
            self._req("PUT", f"/v3/domains/{domain}/credentials/{login}", data={"password": password})
        return Credential(relayhost=env("MAILGUN_SMTP_RELAY"),
                          username=login, password=password)
