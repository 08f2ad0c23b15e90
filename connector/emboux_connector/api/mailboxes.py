"""Seed 004's `POST /mailboxes`: idempotent mailbox provisioning.

The same request again answers 200 with the existing mailbox and changes
nothing; a request for an existing mailbox that asks for something else (a
different password or quota) is 409 `mailbox_exists_different` and changes
nothing either (PUT /users/{email} changes a mailbox). With an
`Idempotency-Key` header a retry answers what the first request answered,
whatever its body (idempotency.py). The mailbox is the native one: the same
row, rules, quotas and tenant scoping as POST /users/.
"""

from flask import Blueprint, jsonify
from marshmallow import validate

from .. import idempotency, names, passwords, responses, schemas
from ..errors import ApiError
from ..fields import StrictInteger, StrictString
from ..routing import endpoint
from ..tenancy import visible_domain, visible_mailbox
from . import users

bp = Blueprint("mailboxes", __name__)
OPERATION = "POST /mailboxes"


class MailboxProvision(schemas.Body):
    email = StrictString(required=True, max_length=600, metadata={"description": "the mailbox's address"})
    password = StrictString(required=True, min_length=1, max_length=256, load_only=True)
    quota_mb = StrictInteger(validate=schemas.QUOTA, metadata={
        "description": "storage in MB (0 = unlimited); default EMBOUX_DEFAULT_QUOTA_MB"})
    domain_name = StrictString(max_length=1000, validate=validate.Length(min=1), metadata={
        "description": "optional; when given it must be the address's domain"})


MAILBOX_PROVISIONED = {"allOf": [responses.MAILBOX, {"type": "object", "properties": {
    "created": {"type": "boolean"}}, "required": ["created"]}]}


def _answer(status, body):
    resp = jsonify(body)
    resp.status_code = status
    return resp


def _existing(cur, caller, email, body):
    """The existing mailbox when the request asks for what it is, else 409."""
    box = visible_mailbox(cur, caller, email)
    cur.execute("SELECT password_hash FROM mailboxes WHERE id = %s", (box["id"],))
    same_password = passwords.verify_password(body["password"], cur.fetchone()["password_hash"])
    if not same_password or ("quota_mb" in body and body["quota_mb"] != box["quota_mb"]):
        raise ApiError(409, f"Mailbox {email} already exists with another password or quota: nothing was "
                            "changed (PUT /users/{email} changes it)", code="mailbox_exists_different")
    return {**users.user_json(box), "created": False}


def _provision(cur, caller, body):
    email, _local, domain = names.address(body["email"], "email")
    if "domain_name" in body and names.domain_name(body["domain_name"], "domain_name") != domain:
        raise ApiError(400, f"email: the address must be in domain {body['domain_name']}")
    visible_domain(cur, caller, domain, lock=True)   # 404 for another tenant's domain; serialises creates
    cur.execute("SELECT 1 FROM mailboxes WHERE email = %s", (email,))
    if cur.fetchone() is not None:
        return 200, _existing(cur, caller, email, body)
    # the native create (POST /users/): its checks (aliases, quotas, password rules) and insert
    users.create_user.__wrapped__(cur, caller, body={
        "domain_name": domain, "email": email, "password": body["password"],
        **({"quota_mb": body["quota_mb"]} if "quota_mb" in body else {})})
    return 201, {**users.user_json(visible_mailbox(cur, caller, email)), "created": True}


@endpoint(bp, "/mailboxes", "POST", role="either", body=MailboxProvision, status=201, errors=(404, 409),
          response=MAILBOX_PROVISIONED, tag="users",
          summary="Provision a mailbox idempotently (seed 004): 201 created, 200 when it already exists as asked")
def provision_mailbox(cur, caller, body):
    """`Idempotency-Key` (header, optional, 1-255 printable ASCII): a retry
    with the same key within a day answers the first answer again
    (`Idempotent-Replayed: true`; `Idempotent-Body-Differs: true` when its
    body differs) and changes nothing."""
    idem_key = idempotency.key()
    if idem_key is not None:
        stored = idempotency.replay(cur, caller, OPERATION, idem_key)
        if stored is not None:
            return stored
    status, answer = _provision(cur, caller, body)
    if idem_key is not None:
        idempotency.remember(cur, caller, OPERATION, idem_key, status, answer)
    return _answer(status, answer)


provision_mailbox.openapi["responses"] = {"200": {
    "description": "The mailbox already exists as asked: nothing changed",
    "content": {"application/json": {"schema": MAILBOX_PROVISIONED}}}}
