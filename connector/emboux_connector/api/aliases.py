"""Aliases and catch-alls. One row per destination; the API speaks of an
alias as its source with a comma-separated destination list."""

import psycopg2
from flask import Blueprint

from .. import names, responses, schemas
from ..auth import LAST_USED_RESOLUTION, KeyClaim
from ..errors import ApiError, not_found
from ..routing import endpoint
from ..tenancy import partner_quotas, scoped, scoped_list

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


def _external_over_quota(limit, destinations, hosted):
    """403 when more than `limit` destinations are outside EmBoux (0 = unlimited)."""
    if not limit:
        return
    external = [d for d in destinations if d.rsplit("@", 1)[1] not in hosted]
    if len(external) > limit:
        raise _external_quota_error(len(external), limit)


def _external_quota_error(external, limit):
    return ApiError(403, f"External destination quota exceeded: {external}/{limit} addresses "
                        f"outside EmBoux for one alias (alias_external_destinations)",
                   code="quota_exceeded")


def _destination_domains(destinations):
    return sorted({d.rsplit("@", 1)[1] for d in destinations})


def _check_external_destinations(cur, dom, destinations):
    """An alias may forward to at most alias_external_destinations addresses
    outside EmBoux (the tenant's quota; 0 = unlimited): each one is a
    delivery counted against the domain's outbound caps (docs/outbound.md,
    "Forwarding"). Hosted = a domain the mail server routes here."""
    partner = partner_quotas(cur, dom["partner_ref"])
    limit = partner["alias_external_destinations"] if partner else 0
    if not limit:
        return
    cur.execute("SELECT name FROM mailserver.domains WHERE name = ANY(%s)", (_destination_domains(destinations),))
    _external_over_quota(limit, destinations, {r["name"] for r in cur.fetchall()})


# The whole request is one statement, its own transaction: PL/pgSQL function
# api_write_alias (migration 0032) checks a client key, locks the domain
# (alias and mailbox creations in one domain serialise on its row), reads
# what the checks need after the lock, writes and answers; PostgreSQL commits
# it before answering. One round trip instead of five, its statements' plans
# kept for the pooled connection's session (issue 15). A refusal after the
# key's check is an error of SQLSTATE EBA01 (everything rolled back).
_WRITE_ALIAS = "SELECT * FROM api_write_alias(%s, %s, %s, %s, %s, %s)"


def _refused(exc):
    """The ApiError of the function's refusal (its message is the reason)."""
    reason, detail = exc.diag.message_primary, exc.diag.message_detail
    if reason == "no_domain":
        return not_found("Domain")
    if reason == "taken":
        return ApiError(400, "Alias source already exists")
    if reason == "alias_quota":   # aliases_per_mailbox x max(1, mailboxes of the domain), sources counted
        return ApiError(403, f"Alias quota exceeded: {detail}")
    if reason == "external_quota":
        external, limit = detail.split("/")
        return _external_quota_error(external, limit)
    return None


@endpoint(bp, "/aliases/", "POST", role="either", body=schemas.AliasCreate, status=201,
          response=responses.ALIAS, key_in_statement=True,
          summary="Create or update an alias (source @domain = catch-all)")
def create_alias(cur, caller, body):
    """Re-posting an alias is an upsert: its destinations become the posted ones."""
    domain_name = names.domain_name(body["domain_name"], "domain_name")
    source, domain = names.alias_source(body["source"], "source")
    if domain != domain_name:
        raise ApiError(400, f"source: the address must be in domain {domain_name}")
    destinations = _destinations(body["destination"])
    master = not isinstance(caller, KeyClaim)
    try:
        cur.execute_alone(_WRITE_ALIAS, (master, None if master else caller.token_hash, LAST_USED_RESOLUTION,
                                         domain_name, source, destinations))
    except psycopg2.Error as exc:
        refusal = _refused(exc) if exc.pgcode == "EBA01" else None
        if refusal is None:
            raise
        raise refusal from None
    row = cur.fetchone()
    if not master:
        caller.settle(row["verdict"], row["key_id"], row["key_partner"])
    return alias_json({"id": row["alias_id"], "domain_id": row["domain_ref"], "source": source,
                       "destination": row["alias_destination"], "created_at": row["alias_created_at"]})


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
