"""Sending providers: one interface, three implementations.

* `ses`     Amazon SES (boto3): domain identity + Easy DKIM, status polling,
            the account-wide SMTP credential (derived from the IAM secret).
* `mailgun` Mailgun's HTTP API (requests): domain create/verify, a per-domain
            SMTP credential, webhook registration, DKIM authority for
            subdomains.
* `local`   our own Postfix sends directly; DKIM keys are generated and kept
            by the connector (dkim.py) and OpenDKIM signs from the mail DB.

Every provider answers in the same shapes: `Identity` for what the provider
wants published / where verification stands, `Credential` for the relay
Postfix authenticates to. Provider-side failures raise ProviderError, which
the API turns into 502 with a one-line detail (never a secret).
The lifecycle glue with the mail DB (create, delete, activate, verify,
register-subdomain) is in providers/lifecycle.py.
"""

from dataclasses import dataclass, field

from .. import settings

NAMES = ("local", "ses", "mailgun")


class ProviderError(Exception):
    """The provider refused or could not be reached."""


@dataclass
class Identity:
    state: str                                   # pending / verified / failed / inherited
    dns_records: list = field(default_factory=list)   # [{type, name, value, purpose}]
    verification_token: str = None
    dkim_tokens: list = field(default_factory=list)
    detail: str = None


@dataclass
class Credential:
    relayhost: str            # Postfix nexthop, e.g. [smtp.mailgun.org]:587
    username: str
    password: str


class Provider:
    """The interface. `domain` is always the IDNA name."""
    name = None
    spf_mechanism = None       # what the domain's SPF record must include
    dkim_record_type = None    # CNAME (ses) or TXT (mailgun, local)

    def start_verification(self, domain):
        raise NotImplementedError

    def verification_status(self, domain):
        raise NotImplementedError

    def register_subdomain(self, subdomain, parent):
        """Self-contained: afterwards the subdomain sends with the parent's DKIM."""
        raise NotImplementedError

    def remove(self, domain):
        """Remove every provider-side trace of the domain (idempotent)."""
        raise NotImplementedError

    def smtp_credential(self, domain):
        """The credential Postfix relays the domain's mail with (None: direct)."""
        return None

    @property
    def account_wide_credential(self):
        return False


def env(key):
    """A provider setting (settings.py): its value, else its registered default."""
    return settings.get(key)


def get(name):
    if name == "ses":
        from .ses import SesProvider
        return SesProvider()
    if name == "mailgun":
        from .mailgun import MailgunProvider
        return MailgunProvider()
    if name == "local":
        from .local import LocalProvider
        return LocalProvider()
    raise ValueError(f"unknown provider {name!r}")
