"""Sending identity: provider verification (verify, verify-status and the
legacy ses-verify / ses-status), one-shot subdomain registration, DKIM keys of
the local provider, and the DNS check. See docs/sending-identity.md."""

import datetime as dt

from flask import Blueprint
from marshmallow import validate

from .. import bimi, clientsetup, dkim, dnscheck, mtasts, names, ownership, providers, schemas, setupdns
from ..errors import ApiError
from ..fields import StrictInteger, StrictString
from ..providers import ProviderError, lifecycle
from ..routing import endpoint
from ..tenancy import visible_domain
from . import reports   # api/reports.py: the aggregate reports' aligned pass rate

bp = Blueprint("identity", __name__)


class VerifyBody(schemas.Body):
    provider = StrictString(validate=validate.OneOf(["ses", "mailgun"]),
                            metadata={"description": "master, for a root domain not hosted here "
                                                     "(default ses); ignored for hosted domains"})


class DkimSettings(schemas.Body):
    rotation_days = StrictInteger(required=True, validate=validate.Range(min=0, max=3650),
                                  metadata={"description": "rotate the active key automatically once it is "
                                                           "this many days old (0 = never)"})


class RotateBody(schemas.Body):
    overlap_days = StrictInteger(validate=validate.Range(min=0, max=365),
                                 metadata={"description": "days the old key stays published "
                                                          "(default DKIM_ROTATION_OVERLAP_DAYS, 7)"})


def _hosted(cur, caller, name):
    """The hosted domain row, or None when the master asks for one we do not host.
    The row is locked: parallel verify / verify-status calls of one domain
    run one after the other (each sees what the previous one stored)."""
    try:
        row = visible_domain(cur, caller, name, lock=True)
    except ApiError:
        if caller.is_master:
            ownership.refuse_public_suffix(name)
            return None
        raise
    ownership.require_owned(row)   # a pending claim gets no provider verification
    return row


def _external(name, provider_name, poll):
    """Master only: a root domain not present locally, straight to the provider."""
    try:
        p = providers.get(provider_name)
        ident = p.verification_status(name) if poll else p.start_verification(name)
    except ProviderError as exc:
        raise lifecycle.provider_error(exc) from exc
    return {"name": name, "provider": provider_name, "state": ident.state,
            "verified": ident.state == "verified", "ses_verified": ident.state == "verified",
            "inherited_from": None, "dns_records": ident.dns_records, "hosted": False,
            "detail": ident.detail}


def verify(cur, caller, name, body):
    """Starts verification with the domain's provider (SES, Mailgun, or for
    `local` the DKIM key). The master may also verify a root domain not
    hosted here (`provider` in the body, default ses)."""
    name = names.domain_name(name)
    row = _hosted(cur, caller, name)
    if row is None:
        return _external(name, body.get("provider", "ses"), poll=False)
    return lifecycle.start(cur, lifecycle.load(cur, row["id"]))


def verify_status(cur, caller, name):
    """Polls the provider and stores success (subdomains of a verified parent
    are verified by inheritance)."""
    name = names.domain_name(name)
    row = _hosted(cur, caller, name)
    if row is None:
        return _external(name, "ses", poll=True)
    return lifecycle.poll(cur, lifecycle.load(cur, row["id"]))


endpoint(bp, "/domains/<name>/verify", "POST", role="either", body=VerifyBody, errors=(409, 502),
         summary="Start provider verification of a domain")(verify)
endpoint(bp, "/domains/<name>/verify-status", "GET", role="either", errors=(409, 502),
         summary="Poll provider verification; stores success")(verify_status)


def ses_verify(cur, caller, name, body):
    return verify(cur, caller, name, body)


def ses_status(cur, caller, name):
    return verify_status(cur, caller, name)


endpoint(bp, "/domains/<name>/ses-verify", "POST", role="either", body=VerifyBody, errors=(409, 502),
         summary="Legacy alias of POST /domains/{name}/verify")(ses_verify)
endpoint(bp, "/domains/<name>/ses-status", "GET", role="either", errors=(409, 502),
         summary="Legacy alias of GET /domains/{name}/verify-status")(ses_status)


def _nearest_ancestor(cur, caller, name):
    labels = name.split(".")
    ancestors = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    if not ancestors:
        return None
    sql = "SELECT id, name, partner_ref FROM domains WHERE name = ANY(%s)"
    params = [ancestors]
    if not caller.is_master:
        sql += " AND partner_ref = %s"
        params.append(caller.partner_ref)
    cur.execute(sql + " ORDER BY length(name) DESC LIMIT 1", params)
    return cur.fetchone()


@endpoint(bp, "/domains/<name>/register-subdomain", "POST", role="either", errors=(409, 502),
          summary="Register a subdomain with its parent's provider identity (one shot)")
def register_subdomain(cur, caller, name):
    """Self-contained: links the subdomain to its nearest hosted parent when
    it is not linked yet, takes the parent's provider, tier and enforcement,
    installs whatever the provider needs (Mailgun: domain, DKIM authority of
    the parent, SMTP credential, webhooks; local: the parent's DKIM key signs
    it). Afterwards the subdomain sends with the parent's DKIM identity."""
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    ownership.require_owned(row)
    if row["parent_id"] is None:
        parent = _nearest_ancestor(cur, caller, row["name"])
        if parent is None:
            raise ApiError(400, f"{row['name']} is not a subdomain of a domain hosted here")
        cur.execute("UPDATE domains SET parent_id = %s, updated_at = now() WHERE id = %s",
                    (parent["id"], row["id"]))
    return lifecycle.register_subdomain(cur, lifecycle.load(cur, row["id"]))


def _identity_of(cur, domain_id):
    cur.execute("SELECT state, dns_records, verification_token, dkim_tokens "
                "FROM provider_identities WHERE domain_id = %s", (domain_id,))
    return cur.fetchone()


