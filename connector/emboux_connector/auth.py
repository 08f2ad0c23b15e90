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


def _bearer_token():
    # The scheme is case-insensitive (RFC 9110 section 11.1): "bearer" is fine.
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(403, "Invalid authorization header format")
    return token


def authenticate(cur):
    token = _bearer_token()
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


def _is_master(token):
    master = current_app.config["EMBOUX"].api_key
    return hmac.compare_digest(token.encode(), master.encode())


# A client key's refusals, one message each (also the verdicts of a
# statement that checks the key itself: KeyClaim).
KEY_REFUSALS = {"key_unknown": "Invalid API key", "key_inactive": "API key is deactivated",
                "key_expired": "API key has expired"}


@dataclass
class KeyClaim:
    """A client token whose check travels in the view's one statement.

    An endpoint declared with key_in_statement=True gets this instead of a
    Caller when the token is not the master's: everything of authentication
    that needs no DB is done (header, throttle, master token), and the view's
    single statement looks the key up as _check_token does (no cache), with
    LAST_USED_RESOLUTION, and reports the key's verdict, which the view
    passes to settle(). One round trip less per request (issue 15)."""
    token_hash: str
    guard: object
    addr: str
    settled: bool = False

    def settle(self, verdict, key_id=None, partner_ref=None):
        """The Caller once the statement accepted the key; 403 (a failure
        counted against the address) when it refused it."""
        self.settled = True
        if verdict in KEY_REFUSALS:
            self.guard.failed(self.addr)
            raise ApiError(403, KEY_REFUSALS[verdict])
        if verdict != "ok" or key_id is None:   # never take an unknown answer for an accepted key
            raise RuntimeError(f"unexpected key verdict {verdict!r}")
        g.caller = Caller(is_master=False, partner_ref=partner_ref, key_id=key_id)
        return g.caller


def claim():
    """Authentication short of the client key's lookup (see KeyClaim)."""
    token = _bearer_token()
    guard = throttle()
    addr = guard.client_address()
    guard.check(addr)
    if _is_master(token):
        g.caller = Caller(is_master=True)
        return g.caller
    return KeyClaim(token_hash(token), guard, addr)


def _check_token(cur, token):
    if _is_master(token):
        return Caller(is_master=True)
    cur.execute(
        "SELECT id, partner_ref, active, expires_at, last_used_at, now() AS now "
        "FROM api_keys WHERE token_hash = %s", (token_hash(token),))
    key = cur.fetchone()
    if key is None:
        raise ApiError(403, KEY_REFUSALS["key_unknown"])
    if not key["active"]:
        raise ApiError(403, KEY_REFUSALS["key_inactive"])
    if key["expires_at"] is not None and key["expires_at"] <= key["now"]:
        raise ApiError(403, KEY_REFUSALS["key_expired"])
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
