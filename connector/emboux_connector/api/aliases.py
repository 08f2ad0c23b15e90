"""Aliases and catch-alls. One row per destination; the API speaks of an
alias as its source with a comma-separated destination list."""

from flask import Blueprint

from .. import names, responses, schemas
from ..errors import ApiError, not_found
from ..routing import endpoint
from ..tenancy import partner_quotas, scoped, scoped_list, visible_domain

bp = Blueprint("aliases", __name__)

MAX_DESTINATIONS = 100

_GROUPED = ("SELECT min(a.id) AS id, a.domain_id, a.source, "
            "string_agg(a.destination, ',' ORDER BY a.id) AS destination, "
            "min(a.created_at) AS created_at FROM aliases a JOIN domains d ON d.id = a.domain_id ")


def alias_json(row):
    return {"id": row["id"], "domain_id": row["domain_id"], "source": row["source"],
            "destination": row["destination"], "created_at": row["created_at"].isoformat()}


def _destinations(raw):
    found = []
    for part in raw.split(","):
        if not part.strip():
            continue
        email = names.address(part, "destination")[0]
        if email not in found:
            found.append(email)
    if not found:
        raise ApiError(400, "destination: at least one address is required")
    if len(found) > MAX_DESTINATIONS:
        raise ApiError(400, f"destination: at most {MAX_DESTINATIONS} addresses")
    return found


def _check_alias_quota(cur, dom):
    """Alias sources per domain are capped at aliases_per_mailbox for each
    mailbox of the domain (at least one): an alias is counted once, however
    many destinations it has, and forwards to outside addresses count too."""
    partner = partner_quotas(cur, dom["partner_ref"])
    if not partner or not partner["aliases_per_mailbox"]:
        return
    cur.execute("SELECT (SELECT count(DISTINCT source) FROM aliases WHERE domain_id = %(d)s) AS used, "
                "(SELECT count(*) FROM mailboxes WHERE domain_id = %(d)s) AS boxes", {"d": dom["id"]})
    row = cur.fetchone()
    allowed = partner["aliases_per_mailbox"] * max(1, row["boxes"])
    if row["used"] >= allowed:
        raise ApiError(403, f"Alias quota exceeded: {row['used']}/{allowed}")


def _check_external_destinations(cur, dom, destinations):
    """An alias may forward to at most alias_external_destinations addresses
    outside EmBoux (the tenant's quota; 0 = unlimited): each one is a
    delivery counted against the domain's outbound caps (docs/outbound.md,
    "Forwarding"). Hosted = a domain the mail server routes here."""
    partner = partner_quotas(cur, dom["partner_ref"])
    limit = partner["alias_external_destinations"] if partner else 0
    if not limit:
        return
    cur.execute("SELECT name FROM mailserver.domains WHERE name = ANY(%s)",
                (sorted({d.rsplit("@", 1)[1] for d in destinations}),))
    hosted = {r["name"] for r in cur.fetchall()}
    external = [d for d in destinations if d.rsplit("@", 1)[1] not in hosted]
    if len(external) > limit:
        raise ApiError(403, f"External destination quota exceeded: {len(external)}/{limit} addresses "
                            f"outside EmBoux for one alias (alias_external_destinations)",
                       code="quota_exceeded")


@endpoint(bp, "/aliases/", "POST", role="either", body=schemas.AliasCreate, status=201,
          response=responses.ALIAS,
          summary="Create or update an alias (source @domain = catch-all)")
def create_alias(cur, caller, body):
    """Re-posting an alias is an upsert: its destinations become the posted ones."""
    domain_name = names.domain_name(body["domain_name"], "domain_name")
    source, domain = names.alias_source(body["source"], "source")
    if domain != domain_name:
        raise ApiError(400, f"source: the address must be in domain {domain_name}")
    destinations = _destinations(body["destination"])
    dom = visible_domain(cur, caller, domain_name, lock=True)
    cur.execute("SELECT 1 FROM mailboxes WHERE email = %s", (source,))
    if cur.fetchone() is not None:
        raise ApiError(400, "Alias source already exists")
    cur.execute("SELECT destination FROM aliases WHERE source = %s", (source,))
    current = [r["destination"] for r in cur.fetchall()]
    if not current:
        _check_alias_quota(cur, dom)
    _check_external_destinations(cur, dom, destinations)
    cur.execute("DELETE FROM aliases WHERE source = %s AND NOT destination = ANY(%s)",
                (source, destinations))
    for dest in destinations:
        if dest not in current:
            cur.execute("INSERT INTO aliases (domain_id, source, destination) VALUES (%s, %s, %s)",
                        (dom["id"], source, dest))
    cur.execute(_GROUPED + "WHERE a.source = %s GROUP BY a.domain_id, a.source", (source,))
    return alias_json(cur.fetchone())


@endpoint(bp, "/aliases/", "GET", role="either", query=schemas.DomainIdQuery,
          response=responses.array_of(responses.ALIAS),
          summary="List aliases")
def list_aliases(cur, caller, query):
    sql, params = scoped_list(_GROUPED + "WHERE true", caller, query, "a")
    cur.execute(sql + " GROUP BY a.domain_id, a.source ORDER BY a.source", params)
    return [alias_json(r) for r in cur.fetchall()]


def _visible_alias(cur, caller, source):
    source, _ = names.alias_source(source, "source")
    sql, params = scoped(_GROUPED + "WHERE a.source = %s", [source], caller)
    cur.execute(sql + " GROUP BY a.domain_id, a.source", params)
    row = cur.fetchone()
    if row is None:
        raise not_found("Alias")
    return row


@endpoint(bp, "/aliases/<source>", "GET", role="either", summary="Get one alias",
          response=responses.ALIAS)
def get_alias(cur, caller, source):
    return alias_json(_visible_alias(cur, caller, source))


@endpoint(bp, "/aliases/<source>", "DELETE", role="either", status=204,
          summary="Delete an alias with all its destinations")
def delete_alias(cur, caller, source):
    row = _visible_alias(cur, caller, source)
    cur.execute("DELETE FROM aliases WHERE source = %s", (row["source"],))
