"""Partners (tenants): their quotas, shared by all their keys (master only).

An ERP sets a tenant's quotas here without having to hold one of its tokens.
"""

import re

from flask import Blueprint

from .. import responses, schemas
from ..errors import ApiError, not_found
from ..routing import endpoint
from ..tenancy import QUOTA_FIELDS, ensure_partner, partner_counts, set_partner_quotas

bp = Blueprint("partners", __name__)
PARTNER_REF_RE = re.compile(schemas.PARTNER_REF.regex.pattern)


def partner_json(cur, row):
    cur.execute("SELECT count(*) FILTER (WHERE active AND (expires_at IS NULL OR expires_at > now())) AS active, "
                "count(*) AS total FROM api_keys WHERE partner_ref = %s", (row["partner_ref"],))
    keys = cur.fetchone()
    return {"partner_ref": row["partner_ref"], **{f: row[f] for f in QUOTA_FIELDS},
            "domains_used": row["domains_used"], "counts": partner_counts(cur, row["partner_ref"]),
            "api_keys": {"active": keys["active"], "total": keys["total"]},
            "created_at": row["created_at"].isoformat()}


@endpoint(bp, "/partners/", "GET", role="master", summary="List partners with their quotas",
          response=responses.array_of(responses.PARTNER))
def list_partners(cur, caller):
    cur.execute("SELECT * FROM partners ORDER BY partner_ref")
    return [partner_json(cur, r) for r in cur.fetchall()]


@endpoint(bp, "/partners/<partner_ref>", "GET", role="master", summary="A partner's quotas and usage",
          response=responses.PARTNER)
def get_partner(cur, caller, partner_ref):
    cur.execute("SELECT * FROM partners WHERE partner_ref = %s", (partner_ref,))
    row = cur.fetchone()
    if row is None:
        raise not_found("Partner")
    return partner_json(cur, row)


@endpoint(bp, "/partners/<partner_ref>", "PUT", role="master", body=schemas.PartnerQuotas,
          response=responses.PARTNER,
          summary="Create a partner or set its quotas (partial update)")
def put_partner(cur, caller, partner_ref, body):
    if len(partner_ref) > 128 or not PARTNER_REF_RE.fullmatch(partner_ref):
        raise ApiError(400, "partner_ref: letters, digits and . _ : @ - only, at most 128")
    ensure_partner(cur, partner_ref)
    set_partner_quotas(cur, partner_ref, body)
    cur.execute("SELECT * FROM partners WHERE partner_ref = %s", (partner_ref,))
    return partner_json(cur, cur.fetchone())
