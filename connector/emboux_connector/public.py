"""The public, token-less pages (mail-client setup, MTA-STS policies, BIMI
logos): which domain a request is about, and whether we host it.

A domain is hosted when it exists here and its ownership is established
(verified or vouched, docs/domain-ownership.md): a pending claim must not
make the platform speak for a name its claimant may not own. Anything else
is one 404, `domain_not_hosted`, whether the name is unknown, pending or
malformed in the Host header -- a stranger learns nothing about which names
are claimed.
"""

from flask import request

from . import names, ownership
from .errors import ApiError


def not_hosted():
    return ApiError(404, "Domain not hosted here", code="domain_not_hosted")


def hosted_domain(cur, name):
    """The domain row when we host `name` (already normalised), else 404."""
    cur.execute("SELECT id, name, partner_ref, status, ownership FROM domains WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None or row["ownership"] not in ownership.OWNED:
        raise not_hosted()
    return row


def request_host():
    """The Host header's name, lower-case, without port."""
    host = (request.host or "").strip().lower()
    if host.startswith("["):         # an IPv6 literal is no domain of ours
        return ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_domain(prefix=None):
    """The domain a host-routed request is for: `<prefix>.<domain>` (e.g.
    mta-sts.example.com), or the host itself when no prefix is given.
    None when the Host header does not have that form or is not a name."""
    host = request_host()
    if prefix:
        if not host.startswith(prefix + "."):
            return None
        host = host[len(prefix) + 1:]
    try:
        return names.domain_name(host, "Host")
    except ApiError:
        return None


def address_domain(value, field):
    """(address, domain) of an address given in a query string or body: 400
    naming the field when it is not an address."""
    email, _local, domain = names.address(value, field)
    return email, domain
