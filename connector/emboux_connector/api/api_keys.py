"""API keys (master only), and usage with delta sync (a client: its own key)."""

import secrets

from flask import Blueprint

from .. import responses, schemas
from ..auth import token_hash
from ..errors import ApiError, not_found
from ..routing import endpoint
from ..tenancy import QUOTA_FIELDS, ensure_partner, partner_counts, set_partner_quotas
from .changes import delta

bp = Blueprint("api_keys", __name__)

_KEY = ("SELECT k.id, k.token_hint, k.partner_ref, k.active, k.expires_at, k.created_at, "
        "k.last_used_at, p.domains_allowed, p.domains_used, p.mailboxes_per_domain, "
        "p.aliases_per_mailbox, p.alias_external_destinations FROM api_keys k JOIN partners p USING (partner_ref) ")


def key_json(row, token=None):
    out = {
        "id": row["id"],
        "token": token if token is not None else row["token_hint"] + "...",
        "partner_ref": row["partner_ref"],
        **{f: row[f] for f in QUOTA_FIELDS},
        "domains_used": row["domains_used"],
        "active": row["active"],
        "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        "created_at": row["created_at"].isoformat(),
        "last_used_at": row["last_used_at"].isoformat() if row["last_used_at"] else None,
    }
    return out


def _key_by(cur, column, value, lock=False):
    cur.execute(_KEY + f"WHERE k.{column} = %s" + (" FOR UPDATE OF k" if lock else ""), (value,))
    row = cur.fetchone()
    if row is None:
        raise not_found("API key")
    return row


def _key_by_token(cur, token, lock=False):
    return _key_by(cur, "token_hash", token_hash(token), lock)


@endpoint(bp, "/api-keys/", "POST", role="master", body=schemas.ApiKeyCreate, status=201,
          response=responses.API_KEY,
          summary="Create a client API key for a partner")
def create_key(cur, caller, body):
    """Quotas belong to the partner and are shared by all its keys: quota
    fields given here set the partner's; omitted ones keep the partner's
    current values (the defaults for a new partner). The plain token is
    returned in this response only; the server keeps its sha256."""
    token = body.get("token") or secrets.token_urlsafe(32)
    from flask import current_app
    if token == current_app.config["EMBOUX"].api_key:
        raise ApiError(400, "token: must differ from the master token")
    ensure_partner(cur, body["partner_ref"])
    set_partner_quotas(cur, body["partner_ref"], body)
    cur.execute(
        "INSERT INTO api_keys (token_hash, token_hint, partner_ref, active, expires_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
        (token_hash(token), token[:6], body["partner_ref"], body.get("active", True),
         body.get("expires_at")))
    if cur.fetchone() is None:
        raise ApiError(400, "API key already exists")
    return key_json(_key_by_token(cur, token), token=token)


@endpoint(bp, "/api-keys/", "GET", role="master", summary="List API keys (tokens are never shown)",
          response=responses.array_of(responses.API_KEY))
def list_keys(cur, caller):
    cur.execute(_KEY + "ORDER BY k.id")
    return [key_json(r) for r in cur.fetchall()]


def _update_key(cur, row, body):
    ensure_partner(cur, row["partner_ref"])
    set_partner_quotas(cur, row["partner_ref"], body)
    for field in ("active", "expires_at"):
        if field in body:
            cur.execute(f"UPDATE api_keys SET {field} = %s WHERE id = %s", (body[field], row["id"]))
    return key_json(_key_by(cur, "id", row["id"]))


@endpoint(bp, "/api-keys/<token>", "PUT", role="master", body=schemas.ApiKeyUpdate,
          response=responses.API_KEY,
          summary="Update a key: quotas (the partner's), active, expires_at")
def update_key(cur, caller, token, body):
    return _update_key(cur, _key_by_token(cur, token, lock=True), body)


@endpoint(bp, "/api-keys/<token>", "DELETE", role="master", status=204,
          summary="Delete a key; the partner's resources and other keys stay")
def delete_key(cur, caller, token):
    row = _key_by_token(cur, token, lock=True)
    cur.execute("DELETE FROM api_keys WHERE id = %s", (row["id"],))


# The same by id: a caller that keeps only the key's id (an ERP storing no
# token at all) can still update or revoke it.
@endpoint(bp, "/api-keys/by-id/<int:key_id>", "PUT", role="master", body=schemas.ApiKeyUpdate,
          response=responses.API_KEY,
          summary="Update a key by its id")
def update_key_by_id(cur, caller, key_id, body):
    return _update_key(cur, _key_by(cur, "id", key_id, lock=True), body)


@endpoint(bp, "/api-keys/by-id/<int:key_id>", "DELETE", role="master", status=204,
          summary="Delete a key by its id")
def delete_key_by_id(cur, caller, key_id):
    row = _key_by(cur, "id", key_id, lock=True)
    cur.execute("DELETE FROM api_keys WHERE id = %s", (row["id"],))


@endpoint(bp, "/api-keys/<token>/usage", "GET", role="either", query=schemas.SinceQuery,
          response=responses.USAGE,
          summary="Usage of a key's partner, and its changes since `since` (delta sync)")
def key_usage(cur, caller, token, query):
    row = _key_by_token(cur, token)
    if not caller.is_master and row["id"] != caller.key_id:
        raise not_found("API key")
    ref = row["partner_ref"]
    return {
        "partner_ref": ref,
        **{f: row[f] for f in QUOTA_FIELDS},
        "domains_used": row["domains_used"],
        "counts": partner_counts(cur, ref),
        **delta(cur, ref, query.get("since"), scoped=True),
    }
