"""Seed 002's REST API, accounts: `/mail/account/` as the older JSON/REST
mail controller wrote it, so that its integrators move without rewriting.

The same rows, tokens and tenant rules as the native `/users/` API: an
account is a mailbox (`mailboxes`), created through POST /users/'s own code
(name checks, alias clash, quotas); a client token sees and changes only its
own domains' accounts (another tenant's answers 404, as natively). The
model, as the seed gives it:

    Account {id, name, domain, password, spoofing_whitelist, submission_disabled}

`id` is the address; `password` is written in plain text and read only as
its crypt hash (the form seed 002's JSON document takes, so an account read
here can be listed there as is); `spoofing_whitelist` is the seed's
comma-separated string of addresses and domains ('*' = any), stored in
`mailboxes.spoofing_whitelist` and enforced at SMTP like PUT /users/'s
(`smtpd_sender_login_maps`, docs/outbound.md "Sender spoofing");
`submission_disabled` refuses the account's outbound mail at the policy
daemon (554 5.7.1) while it still receives.
"""

from flask import Blueprint
from marshmallow import validate

from .. import names, passwords, responses, schemas
from ..errors import ApiError
from ..fields import StrictBoolean, StrictString
from ..routing import endpoint
from ..tenancy import scoped, visible_mailbox
from . import users

bp = Blueprint("mail_accounts", __name__)

ACCOUNT = {"type": "object", "required": ["id", "name", "domain", "password", "spoofing_whitelist",
                                          "submission_disabled"], "properties": {
    "id": {"type": "string", "description": "the address, name@domain"},
    "name": {"type": "string"}, "domain": {"type": "string"},
    "password": {"type": "string", "description": "the crypt hash ($6$...); never the password"},
    "spoofing_whitelist": {"type": "string", "description": "comma-separated addresses and domains, '*' = any"},
    "submission_disabled": {"type": "boolean"}}}

_WHITELIST = StrictString(min_length=0, max_length=20000, metadata={
    "description": "comma-separated addresses and domains the account may send as besides its own; '*' = any"})
_PASSWORD = StrictString(required=True, min_length=1, max_length=256, load_only=True,
                         metadata={"description": "plain text; stored only as a hash"})

_SELECT = ("SELECT m.email, m.local_part, d.name AS domain, m.password_hash, m.spoofing_whitelist, "
           "m.submission_disabled FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE true")


class SeedAccountCreate(schemas.Body):
    name = StrictString(required=True, max_length=64, validate=validate.Length(min=1),
                        metadata={"description": "the part before the @"})
    domain = StrictString(required=True, max_length=1000)
    password = _PASSWORD
    submission_disabled = StrictBoolean(metadata={"description": "default false"})
    spoofing_whitelist = _WHITELIST


class SeedAccountPassword(schemas.Body):
    password = _PASSWORD


class SeedAccountWhitelist(schemas.Body):
    spoofing_whitelist = StrictString(required=True, min_length=0, max_length=20000, metadata={
        "description": "comma-separated addresses and domains; '' = only the own address, '*' = any"})


class SeedDomainQuery(schemas.Body):
    domain = StrictString(max_length=1000, metadata={"description": "only this domain's (default: all)"})


def scoped_to_domain(select, caller, query):
    """`select` (over `domains d`) narrowed to the caller's tenant and, with
    seed 002's `?domain=`, to that one domain: the listing filter of
    /mail/account/ and /mail/alias/."""
    sql, params = scoped(select, [], caller)
    if "domain" in query:
        sql += " AND d.name = %s"
        params.append(names.domain_name(query["domain"], "domain"))
    return sql, params


def whitelist_patterns(raw):
    """The seed's 'office@example.com,skylime.net' as stored patterns
    (['@skylime.net', 'office@example.com']); '' = none."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > 200:
        raise ApiError(400, "spoofing_whitelist: at most 200 entries")
    return sorted({users._sender_pattern(p) for p in parts})


def whitelist_text(patterns):
    """Stored patterns back as the seed's string (a domain without its '@')."""
    return ",".join(p[1:] if p.startswith("@") else p for p in patterns)


