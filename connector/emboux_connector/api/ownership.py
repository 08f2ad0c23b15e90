"""Domain ownership: see the state, check the DNS proof, vouch as the operator.
The rules live in ownership.py; docs/domain-ownership.md is the integrator's guide."""

import datetime as dt

from flask import Blueprint

from .. import names, ownership, schemas
from ..providers import lifecycle
from ..routing import endpoint
from ..tenancy import DOMAIN_COLUMNS, visible_domain

bp = Blueprint("ownership", __name__)


def _reload(cur, domain_id):
    cur.execute(f"SELECT {DOMAIN_COLUMNS} FROM domains d WHERE d.id = %s", (domain_id,))
    return cur.fetchone()


def _answer(row, detail, **extra):
    return {"name": row["name"], "partner_ref": row["partner_ref"], **ownership.fields(row),
            "detail": detail, **extra}


def _became_owned(cur, domain_id):
    """What follows a proof or a vouch: the provider verification that waited
    for it starts, and pending subdomains of the same partner follow."""
    row = _reload(cur, domain_id)
    lifecycle.on_created(cur, domain_id)
    for child in ownership.promote_children(cur, row):
        lifecycle.on_created(cur, child)
    return _reload(cur, domain_id)


@endpoint(bp, "/domains/<name>/ownership", "GET", role="either",
          summary="A domain's ownership: pending, verified or vouched, and the TXT record that proves it")
def get_ownership(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name))
    return _answer(row, None)


@endpoint(bp, "/domains/<name>/ownership/check", "POST", role="either",
          summary="Look up the domain's ownership TXT record in DNS; when found the domain is verified "
                  "and the mail server routes it at once")
def check_ownership(cur, caller, name):
    """Idempotent: an owned domain is answered as it is. A pending one is
    verified when `_emboux-verification.<name>` (or `<name>`) holds the
    `ownership_record` value, or when its linked parent is owned by the
    same partner. Otherwise it stays pending, with what DNS held (`found`)."""
    row = visible_domain(cur, caller, names.domain_name(name))
    checked_at = dt.datetime.now(dt.UTC).isoformat()
    if row["ownership"] in ownership.OWNED:
        return _answer(row, "ownership already established", found=[], checked_at=None)
    if row["parent_id"] is not None:
        cur.execute("SELECT id, name, partner_ref, ownership FROM domains WHERE id = %s", (row["parent_id"],))
        parent = cur.fetchone()
        if parent and parent["ownership"] in ownership.OWNED and parent["partner_ref"] == row["partner_ref"]:
            ownership.set_state(cur, row["id"], parent["ownership"], "parent", parent["name"])
            return _answer(_became_owned(cur, row["id"]), f"inherits the ownership of {parent['name']}",
                           found=[], checked_at=checked_at)
    # DNS first, without a lock: the update below only applies to the claim
    # that was checked (still pending, same token: not moved meanwhile).
    found, values, error = ownership.txt_published(row["name"], row["ownership_token"])
    if not found:
        detail = (f"DNS lookup failed, try again ({error})" if error and not values else
                  "the TXT record was not found: publish ownership_record, then check again "
                  "(DNS changes may take a while to reach the resolver)")
        return _answer(row, detail, found=values, checked_at=checked_at)
    cur.execute("UPDATE domains SET ownership = 'verified', ownership_method = 'dns_txt', ownership_by = %s, "
                "ownership_at = now(), updated_at = now() "
                "WHERE id = %s AND ownership = 'pending' AND ownership_token = %s RETURNING id",
                (caller.partner_ref or "master", row["id"], row["ownership_token"]))
    if cur.fetchone() is None:   # moved or vouched meanwhile: say what it is now
        return _answer(_reload(cur, row["id"]), "the domain changed during the check", found=values,
                       checked_at=checked_at)
    return _answer(_became_owned(cur, row["id"]), "ownership verified: TXT record found",
                   found=values, checked_at=checked_at)


@endpoint(bp, "/domains/<name>/ownership/vouch", "PUT", role="master", body=schemas.OwnershipVouch,
          summary="Vouch for a domain's ownership as the operator (recorded): it is routed at once")
def vouch_ownership(cur, caller, name, body):
    """For a pending domain: state `vouched`, method `operator`, by
    `vouched_by` (default 'master'), now. A domain already owned is left as it is."""
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    if row["ownership"] in ownership.OWNED:
        return _answer(row, "ownership already established")
    by = f"master: {body['vouched_by']}" if body.get("vouched_by") else "master"
    ownership.set_state(cur, row["id"], "vouched", "operator", by)
    return _answer(_became_owned(cur, row["id"]), "ownership vouched for by the operator")
