"""One blueprint per resource."""

from . import (aliases, api_keys, changes, domains, feeds, health, identity, meta, outbound, ownership,
               partners, retention, suppression, users, webhooks)
from . import bimi, clientsetup, mailboxes, mtasts
from . import spam, vacation
from . import reports
from . import json_source, mail_accounts, mail_aliases

BLUEPRINTS = [
    health.bp, meta.bp,
    domains.bp, users.bp, aliases.bp,       # the hosted resources
    ownership.bp,                           # domain ownership proof before routing
    api_keys.bp, partners.bp, changes.bp,   # tenants, keys, delta sync
    retention.bp,                           # mail server jobs
    outbound.bp,                            # outbound control (policy daemon's API)
    identity.bp, suppression.bp, webhooks.bp,  # sending identity and feedback
    feeds.bp,                               # incremental feeds for the back office
    mailboxes.bp,                           # seed 004's idempotent provisioning
    clientsetup.bp, mtasts.bp, bimi.bp,     # public: mail-client setup, MTA-STS, BIMI logos
    spam.bp,                                # inbound protection: spam settings, Rspamd's map
    vacation.bp,                            # a mailbox's vacation auto-reply
    reports.bp,                             # DMARC aggregate and TLS-RPT reports
    mail_accounts.bp, mail_aliases.bp,      # seed 002's REST API (migration)
    json_source.bp,                         # seed 002's Basic JSON API (pulled documents)
]
