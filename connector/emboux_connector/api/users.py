"""Mailboxes ("users" in the API): create, list, password, delete, quota."""

from flask import Blueprint, current_app, request

from .. import names, passwords, responses, schemas, stores
from ..errors import ApiError
from ..routing import _json_body, after_commit, endpoint, refuse_unstorable
from ..tenancy import scoped_list, visible_domain, visible_mailbox
from ..throttle import throttle

bp = Blueprint("users", __name__)


def user_json(row):
    return {
        "id": row["id"],
        "domain_id": row["domain_id"],
        "email": row["email"],
        "quota_mb": row["quota_mb"],
        "active": row["active"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


@endpoint(bp, "/users/", "POST", role="either", body=schemas.UserCreate, status=201,
          response=responses.MAILBOX_CREATED,
          summary="Create a mailbox")
def create_user(cur, caller, body):
    domain_name = names.domain_name(body["domain_name"], "domain_name")
    email, local, domain = names.address(body["email"], "email")
    if domain != domain_name:
        raise ApiError(400, f"email: the address must be in domain {domain_name}")
    password_hash = passwords.hash_password(body["password"])
    # Locking the domain row serialises mailbox creation per domain, so two
    # parallel creates at quota N-1 cannot both pass the count.
    dom = visible_domain(cur, caller, domain_name, lock=True)
    # One statement after the lock (a round trip is a wake-up of each side
    # on a loaded machine: issue 15): is the address taken, the quota, the count.
    cur.execute("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE email = %(e)s UNION ALL "
                "  SELECT 1 FROM aliases WHERE source = %(e)s) AS taken, p.mailboxes_per_domain AS allowed, "
                "CASE WHEN p.mailboxes_per_domain > 0 THEN "
                "  (SELECT count(*) FROM mailboxes WHERE domain_id = %(d)s) END AS used "
                "FROM (SELECT 1) one LEFT JOIN partners p ON p.partner_ref = %(r)s",
                {"e": email, "d": dom["id"], "r": dom["partner_ref"]})
    state = cur.fetchone()
    if state["taken"]:
        raise ApiError(400, "Email already exists")
    if state["allowed"] and state["used"] >= state["allowed"]:
        raise ApiError(403, f"Mailbox quota exceeded for this domain: {state['used']}/{state['allowed']}")
    quota = body.get("quota_mb", current_app.config["EMBOUX"].default_quota_mb)
    cur.execute(
        "INSERT INTO mailboxes (domain_id, email, local_part, password_hash, quota_mb) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id, domain_id, email, quota_mb, created_at",
        (dom["id"], email, local, password_hash, quota))
    row = cur.fetchone()
    return {"id": row["id"], "domain_id": row["domain_id"], "email": row["email"],
            "quota_mb": row["quota_mb"], "created_at": row["created_at"].isoformat()}


@endpoint(bp, "/users/", "GET", role="either", query=schemas.DomainIdQuery,
          response=responses.array_of(responses.MAILBOX),
          summary="List mailboxes")
def list_users(cur, caller, query):
    sql, params = scoped_list(
        "SELECT m.id, m.domain_id, m.email, m.quota_mb, m.active, m.created_at, m.updated_at "
        "FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE true", caller, query, "m")
    cur.execute(sql + " ORDER BY m.email", params)
    return [user_json(r) for r in cur.fetchall()]


@endpoint(bp, "/users/<email>", "GET", role="either", summary="Get one mailbox",
          response=responses.MAILBOX)
def get_user(cur, caller, email):
    box = visible_mailbox(cur, caller, names.address(email)[0])
    cur.execute("SELECT spoofing_whitelist, submission_disabled FROM mailboxes WHERE id = %s", (box["id"],))
    return {**user_json(box), **cur.fetchone()}


def _sender_pattern(value):
    """'*', 'user@domain' or a domain ('domain' / '@domain' -> '@domain')."""
    value = value.strip()
    if value == "*":
        return "*"
    if "@" in value and not value.startswith("@"):
        return names.address(value, "spoofing_whitelist")[0]
    return "@" + names.domain_name(value.lstrip("@"), "spoofing_whitelist")


@endpoint(bp, "/users/<email>", "PUT", role="either", body=schemas.UserUpdate,
          summary="Change a mailbox's password (stored only as a hash), spoofing whitelist, "
                  "submission_disabled or active")
def update_user(cur, caller, email, body):
    """`active: false` disables the mailbox without deleting anything: IMAP,
    POP and SMTP AUTH logins are refused (Dovecot reads active mailboxes
    only) and mail to it is refused at RCPT with 550 5.2.1 (Postfix,
    pgsql-disabled-mailboxes.cf); `active: true` restores both at once."""
    fields = ("password", "spoofing_whitelist", "submission_disabled", "active")
    if not any(f in body for f in fields):
        raise ApiError(400, "password: Missing data for required field "
                            "(or spoofing_whitelist, submission_disabled, active).")
    box = visible_mailbox(cur, caller, names.address(email)[0], lock=True)
    out = {}
    if "password" in body:
        cur.execute("UPDATE mailboxes SET password_hash = %s, updated_at = now() WHERE id = %s",
                    (passwords.hash_password(body["password"]), box["id"]))
        out["message"] = "Password updated"
    if "active" in body:
        cur.execute("UPDATE mailboxes SET active = %s, updated_at = now() WHERE id = %s "
                    "RETURNING email, active", (body["active"], box["id"]))
        out.update(cur.fetchone())
        out.setdefault("message", "User enabled" if body["active"] else "User disabled")
    if "spoofing_whitelist" in body or "submission_disabled" in body:
        sets, params = [], []
        if "spoofing_whitelist" in body:
            sets.append("spoofing_whitelist = %s")
            params.append(sorted({_sender_pattern(v) for v in body["spoofing_whitelist"]}))
        if "submission_disabled" in body:
            sets.append("submission_disabled = %s")
            params.append(body["submission_disabled"])
        cur.execute(f"UPDATE mailboxes SET {', '.join(sets)}, updated_at = now() WHERE id = %s "
                    "RETURNING email, spoofing_whitelist, submission_disabled", params + [box["id"]])
        out.update(cur.fetchone())
        out.setdefault("message", "User updated")
    return out


@endpoint(bp, "/users/<email>", "DELETE", role="either", status=204,
          summary="Delete a mailbox and its stored mail")
def delete_user(cur, caller, email):
    """Alias destinations pointing at the mailbox are removed with it, so no
    alias keeps forwarding into a mailbox that no longer exists."""
    box = visible_mailbox(cur, caller, names.address(email)[0], lock=True)
    cur.execute("DELETE FROM aliases WHERE destination = %s", (box["email"],))
    cur.execute("DELETE FROM mailboxes WHERE id = %s", (box["id"],))
    after_commit(stores.remove_mailbox_store, box["email"])


@endpoint(bp, "/users/<email>/quota", "GET", role="either",
          summary="Get a mailbox's storage quota and the storage in use")
def get_quota(cur, caller, email):
    box = visible_mailbox(cur, caller, names.address(email)[0])
    return {"email": box["email"], "quota_mb": box["quota_mb"],
            **stores.storage_used(box["email"])}


@endpoint(bp, "/users/<email>/quota", "PUT", role="either", body=schemas.UserQuota,
          summary="Set a mailbox's storage quota in MB (0 = unlimited)")
def set_quota(cur, caller, email, body):
    box = visible_mailbox(cur, caller, names.address(email)[0], lock=True)
    cur.execute("UPDATE mailboxes SET quota_mb = %s, updated_at = now() WHERE id = %s",
                (body["quota_mb"], box["id"]))
    return {"email": box["email"], "quota_mb": body["quota_mb"]}


# The mailbox holder's own password change (webmail, issue 13). No API token:
# the current password is the credential. Failures are counted per client
# address and per mailbox (throttle.py, AUTH_FAILURE_LIMIT), so neither one
# address nor many addresses can guess a mailbox's password here faster
# than over IMAP. Passwords are never logged (the access log has no bodies).
PASSWORD_FAILURE = "mailbox-password-failure"
_CREDENTIALS_REFUSED = "Invalid email or password"
# Verified when the mailbox does not exist, so that the answer takes as long
# as for a wrong password (no mailbox enumeration by timing).
_DUMMY_HASH = passwords.hash_password("not-a-password-of-anyone")


def _password_change_body():
    """JSON, or the form encoding Roundcube's password plugin (httpapi
    driver) sends."""
    if request.mimetype == "application/x-www-form-urlencoded":
        data = request.form.to_dict()
        refuse_unstorable(data)
    else:
        data = _json_body()
    return schemas.MailboxPasswordChange().load(data)


@endpoint(bp, "/mailbox/password", "POST", role=None, errors=(400, 403, 413, 429),
          request_body={"required": True, "content": {
              "application/json": {"schema": schemas.MailboxPasswordChange},
              "application/x-www-form-urlencoded": {"schema": schemas.MailboxPasswordChange}}},
          response={"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
          summary="A mailbox holder changes their own password, authenticated by the current one (webmail)")
def change_own_password(cur, caller):
    """For Roundcube's password plugin (its `httpapi` driver posts the form
    fields `email`, `current_password`, `new_password`). A wrong current
    password, an unknown or disabled mailbox all answer 403
    `invalid_credentials` alike; too many failures from one address or
    against one mailbox answer 429 `rate_limited` until the window passes."""
    guard = throttle()
    addr = guard.client_address()
    guard.check(addr, PASSWORD_FAILURE)
    body = _password_change_body()
    email = names.address(body["email"], "email")[0]
    guard.check(email, PASSWORD_FAILURE)
    new_hash = passwords.hash_password(passwords.check_password(body["new_password"], "new_password"))
    cur.execute("SELECT id, password_hash FROM mailboxes WHERE email = %s AND active FOR UPDATE", (email,))
    box = cur.fetchone()
    if not passwords.verify_password(body["current_password"], box["password_hash"] if box else _DUMMY_HASH) \
            or box is None:
        guard.failed(addr, PASSWORD_FAILURE)
        guard.failed(email, PASSWORD_FAILURE)
        raise ApiError(403, _CREDENTIALS_REFUSED, code="invalid_credentials")
    cur.execute("UPDATE mailboxes SET password_hash = %s, updated_at = now() WHERE id = %s", (new_hash, box["id"]))
    return {"message": "Password updated"}
