"""Seed 002's REST API, aliases: `/mail/alias/` as the older controller
wrote it. The same rows (`aliases`, one per destination), checks (quotas,
outside destinations, no clash with a mailbox) and tenant rules as the
native `/aliases/` API, whose code does the writing. The seed's model:

    Alias {id, name, domain, to}

`id` is the address name@domain; `to` one or more comma-separated addresses.
"""

from flask import Blueprint
from marshmallow import validate

from .. import names, responses, schemas
from ..errors import ApiError, not_found
from ..fields import StrictString
from ..routing import endpoint
from ..tenancy import scoped, visible_domain
from . import aliases
from .mail_accounts import SeedDomainQuery, scoped_to_domain

bp = Blueprint("mail_aliases", __name__)

ALIAS = {"type": "object", "required": ["id", "name", "domain", "to"], "properties": {
    "id": {"type": "string", "description": "the address, name@domain"},
    "name": {"type": "string"}, "domain": {"type": "string"},
    "to": {"type": "string", "description": "comma-separated destination addresses"}}}

_TO = StrictString(required=True, max_length=20000, validate=validate.Length(min=1),
                   metadata={"description": "one or more addresses, comma separated"})

_GROUPED = ("SELECT a.source, d.name AS domain, string_agg(a.destination, ',' ORDER BY a.id) AS destination "
            "FROM aliases a JOIN domains d ON d.id = a.domain_id WHERE a.source NOT LIKE '@%%'")


class SeedAliasCreate(schemas.Body):
    name = StrictString(required=True, max_length=64, validate=validate.Length(min=1),
                        metadata={"description": "the part before the @"})
    domain = StrictString(required=True, max_length=1000)
    to = _TO


class SeedAliasTo(schemas.Body):
    to = _TO


def alias_json(row):
    return {"id": row["source"], "name": row["source"].rsplit("@", 1)[0], "domain": row["domain"],
            "to": row["destination"]}


def _alias(cur, caller, alias_id):
    source = names.address(alias_id, "id")[0]
    sql, params = scoped(_GROUPED + " AND a.source = %s", [source], caller)
    cur.execute(sql + " GROUP BY a.source, d.name", params)
    row = cur.fetchone()
    if row is None:
        raise not_found("Alias")
    return row


def _write(cur, caller, source, domain, to):
    aliases.create_alias.__wrapped__(cur, caller, body={"domain_name": domain, "source": source,
                                                        "destination": to})
    return alias_json(_alias(cur, caller, source))


@endpoint(bp, "/mail/alias/", "POST", role="either", body=SeedAliasCreate, status=201, response=ALIAS,
          errors=(404, 409), tag="seed 002", summary="Create an alias (seed 002)")
def create_alias(cur, caller, body):
    """An alias that exists already is 409 `alias_exists` (PUT changes its `to`)."""
    domain = names.domain_name(body["domain"], "domain")
    source = f"{names.local_part(body['name'], 'name')}@{domain}"
    aliases._destinations(body["to"])     # 400 for a bad `to` before anything is looked up
    visible_domain(cur, caller, domain, lock=True)   # 404 for another tenant's domain, first
    cur.execute("SELECT 1 FROM aliases WHERE source = %s LIMIT 1", (source,))
    if cur.fetchone() is not None:
        raise ApiError(409, f"Alias {source} already exists (PUT /mail/alias/{source}/ changes it)",
                       code="alias_exists")
    return _write(cur, caller, source, domain, body["to"])


@endpoint(bp, "/mail/alias/", "GET", role="either", query=SeedDomainQuery, response=responses.array_of(ALIAS),
          tag="seed 002", summary="List aliases (seed 002), of one domain with ?domain=")
def list_aliases(cur, caller, query):
    sql, params = scoped_to_domain(_GROUPED, caller, query)
    cur.execute(sql + " GROUP BY a.source, d.name ORDER BY a.source", params)
    return [alias_json(r) for r in cur.fetchall()]


@endpoint(bp, "/mail/alias/<alias_id>/", "GET", role="either", response=ALIAS, tag="seed 002",
          summary="Get one alias (seed 002)")
def get_alias(cur, caller, alias_id):
    return alias_json(_alias(cur, caller, alias_id))


@endpoint(bp, "/mail/alias/<alias_id>/", "PUT", role="either", body=SeedAliasTo, response=ALIAS, tag="seed 002",
          summary="Replace an alias's recipients (seed 002)")
def update_alias(cur, caller, alias_id, body):
    row = _alias(cur, caller, alias_id)
    return _write(cur, caller, row["source"], row["domain"], body["to"])


@endpoint(bp, "/mail/alias/<alias_id>/", "DELETE", role="either", status=204, tag="seed 002",
          summary="Delete an alias (seed 002)")
def delete_alias(cur, caller, alias_id):
    row = _alias(cur, caller, alias_id)
    cur.execute("DELETE FROM aliases WHERE source = %s", (row["source"],))
