"""One blueprint per resource."""

from . import (aliases, api_keys, changes, domains, health, identity, meta, outbound, partners,
               retention, suppression, users, webhooks)

BLUEPRINTS = [
    health.bp, meta.bp,
    domains.bp, users.bp, aliases.bp,       # the hosted resources
    api_keys.bp, partners.bp, changes.bp,   # tenants, keys, delta sync
    retention.bp,                           # mail server jobs
    outbound.bp,                            # outbound control (policy daemon's API)
    identity.bp, suppression.bp, webhooks.bp,  # sending identity and feedback
]
