"""Idempotency keys (`Idempotency-Key` request header), the way payment APIs
use them: the first answer of an operation that carries a key is stored
with the change, in the same transaction; a retry with the same key -- from
the same caller, on the same operation, within a day -- gets that answer
again (status and body, with `Idempotent-Replayed: true`) and does nothing,
even when its body differs (a client that lost the answer may rebuild the
request differently; the key, not the body, says "this is the same one").

Two requests with one key at once: the second waits for the first
(a transaction-scoped advisory lock on the key) and then replays it. A first
request that failed stored nothing (its transaction rolled back): its retry
runs afresh. Table: idempotency_keys (migration 0020).
"""

import hashlib
import json
import re

from flask import Response, request

from .errors import ApiError

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")    # printable ASCII, no spaces
KEEP = "24 hours"   # a literal, never input: it is formatted into the SQL


def _scope(caller):
    return "master" if caller.is_master else caller.partner_ref


def key():
    """The request's key, None without one; 400 for a malformed one."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not _KEY.match(value):
        raise ApiError(400, f"{HEADER}: 1 to 255 printable ASCII characters without spaces",
                       code="idempotency_key_invalid")
    return value


def replay(cur, caller, operation, idem_key):
    """The stored answer to (caller, operation, key) as a Response, or None.
    Holds the key's lock until the transaction ends."""
    scope = _scope(caller)
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"idempotency\x1f{scope}\x1f{operation}\x1f{idem_key}",))
    # expired keys go as keys are used (anyone's: the created_at index makes it cheap)
    # (rows another request is deleting are skipped, not waited for: no deadlock between two cleanups)
    cur.execute(f"DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys "
                f"WHERE created_at < now() - interval '{KEEP}' FOR UPDATE SKIP LOCKED)")
    cur.execute("SELECT status, response, request_sha256 FROM idempotency_keys "
                "WHERE caller_scope = %s AND operation = %s AND key = %s", (scope, operation, idem_key))
    row = cur.fetchone()
    if row is None:
        return None
    resp = Response(json.dumps(row["response"]), status=row["status"], mimetype="application/json")
    resp.headers["Idempotent-Replayed"] = "true"
    if row["request_sha256"] != _body_digest():
        # the retry's body differs from the first request's: said, not acted on
        resp.headers["Idempotent-Body-Differs"] = "true"
    return resp


def remember(cur, caller, operation, idem_key, status, body):
    cur.execute("INSERT INTO idempotency_keys (caller_scope, operation, key, request_sha256, status, response) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (_scope(caller), operation, idem_key, _body_digest(), status, json.dumps(body)))


def _body_digest():
    return hashlib.sha256(request.get_data(cache=True)).hexdigest()
