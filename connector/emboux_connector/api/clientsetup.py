"""Mail-client setup, public and token-less, for hosted domains only:
Thunderbird autoconfig, Outlook autodiscover (POX and the v2 JSON), and an
Apple `.mobileconfig`. The documents come from clientsetup.py; which domain a
request is about from public.py (404 `domain_not_hosted` for any other).
See docs/mail-clients.md."""

from flask import Blueprint, Response, request

from .. import clientsetup, public, schemas
from ..fields import StrictString
from ..routing import endpoint

bp = Blueprint("clientsetup", __name__)

XML = "application/xml"
MOBILECONFIG = "application/x-apple-aspen-config"


class AutoconfigQuery(schemas.Body):
    emailaddress = StrictString(max_length=600, metadata={
        "description": "the address being set up (Thunderbird sends it); without it, the domain is the "
                       "request's host (`autoconfig.<domain>` or `<domain>`)"})


class AutodiscoverJsonQuery(schemas.Body):
    Email = StrictString(max_length=600, metadata={"description": "the address being set up"})
    Protocol = StrictString(max_length=64, metadata={"description": "AutodiscoverV1 (the only one offered)"})


class MobileconfigQuery(schemas.Body):
    emailaddress = StrictString(required=True, max_length=600, metadata={"description": "the address"})


def _document(body, media, filename=None):
    resp = Response(body, status=200, mimetype=media)
    if filename:
        resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    # public but per-domain: caches may keep it a while, never a stale week
    resp.headers["Cache-Control"] = "public, max-age=3600"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _autoconfig(cur, query, prefix):
    if query.get("emailaddress"):
        _email, domain = public.address_domain(query["emailaddress"], "emailaddress")
    else:
        domain = public.host_domain(prefix)
        if domain is None:
            raise public.not_hosted()
    row = public.hosted_domain(cur, domain)
    return _document(clientsetup.autoconfig_xml(row["name"]), XML)


@endpoint(bp, "/.well-known/autoconfig/mail/config-v1.1.xml", "GET", role=None, query=AutoconfigQuery,
          media=XML, errors=(404,), tag="mail-client setup",
          summary="Thunderbird autoconfig (served at https://<domain>/.well-known/...): IMAPS and "
                  "submission settings of a hosted domain")
def autoconfig_well_known(cur, caller, query):
    return _autoconfig(cur, query, None)


@endpoint(bp, "/mail/config-v1.1.xml", "GET", role=None, query=AutoconfigQuery,
          media=XML, errors=(404,), tag="mail-client setup",
          summary="Thunderbird autoconfig, host form (https://autoconfig.<domain>/mail/config-v1.1.xml)")
def autoconfig_host(cur, caller, query):
    return _autoconfig(cur, query, "autoconfig")


POX_BODY = {"required": True, "content": {"text/xml": {"schema": {"type": "string"}},
                                          "application/xml": {"schema": {"type": "string"}}}}


def _autodiscover_pox(cur):
    """Outlook's POX request (MS-OXDSCLI): the address in Request/EMailAddress.
    Parsed with defusedxml: a DTD, entities or external references are
    refused (400 `xml_forbidden`), more than 16 KB is 413."""
    email, domain = public.address_domain(clientsetup.pox_request_address(request.get_data(cache=True)),
                                          "EMailAddress")
    public.hosted_domain(cur, domain)
    return _document(clientsetup.autodiscover_xml(email), XML)


POX_SUMMARY = "Outlook autodiscover (POX): IMAP and SMTP settings of an address of a hosted domain"


@endpoint(bp, "/autodiscover/autodiscover.xml", "POST", role=None, media=XML, errors=(400, 404, 413),
          request_body=POX_BODY, tag="mail-client setup", summary=POX_SUMMARY)
def autodiscover_pox(cur, caller):
    return _autodiscover_pox(cur)


@endpoint(bp, "/Autodiscover/Autodiscover.xml", "POST", role=None, media=XML, errors=(400, 404, 413),
          request_body=POX_BODY, tag="mail-client setup", summary=POX_SUMMARY + " (Outlook's spelling)")
def autodiscover_pox_capitalised(cur, caller):
    return _autodiscover_pox(cur)


def _autodiscover_v2(cur, email_value, protocol):
    _email, domain = public.address_domain(email_value or "", "Email")
    row = public.hosted_domain(cur, domain)
    return clientsetup.autodiscover_json(row["name"], protocol)


@endpoint(bp, "/autodiscover/autodiscover.json", "GET", role=None, query=AutodiscoverJsonQuery,
          errors=(404,), tag="mail-client setup",
          summary="Autodiscover v2: where this domain's POX autodiscover is (Protocol=AutodiscoverV1)")
def autodiscover_json(cur, caller, query):
    return _autodiscover_v2(cur, query.get("Email"), query.get("Protocol"))


@endpoint(bp, "/autodiscover/autodiscover.json/v1.0/<email>", "GET", role=None, query=AutodiscoverJsonQuery,
          tag="mail-client setup",
          summary="Autodiscover v2, path form (what Outlook asks first)")
def autodiscover_json_path(cur, caller, email, query):
    return _autodiscover_v2(cur, email, query.get("Protocol"))


@endpoint(bp, "/mail-setup/apple.mobileconfig", "GET", role=None, query=MobileconfigQuery,
          media=MOBILECONFIG, errors=(404,), tag="mail-client setup",
          summary="Apple configuration profile (.mobileconfig) for an address of a hosted domain")
def apple_mobileconfig(cur, caller, query):
    """Unsigned, without the password (the device asks for it)."""
    email, domain = public.address_domain(query["emailaddress"], "emailaddress")
    row = public.hosted_domain(cur, domain)
    return _document(clientsetup.mobileconfig(email, row["name"]), MOBILECONFIG,
                     filename=f"{row['name']}.mobileconfig")