@endpoint(bp, "/domains/<name>/dns-check", "GET", role="either",
          summary="Check MX, SPF, provider TXT, DKIM, DMARC, BIMI, mail-client SRV and host records, "
                  "MTA-STS and TLS-RPT in DNS")
def dns_check(cur, caller, name):
    """One entry per record: expected vs found, status ok/missing/wrong and a
    one-line fix. A subdomain that signs with its parent's identity is checked
    against the parent's DKIM records; DMARC falls back to the parent's.
    Entries with `required: false` (BIMI, the mail-client SRV and
    autoconfig/autodiscover records; MTA-STS and TLS-RPT until the domain's
    MTA-STS mode is testing or enforce) do not make `ok` false."""
    row = lifecycle.load(cur, visible_domain(cur, caller, names.domain_name(name))["id"])
    provider = row["provider"]
    ident = _identity_of(cur, row["id"])
    # whose identity signs: the domain's own, else its parent's
    owner_id, owner_name = row["id"], row["name"]
    if row["parent_id"] and (ident is None or ident["state"] == "inherited"):
        owner_id, owner_name = row["parent_id"], row["parent_name"]
        ident = _identity_of(cur, owner_id)
    verification, dkim_expected = None, []
    if provider == "local":
        key_domain = owner_id
        cur.execute("SELECT 1 FROM dkim_keys WHERE domain_id = %s AND status = 'active'", (row["id"],))
        if cur.fetchone():
            key_domain, owner_name = row["id"], row["name"]
        dkim_expected = [dkim.record(owner_name, k) for k in dkim.published(cur, key_domain)]
    elif ident is not None:
        if provider == "ses" and ident["verification_token"]:
            verification = {"type": "TXT", "name": f"_amazonses.{owner_name}",
                            "value": ident["verification_token"]}
        dkim_expected = [r for r in ident["dns_records"] if r.get("purpose") == "dkim"]
    cur.execute("SELECT 1 FROM domain_bimi_logos WHERE domain_id = %s", (row["id"],))
    logo_url = bimi.logo_url(clientsetup.public_host(), row["name"]) if cur.fetchone() else None
    checks = dnscheck.check(row["name"], providers.get(provider).spf_mechanism, dkim_expected, verification,
                            org_domain=row["parent_name"], bimi_logo_url=logo_url,
                            extra=setupdns.checks(row["name"], mtasts.load(cur, row["id"])),
                            dmarc_aligned_pass=reports.aligned_pass_percent(cur, row["id"]))
    problems = [c for c in checks if c["status"] != "ok" and c.get("required", True)]
    return {"name": row["name"], "provider": provider, "ok": not problems, "records": checks,
            "lookup_failed": any(c.get("lookup_failed") for c in checks)}


@endpoint(bp, "/domains/<name>/dkim", "GET", role="either",
          summary="DKIM keys of a local domain: selectors and the TXT records to publish")
def dkim_keys(cur, caller, name):
    """Public halves only: the private key never leaves the server."""
    row = lifecycle.load(cur, visible_domain(cur, caller, names.domain_name(name))["id"])
    return _dkim_json(cur, row)


def _dkim_json(cur, row):
    keys = dkim.published(cur, row["id"])
    signing = dkim.signing_key(cur, row["id"], row["parent_id"])
    cur.execute("SELECT dkim_rotation_days FROM domains WHERE id = %s", (row["id"],))
    days = cur.fetchone()["dkim_rotation_days"]
    own = next((k for k in keys if k["status"] == "active"), None)
    rotates_at = (own["created_at"] + dt.timedelta(days=days)).isoformat() if own and days else None
    return {"name": row["name"], "provider": row["provider"], "rotation_days": days, "rotates_at": rotates_at,
            "signing": {"domain": signing["domain"], "selector": signing["selector"]} if signing else None,
            "keys": [dict(dkim.record(row["name"], k),
                          created_at=k["created_at"].isoformat(),
                          retire_after=k["retire_after"].isoformat() if k["retire_after"] else None)
                     for k in keys]}


@endpoint(bp, "/domains/<name>/dkim", "PUT", role="master", body=DkimSettings, errors=(409,),
          summary="DKIM settings of a local domain: the automatic rotation age")
def dkim_settings(cur, caller, name, body):
    row = lifecycle.load(cur, visible_domain(cur, caller, names.domain_name(name), lock=True)["id"])
    _require_local(row)
    cur.execute("UPDATE domains SET dkim_rotation_days = %s, updated_at = now() WHERE id = %s",
                (body["rotation_days"], row["id"]))
    return _dkim_json(cur, lifecycle.load(cur, row["id"]))


def _require_local(row):
    if row["provider"] != "local":
        raise ApiError(409, f"{row['name']} is signed by its provider ({row['provider']}): "
                            "its DKIM keys are managed there", code="dkim_not_local")


@endpoint(bp, "/domains/<name>/dkim/rotate", "POST", role="master", body=RotateBody, errors=(409,),
          summary="Rotate a local domain's DKIM key: new selector, old one kept published for an overlap")
def dkim_rotate(cur, caller, name, body):
    row = lifecycle.load(cur, visible_domain(cur, caller, names.domain_name(name), lock=True)["id"])
    _require_local(row)
    try:
        new, old = dkim.rotate(cur, row["id"], body.get("overlap_days"))
    except dkim.NoKey:
        raise ApiError(409, f"{row['name']} has no DKIM key to rotate yet: POST /domains/{{name}}/verify "
                            "creates its first key", code="dkim_no_key") from None
    return {"name": row["name"], "selector": new["selector"], "retiring": old,
            "record": dkim.record(row["name"], new)}
