# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What each kind of change means on the connector's REST API: one table,
kind -> HTTP verb, path, body, and how a replay is recognised.

The models only say what changed (`record._emboux_sync("domain.retention",
retention_days=30)`); this module turns that into the call the sync queue
stores and sends. No Odoo import: it is tested without a server
(tests/unit/test_platform_adapter.py).

Paths keep two placeholders that only the dispatcher can fill, when the job
runs: `{key_id}` (the connector's id of an API key whose creation is still
queued) and `{token}` (a secret, sealed apart from the job).
"""

import datetime
from dataclasses import dataclass
from urllib.parse import quote

from .connector_client import ConnectorRefused, ConnectorUnavailable

# How a 4xx that only says "already done" is recognised (see resolve_refusal).
ABSENT_IS_DONE = "absent_is_done"          # DELETE answered 404: it is gone, as wanted
SAME_PARTNER_EXISTS = "same_partner_exists"  # created earlier by us: the row names our partner
MAILBOX_EXISTS = "mailbox_exists"          # created earlier by us: set this password again
KEY_TOKEN_EXISTS = "key_token_exists"      # an earlier attempt whose answer was lost


@dataclass(frozen=True)
class Kind:
    method: str
    path: str                      # a template: {name}, {email}, {source}, {ref}, {key_id}, {token}
    fields: tuple = ()             # body fields the model gives
    fixed: tuple = ()              # (field, value) always sent
    empty_body: bool = False       # send {} rather than no body
    secret_field: str = None       # where the sealed secret goes in the body
    replay: str = None
    parallel: bool = False         # independent of its neighbours: may go out concurrently
    partial: bool = False          # the body is any non-empty subset of `fields` (a partial update)


KINDS = {
    "tenant.quotas": Kind("PUT", "/partners/{ref}", fields=(
        "domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox", "alias_external_destinations")),
    "api_key.create": Kind("POST", "/api-keys/", fields=("partner_ref", "active", "expires_at"),
                           secret_field="token", replay=KEY_TOKEN_EXISTS),
    "api_key.resolve": Kind("PUT", "/api-keys/{token}", empty_body=True),
    "api_key.update": Kind("PUT", "/api-keys/by-id/{key_id}", fields=("active", "expires_at")),
    "api_key.delete": Kind("DELETE", "/api-keys/by-id/{key_id}", replay=ABSENT_IS_DONE),
    "domain.create": Kind("POST", "/domains/", fields=("name", "partner_ref"),
                          fixed=(("require_ownership_proof", True),), replay=SAME_PARTNER_EXISTS),
    "domain.suspend": Kind("PUT", "/domains/{name}/suspend"),
    "domain.activate": Kind("PUT", "/domains/{name}/activate"),
    "domain.retention": Kind("PUT", "/domains/{name}/retention", fields=("retention_days",)),
    "domain.transfer": Kind("PUT", "/domains/{name}/transfer", fields=("transfer_monthly_mb",)),
    "domain.owner": Kind("PUT", "/domains/{name}/owner", fields=("partner_ref",)),
    "domain.outbound": Kind("PUT", "/domains/{name}/outbound", fields=(
        "outbound_daily_limit", "outbound_monthly_limit", "outbound_tier", "outbound_enforcement",
        "warmup_profile", "spike_max_multiplier", "provider"), partial=True),
    "domain.dkim": Kind("PUT", "/domains/{name}/dkim", fields=("rotation_days",)),
    # inbound spam settings (issue 17): thresholds, greylisting, allow/block lists
    "domain.spam": Kind("PUT", "/domains/{name}/spam", fields=(
        "junk_score", "reject_score", "greylisting", "allow_senders", "block_senders"), partial=True),
    "domain.vouch": Kind("PUT", "/domains/{name}/ownership/vouch", fields=("vouched_by",)),
    # SaaS subdomains: a wildcard parent, an explicit link, the provider registration (v5.3)
    "domain.wildcard": Kind("PUT", "/domains/{name}/parent", fields=("wildcard",)),
    "domain.parent": Kind("PUT", "/domains/{name}/parent", fields=("parent",)),
    "domain.register_subdomain": Kind("POST", "/domains/{name}/register-subdomain"),
    "domain.delete": Kind("DELETE", "/domains/{name}", replay=ABSENT_IS_DONE),
    "alias.upsert": Kind("POST", "/aliases/", fields=("domain_name", "source", "destination"), parallel=True),
    "alias.delete": Kind("DELETE", "/aliases/{source}", replay=ABSENT_IS_DONE, parallel=True),
    "mailbox.create": Kind("POST", "/users/", fields=("domain_name", "email", "quota_mb"),
                           secret_field="password", replay=MAILBOX_EXISTS, parallel=True),
    "mailbox.password": Kind("PUT", "/users/{email}", empty_body=True, secret_field="password", parallel=True),
    "mailbox.quota": Kind("PUT", "/users/{email}/quota", fields=("quota_mb",), parallel=True),
    "mailbox.active": Kind("PUT", "/users/{email}", fields=("active",)),
    # the out-of-office auto-reply (issue 17), always whole: not parallel, two
    # saves of one mailbox must reach the platform in their order
    "mailbox.vacation": Kind("PUT", "/users/{email}/vacation", fields=(
        "enabled", "subject", "body", "start", "end", "days")),
    "mailbox.delete": Kind("DELETE", "/users/{email}", replay=ABSENT_IS_DONE, parallel=True),
    # a manager lifts a suppressed address (every reason): gone already is done
    "suppression.lift": Kind("DELETE", "/suppression/{email}", replay=ABSENT_IS_DONE),
}

# runs of consecutive jobs of one of these kinds may be sent concurrently
PARALLEL_KINDS = frozenset(k for k, spec in KINDS.items() if spec.parallel)

# filled when the job runs, never quoted here
_LATE = ("key_id", "token")


class UnknownKind(ValueError):
    pass


def q(value):
    """Quote one path segment (addresses contain @, catch-alls start with @)."""
    return quote(str(value), safe="@")


def _json_value(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat() + "Z"   # Odoo datetimes are naive UTC
    if isinstance(value, datetime.date):
        return value.isoformat()         # a day: YYYY-MM-DD
    return value


class _Path(dict):
    def __missing__(self, key):
        if key in _LATE:
            return "{%s}" % key
        raise KeyError(f"path parameter {key!r} missing")


def build(kind, target=None, **values):
    """(method, path, body) of a change of `kind`. `target` holds the path
    parameters (e.g. {"name": "example.com"}); `values` the body fields
    (exactly the kind's fields; None is sent as null)."""
    spec = KINDS.get(kind)
    if spec is None:
        raise UnknownKind(kind)
    unknown = set(values) - set(spec.fields)
    missing = set(spec.fields) - set(values)
    if spec.partial and values:
        missing = set()
    if unknown or missing:
        raise ValueError(f"{kind}: body fields {sorted(spec.fields)} expected, "
                         f"got {sorted(values)}")
    # an unknown key_id stays a placeholder for the dispatcher
    params = _Path({k: q(v) for k, v in (target or {}).items() if v or k not in _LATE})
    path = spec.path.format_map(params)
    if spec.fields or spec.fixed:
        body = {f: _json_value(values[f]) for f in spec.fields if f in values}
        body.update(spec.fixed)
    else:
        body = {} if spec.empty_body else None
    return spec.method, path, body


def secret_field(kind, default="password"):
    spec = KINDS.get(kind)
    return (spec.secret_field if spec else None) or default


def resolve_refusal(client, kind, method, exc, body):
    """A 4xx on a replayed job that only says 'already done' is success: the
    kind's replay rule decides, on the connector's error code (never its
    English detail), looking the row up through `client` when needed.
    Returns ('done'|'refused'|'unavailable', result)."""
    spec = KINDS.get(kind)
    rule = spec.replay if spec else None
    code = exc.code or ""
    body = body or {}
    try:
        if method == "DELETE" and exc.status == 404:
            return "done", None
        if rule == SAME_PARTNER_EXISTS and code == "domain_exists":
            row = client.call("GET", f"/domains/{q(body['name'])}")
            if (row or {}).get("partner_ref") == body.get("partner_ref"):
                return "done", row
        if rule == MAILBOX_EXISTS and code == "email_exists":
            row = client.call("GET", f"/users/{q(body['email'])}")
            if row and body.get("password"):
                # ours from an earlier attempt: make sure it has this password
                client.call("PUT", f"/users/{q(body['email'])}", {"password": body["password"]})
                return "done", row
        if rule == KEY_TOKEN_EXISTS and code == "api_key_exists" and body.get("token"):
            # ours from an earlier attempt whose answer was lost: learn its id
            # (the token is still sealed in the job, and wiped once it is done)
            row = client.call("PUT", f"/api-keys/{q(body['token'])}", {})
            if (row or {}).get("partner_ref") == body.get("partner_ref"):
                return "done", row
    except ConnectorRefused:
        return "refused", exc  # the look-up was refused too: keep the first refusal
    except ConnectorUnavailable as exc2:
        return "unavailable", exc2
    return "refused", exc
