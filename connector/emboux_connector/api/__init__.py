"""One blueprint per resource."""

from . import aliases, api_keys, changes, domains, health, meta, retention, users

BLUEPRINTS = [health.bp, meta.bp, domains.bp, users.bp, aliases.bp, api_keys.bp, changes.bp, retention.bp]

from . import outbound  # noqa: E402  (issue 5: outbound control)
BLUEPRINTS.append(outbound.bp)

from . import identity, suppression, webhooks  # noqa: E402  (issue 4: sending identity)
BLUEPRINTS += [identity.bp, suppression.bp, webhooks.bp]
