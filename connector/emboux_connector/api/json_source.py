"""Seed 002's Basic JSON API: a tenant registers the HTTPS URL of its
accounts-and-aliases document; the scheduler pulls it every
`interval_minutes` (jobs.py `pull-json`), `POST .../pull` pulls it now, and
every run is recorded (jsonpull.py has the rules).

A client token manages its own tenant's source; the master token names the
tenant with `?partner_ref=` (required for it). One source per tenant.
"""

from flask import Blueprint
from marshmallow import fields, validate

from .. import jsonfetch, jsonpull, responses, schemas, stores
from ..errors import ApiError
from ..fields import StrictBoolean, StrictInteger, StrictString
from ..routing import after_commit, endpoint
from ..tenancy import ensure_partner

bp = Blueprint("json_source", __name__)

_T = {"type": "string"}
SOURCE = {"type": "object", "required": ["partner_ref", "url", "interval_minutes", "enabled", "next_pull_at"],
          "properties": {"partner_ref": _T, "url": _T, "interval_minutes": {"type": "integer"},
                         "enabled": {"type": "boolean"}, "next_pull_at": {"type": "string", "format": "date-time"},
                         "created_at": {"type": "string", "format": "date-time"},
                         "updated_at": {"type": "string", "format": "date-time"}}}
_LIST = {"type": "array", "items": {"type": "object"}}
RUN = {"type": "object", "required": ["id", "status", "created", "changed", "removed", "warnings"], "properties": {
    "id": {"type": "integer"}, "partner_ref": _T, "url": _T,
    "trigger": {"type": "string", "enum": ["schedule", "demand"]},
    "status": {"type": "string", "enum": ["applied", "rejected"]},
    "reason": {"type": "string", "nullable": True, "description": "why the document was refused"},
    "document_sha256": {"type": "string", "nullable": True}, "document_bytes": {"type": "integer", "nullable": True},
    "created": _LIST, "changed": _LIST, "removed": _LIST, "warnings": {"type": "array", "items": _T},
    "started_at": {"type": "string", "format": "date-time"}, "finished_at": {"type": "string", "format": "date-time"}}}


class JsonSourceSet(schemas.Body):
    url = StrictString(required=True, max_length=2000, metadata={"description": "https:// only"})
    interval_minutes = StrictInteger(validate=validate.Range(min=5, max=1440),
                                     metadata={"description": "how often it is pulled (default 60)"})
    enabled = StrictBoolean(metadata={"description": "false: not pulled on schedule (default true)"})


class JsonSourceTenantQuery(schemas.Body):
    partner_ref = StrictString(max_length=128, validate=schemas.PARTNER_REF,
                               metadata={"description": "the tenant; required with the master token"})


class JsonSourceRunsQuery(JsonSourceTenantQuery):
    limit = fields.Integer(validate=validate.Range(min=1, max=200), metadata={"description": "default 20"})


def _tenant(caller, query):
    if caller.is_master:
        if "partner_ref" not in query:
            raise ApiError(400, "partner_ref: required with the master token", code="invalid_field")
        return query["partner_ref"]
    if query.get("partner_ref", caller.partner_ref) != caller.partner_ref:
        raise ApiError(404, "JSON source not found", code="json_source_not_found")
    return caller.partner_ref


def _source(cur, partner_ref):
    cur.execute("SELECT * FROM json_pull_sources WHERE partner_ref = %s", (partner_ref,))
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, "JSON source not found", code="json_source_not_found")
    return row


@endpoint(bp, "/mail/json-source/", "PUT", role="either", errors=(404,), body=JsonSourceSet,
          query=JsonSourceTenantQuery, response=SOURCE, tag="seed 002",
          summary="Register (or change) the tenant's seed 002 JSON document URL; pulled soon after")
def set_source(cur, caller, body, query):
    """A client naming another tenant's `partner_ref` gets 404 `json_source_not_found`."""
    partner_ref = _tenant(caller, query)
    try:
        jsonfetch.check_url(body["url"])
    except jsonfetch.FetchError as exc:
        raise ApiError(400, f"url: {exc}", code="invalid_field") from None
    ensure_partner(cur, partner_ref)
    cur.execute(
        "INSERT INTO json_pull_sources (partner_ref, url, interval_minutes, enabled) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (partner_ref) DO UPDATE SET url = EXCLUDED.url, interval_minutes = EXCLUDED.interval_minutes, "
        " enabled = EXCLUDED.enabled, next_pull_at = now(), updated_at = now() RETURNING *",
        (partner_ref, body["url"], body.get("interval_minutes", 60), body.get("enabled", True)))
    return jsonpull.source_json(cur.fetchone())


@endpoint(bp, "/mail/json-source/", "GET", role="either", errors=(404,), query=JsonSourceTenantQuery, response=SOURCE,
          tag="seed 002",
          summary="The tenant's seed 002 JSON document source")
def get_source(cur, caller, query):
    return jsonpull.source_json(_source(cur, _tenant(caller, query)))


@endpoint(bp, "/mail/json-source/", "DELETE", role="either", errors=(404,), query=JsonSourceTenantQuery, status=204,
          tag="seed 002",
          summary="Stop pulling the tenant's JSON document (accounts and aliases stay as they are)")
def delete_source(cur, caller, query):
    cur.execute("DELETE FROM json_pull_sources WHERE partner_ref = %s RETURNING 1", (_tenant(caller, query),))
    if cur.fetchone() is None:
        raise ApiError(404, "JSON source not found", code="json_source_not_found")


@endpoint(bp, "/mail/json-source/pull", "POST", role="either", errors=(404,), query=JsonSourceTenantQuery, response=RUN,
          tag="seed 002",
          summary="Pull the tenant's JSON document now and converge to it; answers the recorded run")
def pull_now(cur, caller, query):
    """A document that cannot be fetched, parsed or validated is answered as
    a run with `status: rejected` and its `reason` (200: the run is recorded);
    nothing was changed."""
    run, removed = jsonpull.pull(cur, _tenant(caller, query), "demand")
    for email in removed:
        after_commit(stores.remove_mailbox_store, email)
    return run


@endpoint(bp, "/mail/json-source/runs", "GET", role="either", query=JsonSourceRunsQuery, errors=(404,),
          response=responses.array_of(RUN), tag="seed 002",
          summary="The tenant's JSON pulls, newest first: created, changed, removed, warnings, rejections")
def list_runs(cur, caller, query):
    cur.execute("SELECT * FROM json_pull_runs WHERE partner_ref = %s ORDER BY id DESC LIMIT %s",
                (_tenant(caller, query), query.get("limit", 20)))
    return [jsonpull.run_json(r) for r in cur.fetchall()]
