"""API keys (master only), and usage with delta sync (a client: its own key)."""

import secrets

from flask import Blueprint

from .. import schemas
from ..auth import token_hash
from ..errors import ApiError, not_found
from ..routing import endpoint
from ..tenancy import ensure_partner
from .changes import delta

bp = Blueprint("api_keys", __name__)

QUOTA_FIELDS = ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox")
_KEY = ("SELECT k.id, k.token_hint, k.partner_ref, k.active, k.expires_at, k.created_at, "
        "k.last_used_at, p.domains_allowed, p.domains_used, p.mailboxes_per_domain, "
        "p.aliases_per_mailbox FROM api_keys k JOIN partners p USING (partner_ref) ")


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


def _key_by_token(cur, token, lock=False):
    cur.execute(_KEY + "WHERE k.token_hash = %s" + (" FOR UPDATE OF k" if lock else ""),
                (token_hash(token),))
    row = cur.fetchone()
    if row is None:
        raise not_found("API key")
    return row


def _update_partner(cur, partner_ref, body):
    changes = {f: body[f] for f in QUOTA_FIELDS if f in body}
    if changes:
        sets = ", ".join(f"{f} = %({f})s" for f in changes)
        cur.execute(f"UPDATE partners SET {sets} WHERE partner_ref = %(ref)s",
                    {**changes, "ref": partner_ref})


@endpoint(bp, "/api-keys/", "POST", role="master", body=schemas.ApiKeyCreate, status=201,
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
    _update_partner(cur, body["partner_ref"], body)
    cur.execute(
        "INSERT INTO api_keys (token_hash, token_hint, partner_ref, active, expires_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
        (token_hash(token), token[:6], body["partner_ref"], body.get("active", True),
         body.get("expires_at")))
    if cur.fetchone() is None:
        raise ApiError(400, "API key already exists")
    return key_json(_key_by_token(cur, token), token=token)


@endpoint(bp, "/api-keys/", "GET", role="master", summary="List API keys (tokens are never shown)")
def list_keys(cur, caller):
    cur.execute(_KEY + "ORDER BY k.id")
    return [key_json(r) for r in cur.fetchall()]


@endpoint(bp, "/api-keys/<token>", "PUT", role="master", body=schemas.ApiKeyUpdate,
          summary="Update a key: quotas (the partner's), active, expires_at")
def update_key(cur, caller, token, body):
    row = _key_by_token(cur, token, lock=True)
    ensure_partner(cur, row["partner_ref"])
    _update_partner(cur, row["partner_ref"], body)
    for field in ("active", "expires_at"):
        if field in body:
            cur.execute(f"UPDATE api_keys SET {field} = %s WHERE id = %s", (body[field], row["id"]))
    return key_json(_key_by_token(cur, token))


@endpoint(bp, "/api-keys/<token>", "DELETE", role="master", status=204,
          summary="Delete a key; the partner's resources and other keys stay")
def delete_key(cur, caller, token):
    row = _key_by_token(cur, token, lock=True)
    cur.execute("DELETE FROM api_keys WHERE id = %s", (row["id"],))


@endpoint(bp, "/api-keys/<token>/usage", "GET", role="either", query=schemas.SinceQuery,
          summary="Usage of a key's partner, and its changes since `since` (delta sync)")
def key_usage(cur, caller, token, query):
    row = _key_by_token(cur, token)
    if not caller.is_master and row["id"] != caller.key_id:
        raise not_found("API key")
    ref = row["partner_ref"]
    cur.execute(
        "SELECT (SELECT count(*) FROM domains WHERE partner_ref = %(r)s) AS domains, "
        "(SELECT count(*) FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
        " WHERE d.partner_ref = %(r)s) AS mailboxes, "
        "(SELECT count(DISTINCT a.source) FROM aliases a JOIN domains d ON d.id = a.domain_id "
        " WHERE d.partner_ref = %(r)s) AS aliases", {"r": ref})
    counts = cur.fetchone()
    return {
        "partner_ref": ref,
        **{f: row[f] for f in QUOTA_FIELDS},
        "domains_used": row["domains_used"],
        "counts": dict(counts),
        **delta(cur, ref, query.get("since"), scoped=True),
    }
