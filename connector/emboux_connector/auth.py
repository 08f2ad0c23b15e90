"""Bearer tokens: the master token from the environment, or a client key
from the api_keys table (stored as a sha256 hash, scoped to one partner)."""

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app, g, request

from .errors import ApiError
from .throttle import throttle

# How often last_used_at is written: not on every request, to keep reads cheap.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    is_master: bool
    partner_ref: str | None = None
    key_id: int | None = None

    def owns(self, partner_ref):
        return self.is_master or partner_ref == self.partner_ref


def authenticate(cur):
    # The scheme is case-insensitive (RFC 9110 section 11.1): "bearer" is fine.
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(403, "Invalid authorization header format")
    # Brute force is slowed (throttle.py): an address that failed too often
    # is refused before its token is checked; only failures count.
    guard = throttle()
    addr = guard.client_address()
    guard.check(addr)
    try:
        return _check_token(cur, token)
    except ApiError:
        guard.failed(addr)
        raise


def _check_token(cur, token):
    master = current_app.config["EMBOUX"].api_key
    if hmac.compare_digest(token.encode(), master.encode()):
        return Caller(is_master=True)
    cur.execute(
        "SELECT id, partner_ref, active, expires_at, last_used_at, now() AS now "
        "FROM api_keys WHERE token_hash = %s", (token_hash(token),))
    key = cur.fetchone()
    if key is None:
        raise ApiError(403, "Invalid API key")
    if not key["active"]:
        raise ApiError(403, "API key is deactivated")
    if key["expires_at"] is not None and key["expires_at"] <= key["now"]:
        raise ApiError(403, "API key has expired")
    if key["last_used_at"] is None or key["now"] - key["last_used_at"] > LAST_USED_RESOLUTION:
        cur.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s", (key["id"],))
    return Caller(is_master=False, partner_ref=key["partner_ref"], key_id=key["id"])


def require(cur, role):
    """Authenticate the request and check its role ('master' or 'either')."""
    caller = authenticate(cur)
    if role == "master" and not caller.is_master:
        raise ApiError(403, "Master token required")
    g.caller = caller
    return caller
