"""The `local` provider: our own Postfix delivers directly and OpenDKIM signs
with keys the connector generates (dkim.py). Verification = the active key's
public half is published in DNS (checked with the configured resolver)."""

from .. import settings
from . import Identity, Provider


def local_spf_mechanism():
    """What a `local` domain's SPF must include: LOCAL_SPF_MECHANISM, else
    a:<MAIL_HOSTNAME> (the host our Postfix sends from)."""
    return settings.get("LOCAL_SPF_MECHANISM") or f"a:{settings.get('MAIL_HOSTNAME')}"


class LocalProvider(Provider):
    name = "local"
    dkim_record_type = "TXT"

    @property
    def spf_mechanism(self):
        return local_spf_mechanism()

    # The DB-side work (keys) is done by lifecycle.py, which holds the cursor.
    def start_verification(self, domain):
        return Identity(state="pending")

    def verification_status(self, domain):
        return Identity(state="pending")

    def register_subdomain(self, subdomain, parent):
        return Identity(state="inherited", detail=f"signed with the DKIM key of {parent}")

    def remove(self, domain):
        return None
