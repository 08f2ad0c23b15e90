"""MTA-STS and TLS-RPT of a domain: the tenant sets the mode (none, testing,
enforce); the policy is served, token-less, at
https://mta-sts.<domain>/.well-known/mta-sts.txt (routed by the Host header).
The rules live in mtasts.py; docs/mail-clients.md has the records."""

from flask import Blueprint, Response
from marshmallow import validate

from .. import clientsetup, mtasts, names, public, schemas
from ..errors import ApiError
from ..fields import StrictInteger, StrictString
from ..routing import endpoint
from ..tenancy import visible_domain

bp = Blueprint("mtasts", __name__)


class MtaStsBody(schemas.Body):
    mode = StrictString(required=True, validate=validate.OneOf(mtasts.MODES), metadata={
        "description": "none (withdraws a policy), testing (report only) or enforce"})
    max_age = StrictInteger(validate=validate.Range(min=86400, max=31557600), metadata={
        "description": f"seconds senders cache the policy (default {mtasts.DEFAULT_MAX_AGE}, a week)"})


@endpoint(bp, "/domains/<name>/mta-sts", "GET", role="either", tag="transport security",
          summary="A domain's MTA-STS mode, its policy and id, and the records to publish (with TLS-RPT)")
def get_mta_sts(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name))
    return mtasts.state(row["name"], mtasts.load(cur, row["id"]), clientsetup.public_host())


@endpoint(bp, "/domains/<name>/mta-sts", "PUT", role="either", body=MtaStsBody, tag="transport security",
          summary="Set a domain's MTA-STS mode (none / testing / enforce); the policy id changes with the policy")
def put_mta_sts(cur, caller, name, body):
    """Setting the same mode and max_age again changes nothing (nor the id).
    Moving to `enforce` is safe only once `testing` ran clean: the TLS-RPT
    reports say so."""
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    max_age = body.get("max_age", mtasts.DEFAULT_MAX_AGE)
    cur.execute(
        "INSERT INTO domain_mta_sts (domain_id, mode, max_age) VALUES (%s, %s, %s) "
        "ON CONFLICT (domain_id) DO UPDATE SET mode = EXCLUDED.mode, max_age = EXCLUDED.max_age, "
        "updated_at = now() WHERE (domain_mta_sts.mode, domain_mta_sts.max_age) "
        "IS DISTINCT FROM (EXCLUDED.mode, EXCLUDED.max_age)",
        (row["id"], body["mode"], max_age))
    return mtasts.state(row["name"], mtasts.load(cur, row["id"]), clientsetup.public_host())


@endpoint(bp, mtasts.POLICY_PATH, "GET", role=None, media="text/plain", errors=(404,),
          tag="transport security",
          summary="The MTA-STS policy of the domain named by the Host header (mta-sts.<domain>)")
def mta_sts_policy(cur, caller):
    """404 `domain_not_hosted` for a host that is not mta-sts.<a hosted domain>,
    404 `mta_sts_not_configured` when the domain set no mode."""
    domain = public.host_domain("mta-sts")
    if domain is None:
        raise public.not_hosted()
    row = public.hosted_domain(cur, domain)
    policy = mtasts.load(cur, row["id"])
    if policy is None:
        raise ApiError(404, "No MTA-STS policy for this domain", code="mta_sts_not_configured")
    resp = Response(mtasts.policy_text(policy["mode"], policy["max_age"]), status=200,
                    mimetype="text/plain")
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp
