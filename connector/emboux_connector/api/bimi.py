"""BIMI logos: a tenant uploads its domain's SVG Tiny PS logo (validated by
bimi.py, refused with 400 `bimi_svg_invalid` naming the fault), served
token-less at /bimi/<domain>/logo.svg, the `l=` of the BIMI record
dns-check proposes. See docs/mail-clients.md."""

from flask import Blueprint, Response

from .. import bimi, clientsetup, names, public, schemas
from ..errors import ApiError
from ..fields import StrictString
from ..routing import endpoint
from ..tenancy import visible_domain

bp = Blueprint("bimi", __name__)


class BimiLogoBody(schemas.Body):
    svg = StrictString(required=True, max_length=bimi.MAX_BYTES, metadata={
        "description": "the logo: an SVG Tiny PS document (baseProfile=\"tiny-ps\", version 1.2, a <title>, "
                       "no scripts or external references), at most 32 KB"})


def _info(row, logo):
    url = bimi.logo_url(clientsetup.public_host(), row["name"])
    return {"name": row["name"], "url": url, "sha256": logo["sha256"], "size": logo["size"],
            "uploaded_at": logo["uploaded_at"].isoformat(),
            "record": {"type": "TXT", "name": f"default._bimi.{row['name']}", "value": f"v=BIMI1; l={url}"}}


def _load(cur, domain_id):
    cur.execute("SELECT sha256, octet_length(svg) AS size, uploaded_at FROM domain_bimi_logos "
                "WHERE domain_id = %s", (domain_id,))
    return cur.fetchone()


def _no_logo():
    return ApiError(404, "No BIMI logo for this domain", code="bimi_logo_not_found")


@endpoint(bp, "/domains/<name>/bimi", "PUT", role="either", body=BimiLogoBody, tag="transport security",
          summary="Upload the domain's BIMI logo (SVG Tiny PS, at most 32 KB), served at a public URL")
def put_bimi(cur, caller, name, body):
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    data = bimi.validate(body["svg"])
    cur.execute("INSERT INTO domain_bimi_logos (domain_id, svg, sha256) VALUES (%s, %s, %s) "
                "ON CONFLICT (domain_id) DO UPDATE SET svg = EXCLUDED.svg, sha256 = EXCLUDED.sha256, "
                "uploaded_at = now() WHERE domain_bimi_logos.sha256 <> EXCLUDED.sha256",
                (row["id"], data, bimi.digest(data)))
    return _info(row, _load(cur, row["id"]))


@endpoint(bp, "/domains/<name>/bimi", "GET", role="either", errors=(404,), tag="transport security",
          summary="The domain's BIMI logo: its public URL, digest and the BIMI record to publish")
def get_bimi(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name))
    logo = _load(cur, row["id"])
    if logo is None:
        raise _no_logo()
    return _info(row, logo)


@endpoint(bp, "/domains/<name>/bimi", "DELETE", role="either", status=204, tag="transport security",
          summary="Remove the domain's BIMI logo (its URL answers 404 afterwards)")
def delete_bimi(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    cur.execute("DELETE FROM domain_bimi_logos WHERE domain_id = %s", (row["id"],))
    if cur.rowcount == 0:
        raise _no_logo()


@endpoint(bp, "/bimi/<domain>/logo.svg", "GET", role=None, media="image/svg+xml", tag="transport security",
          summary="A hosted domain's BIMI logo (public: mailbox providers fetch it)")
def bimi_logo(cur, caller, domain):
    try:
        name = names.domain_name(domain, "domain")
    except ApiError:
        raise public.not_hosted() from None
    row = public.hosted_domain(cur, name)
    cur.execute("SELECT svg, sha256 FROM domain_bimi_logos WHERE domain_id = %s", (row["id"],))
    logo = cur.fetchone()
    if logo is None:
        raise _no_logo()
    resp = Response(bytes(logo["svg"]), status=200, mimetype="image/svg+xml")
    resp.headers["ETag"] = f'"{logo["sha256"]}"'
    resp.headers["Cache-Control"] = "public, max-age=3600"
    # served from our host: an SVG opened directly must not run anything
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
