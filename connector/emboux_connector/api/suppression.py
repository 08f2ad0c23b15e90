"""The suppression list: global recipient blocklist fed by the provider
webhooks (feedback.py). GET /suppression/check/{email} -- the check the policy
daemon makes before every outbound message -- lives with outbound control
(api/outbound.py)."""

from flask import Blueprint
from marshmallow import fields, validate

from .. import feedback, schemas
from ..errors import ApiError, not_found
from ..names import domain_name
from ..routing import endpoint

bp = Blueprint("suppression", __name__)


class SuppressionQuery(schemas.Body):
    domain = fields.String(validate=validate.Length(min=1, max=1000),
                           metadata={"description": "source domain (our sending domain)"})
    reason = fields.String(validate=validate.OneOf(["bounce", "complaint"]))
    limit = fields.Integer(validate=validate.Range(min=1, max=1000), load_default=100)
    offset = fields.Integer(validate=validate.Range(min=0, max=10**9), load_default=0)


def entry_json(r):
    return {"id": r["id"], "email": r["email"], "reason": r["reason"], "source_domain": r["source_domain"],
            "provider": r["provider"], "created_at": r["created_at"].isoformat()}


@endpoint(bp, "/suppression", "GET", role="master", query=SuppressionQuery,
          summary="List suppressed recipients (filter by source domain and reason)")
def list_suppression(cur, caller, query):
    """`count` is the number of entries matching the filters (all pages)."""
    where, params = [], []
    if query.get("domain"):
        where.append("source_domain = %s")
        params.append(domain_name(query["domain"], "domain"))
    if query.get("reason"):
        where.append("reason = %s")
        params.append(query["reason"])
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    cur.execute("SELECT count(*) AS n FROM suppression" + cond, params)
    count = cur.fetchone()["n"]
    cur.execute("SELECT id, email, reason, source_domain, provider, created_at FROM suppression"
                + cond + " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                params + [query["limit"], query["offset"]])
    return {"entries": [entry_json(r) for r in cur.fetchall()], "count": count}


@endpoint(bp, "/suppression/<email>", "DELETE", role="master",
          summary="Remove an address from the suppression list (every reason)")
def delete_suppression(cur, caller, email):
    normalised = feedback.normalise_email(email)
    if normalised is None:
        raise ApiError(400, f"email: invalid email address {email!r}")
    cur.execute("DELETE FROM suppression WHERE email = %s RETURNING reason", (normalised,))
    reasons = sorted(r["reason"] for r in cur.fetchall())
    if not reasons:
        raise not_found("Suppression entry")
    return {"email": normalised, "removed": reasons, "message": "Removed from the suppression list"}
