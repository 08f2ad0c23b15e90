"""Aliases and catch-alls. One row per destination; the API speaks of an
alias as its source with a comma-separated destination list."""

from flask import Blueprint

from .. import names, responses, schemas
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


def _check_alias_quota(partner, used, boxes):
    """Alias sources per domain are capped at aliases_per_mailbox for each
    mailbox of the domain (at least one): an alias is counted once, however
    many destinations it has, and forwards to outside addresses count too."""
    if not partner or not partner["aliases_per_mailbox"]:
        return
    allowed = partner["aliases_per_mailbox"] * max(1, boxes)
    if used >= allowed:
        raise ApiError(403, f"Alias quota exceeded: {used}/{allowed}")


def _external_over_quota(limit, destinations, hosted):
    """403 when more than `limit` destinations are outside EmBoux (0 = unlimited)."""
    if not limit:
        return
    external = [d for d in destinations if d.rsplit("@", 1)[1] not in hosted]
    if len(external) > limit:
        raise ApiError(403, f"External destination quota exceeded: {len(external)}/{limit} addresses "
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


# The domain and its tenant's alias quotas, the domain row locked: alias and
# mailbox creations in one domain serialise on it, so a quota count, and
# "this address is not a mailbox", still hold when the transaction commits.
_LOCK_DOMAIN = ("SELECT d.id, d.partner_ref, p.aliases_per_mailbox, p.alias_external_destinations "
                "FROM domains d LEFT JOIN partners p ON p.partner_ref = d.partner_ref WHERE d.name = %s")


def _alias_state(cur, dom, source, destinations):
    """What the checks need, read in ONE statement after the domain's lock
    (a statement started after the lock was granted sees what its previous
    holder committed; one sharing the locking statement would not)."""
    cols = ["EXISTS (SELECT 1 FROM mailboxes WHERE email = %(s)s) AS taken",
            "ARRAY(SELECT destination FROM aliases WHERE source = %(s)s ORDER BY id) AS current"]
    if dom["aliases_per_mailbox"]:
        cols += ["(SELECT count(DISTINCT source) FROM aliases WHERE domain_id = %(d)s) AS used",
                 "(SELECT count(*) FROM mailboxes WHERE domain_id = %(d)s) AS boxes"]
    if dom["alias_external_destinations"]:
        cols.append("ARRAY(SELECT name FROM mailserver.domains WHERE name = ANY(%(names)s)) AS hosted")
    cur.execute("SELECT " + ", ".join(cols),
                {"s": source, "d": dom["id"], "names": _destination_domains(destinations)})
    return cur.fetchone()


# The destinations become the posted ones, and the alias is answered as GET
# shows it, in one statement: removed ones deleted, new ones inserted in the
# posted order, kept ones read (the statement's snapshot predates its writes).
_WRITE = (
    "WITH gone AS (DELETE FROM aliases WHERE source = %(s)s AND NOT destination = ANY(%(dests)s)), "
    "new AS (INSERT INTO aliases (domain_id, source, destination) "
    "  SELECT %(d)s, %(s)s, dest FROM unnest(%(add)s::text[]) WITH ORDINALITY AS u(dest, n) ORDER BY n "
    "  RETURNING id, destination, created_at), "
    "kept AS (SELECT id, destination, created_at FROM aliases "
    "  WHERE source = %(s)s AND destination = ANY(%(dests)s)) "
    "SELECT min(id) AS id, string_agg(destination, ',' ORDER BY id) AS destination, "
    "min(created_at) AS created_at FROM (SELECT * FROM new UNION ALL SELECT * FROM kept) a")


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
    # Three statements after authentication (each round trip costs both
    # sides CPU under load: issue 15): lock, read, write.
    sql, params = scoped(_LOCK_DOMAIN, [domain_name], caller)
    cur.execute(sql + " FOR UPDATE OF d", params)
    dom = cur.fetchone()
    if dom is None:
        raise not_found("Domain")
    state = _alias_state(cur, dom, source, destinations)
    if state["taken"]:
        raise ApiError(400, "Alias source already exists")
    current = state["current"]
    if not current:
        _check_alias_quota(dom, state.get("used"), state.get("boxes"))
    _external_over_quota(dom["alias_external_destinations"], destinations, set(state.get("hosted") or ()))
    cur.execute(_WRITE, {"s": source, "d": dom["id"], "dests": destinations,
                         "add": [d for d in destinations if d not in current]})
    row = cur.fetchone()
    return alias_json({**row, "domain_id": dom["id"], "source": source})


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