def account_json(row):
    return {"id": row["email"], "name": row["local_part"], "domain": row["domain"],
            "password": passwords.crypt_of(row["password_hash"]),
            "spoofing_whitelist": whitelist_text(row["spoofing_whitelist"]),
            "submission_disabled": row["submission_disabled"]}


def _account(cur, caller, account_id, lock=False):
    box = visible_mailbox(cur, caller, names.address(account_id, "id")[0], lock=lock)
    cur.execute(_SELECT + " AND m.id = %s", (box["id"],))
    return cur.fetchone()


def _set(cur, row, column, value):
    # column is one of this module's literals, never input
    cur.execute(f"UPDATE mailboxes SET {column} = %s, updated_at = now() WHERE email = %s",
                (value, row["email"]))


def _change(cur, caller, account_id, column, value):
    """Set one column of a visible account (locked) and answer it as it is now."""
    row = _account(cur, caller, account_id, lock=True)
    _set(cur, row, column, value)
    return account_json(_account(cur, caller, row["email"]))


@endpoint(bp, "/mail/account/", "POST", role="either", body=SeedAccountCreate, status=201, response=ACCOUNT,
          errors=(404,),
          tag="seed 002", summary="Create an account (seed 002): a mailbox name@domain")
def create_account(cur, caller, body):
    domain = names.domain_name(body["domain"], "domain")
    local = names.local_part(body["name"], "name")
    whitelist = whitelist_patterns(body.get("spoofing_whitelist", ""))
    users.create_user.__wrapped__(cur, caller, body={
        "domain_name": domain, "email": f"{local}@{domain}", "password": body["password"]})
    row = _account(cur, caller, f"{local}@{domain}", lock=True)
    if whitelist:
        _set(cur, row, "spoofing_whitelist", whitelist)
    if body.get("submission_disabled"):
        _set(cur, row, "submission_disabled", True)
    return account_json(_account(cur, caller, row["email"]))


@endpoint(bp, "/mail/account/", "GET", role="either", query=SeedDomainQuery, response=responses.array_of(ACCOUNT),
          tag="seed 002", summary="List accounts (seed 002), of one domain with ?domain=")
def list_accounts(cur, caller, query):
    sql, params = scoped_to_domain(_SELECT, caller, query)
    cur.execute(sql + " ORDER BY m.email", params)
    return [account_json(r) for r in cur.fetchall()]


@endpoint(bp, "/mail/account/<account_id>/", "GET", role="either", response=ACCOUNT, tag="seed 002",
          summary="Get one account (seed 002)")
def get_account(cur, caller, account_id):
    return account_json(_account(cur, caller, account_id))


@endpoint(bp, "/mail/account/<account_id>/set_password/", "POST", role="either", body=SeedAccountPassword,
          response=ACCOUNT, tag="seed 002", summary="Set an account's password (seed 002)")
def set_account_password(cur, caller, account_id, body):
    return _change(cur, caller, account_id, "password_hash", passwords.hash_password(body["password"]))


@endpoint(bp, "/mail/account/<account_id>/disable_submission/", "POST", role="either", response=ACCOUNT,
          tag="seed 002", summary="Disable sending from an account; it still receives (seed 002)")
def disable_submission(cur, caller, account_id):
    return _change(cur, caller, account_id, "submission_disabled", True)


@endpoint(bp, "/mail/account/<account_id>/enable_submission/", "POST", role="either", response=ACCOUNT,
          tag="seed 002", summary="Enable sending from an account again (seed 002)")
def enable_submission(cur, caller, account_id):
    return _change(cur, caller, account_id, "submission_disabled", False)


@endpoint(bp, "/mail/account/<account_id>/set_spoofing_whitelist/", "POST", role="either",
          body=SeedAccountWhitelist, response=ACCOUNT, tag="seed 002",
          summary="Set the addresses and domains an account may send as besides its own (seed 002)")
def set_spoofing_whitelist(cur, caller, account_id, body):
    return _change(cur, caller, account_id, "spoofing_whitelist", whitelist_patterns(body["spoofing_whitelist"]))


@endpoint(bp, "/mail/account/<account_id>/", "DELETE", role="either", status=204, tag="seed 002",
          summary="Delete an account and its stored mail (seed 002)")
def delete_account(cur, caller, account_id):
    users.delete_user.__wrapped__(cur, caller, names.address(account_id, "id")[0])
