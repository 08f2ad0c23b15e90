"""Mail-client setup documents: what a mail client is told to connect to.

One source of truth, `servers()`: the deployment's host name (MAIL_HOSTNAME,
the name its TLS certificate carries) and the ports mail clients reach
(IMAPS_PORT, SUBMISSIONS_PORT, SUBMISSION_PORT). From it come Thunderbird's
autoconfig XML, Outlook's autodiscover (POX) XML, Apple's `.mobileconfig`,
and the SRV records `dns-check` proposes (RFC 6186, RFC 8314).

The login is always the full address (Dovecot and Postfix SASL look the
mailbox up by it). Nothing here says whether a mailbox exists: the documents
are the same for every address of a hosted domain.
"""

import plistlib
import uuid
import xml.etree.ElementTree as ET  # building only; requests are parsed with defusedxml

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from . import settings
from .errors import ApiError

# Outlook's POX autodiscover namespaces (MS-OXDSCLI)
POX_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
POX_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
POX_OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
POX_MAX_BYTES = 16 * 1024   # a real request is a few hundred bytes
# a stable namespace for the .mobileconfig payload UUIDs: the same address
# always gets the same profile (installing it again replaces, not duplicates)
PROFILE_NS = uuid.UUID("6f1c7a52-4d0e-4f51-9a55-2b51e3f0c1d4")


def mail_host():
    return settings.get("MAIL_HOSTNAME").rstrip(".")


def public_host():
    return (settings.get("PUBLIC_HOST") or mail_host()).rstrip(".")


def servers():
    """The three services a mail client uses, as (kind, host, port, security)."""
    host = mail_host()
    return {
        "imap": {"host": host, "port": settings.lenient("IMAPS_PORT"), "socket": "SSL"},
        "submissions": {"host": host, "port": settings.lenient("SUBMISSIONS_PORT"), "socket": "SSL"},
        "submission": {"host": host, "port": settings.lenient("SUBMISSION_PORT"), "socket": "STARTTLS"},
    }


def srv_records(domain):
    """RFC 6186 / RFC 8314 SRV records: (name, priority weight port target)."""
    s = servers()
    return [(f"_imaps._tcp.{domain}", f"0 1 {s['imap']['port']} {s['imap']['host']}"),
            (f"_submissions._tcp.{domain}", f"0 1 {s['submissions']['port']} {s['submissions']['host']}"),
            (f"_submission._tcp.{domain}", f"0 1 {s['submission']['port']} {s['submission']['host']}")]


def _sub(parent, tag, text=None, **attrs):
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = str(text)
    return el


def autoconfig_xml(domain):
    """Thunderbird's config-v1.1.xml (the ISP autoconfig format): IMAPS, then
    submission with implicit TLS first and STARTTLS second (the client tries
    outgoing servers in order)."""
    s = servers()
    root = ET.Element("clientConfig", version="1.1")
    prov = _sub(root, "emailProvider", id=domain)
    _sub(prov, "domain", domain)
    _sub(prov, "displayName", f"{domain} mail")
    _sub(prov, "displayShortName", domain)
    imap = _sub(prov, "incomingServer", type="imap")
    for tag, value in (("hostname", s["imap"]["host"]), ("port", s["imap"]["port"]),
                       ("socketType", "SSL"), ("authentication", "password-cleartext"),
                       ("username", "%EMAILADDRESS%")):
        _sub(imap, tag, value)
    for kind in ("submissions", "submission"):
        out = _sub(prov, "outgoingServer", type="smtp")
        for tag, value in (("hostname", s[kind]["host"]), ("port", s[kind]["port"]),
                           ("socketType", s[kind]["socket"]), ("authentication", "password-cleartext"),
                           ("username", "%EMAILADDRESS%")):
            _sub(out, tag, value)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def pox_request_address(raw):
    """The EMailAddress of an Outlook POX autodiscover request, parsed safely:
    no DTD, no entities, no external references, bounded size."""
    if len(raw) > POX_MAX_BYTES:
        raise ApiError(413, f"autodiscover request larger than {POX_MAX_BYTES} bytes", code="body_too_large")
    if not raw.strip():
        raise ApiError(400, "body: an autodiscover request (XML) is required", code="xml_malformed")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ApiError(400, "body: XML with a DTD, entities or external references is refused",
                       code="xml_forbidden") from None
    except (SafeET.ParseError, ValueError, RecursionError):
        raise ApiError(400, "body: malformed XML", code="xml_malformed") from None
    found = root.find(f"{{{POX_REQUEST_NS}}}Request/{{{POX_REQUEST_NS}}}EMailAddress")
    if root.tag != f"{{{POX_REQUEST_NS}}}Autodiscover" or found is None or not (found.text or "").strip():
        raise ApiError(400, "body: an Autodiscover request with Request/EMailAddress is required",
                       code="autodiscover_request_invalid")
    return found.text.strip()


def autodiscover_xml(email):
    """Outlook's POX answer (responseschema 2006a): IMAP over SSL, SMTP over
    SSL (465); Outlook's Encryption=SSL means implicit TLS."""
    s = servers()
    root = ET.Element("Autodiscover", xmlns=POX_RESPONSE_NS)
    resp = _sub(root, "Response", xmlns=POX_OUTLOOK_NS)
    _sub(_sub(resp, "User"), "DisplayName", email)
    acct = _sub(resp, "Account")
    _sub(acct, "AccountType", "email")
    _sub(acct, "Action", "settings")
    for kind, ptype in (("imap", "IMAP"), ("submissions", "SMTP")):
        proto = _sub(acct, "Protocol")
        for tag, value in (("Type", ptype), ("Server", s[kind]["host"]), ("Port", s[kind]["port"]),
                           ("DomainRequired", "off"), ("LoginName", email), ("SPA", "off"),
                           ("Encryption", "SSL"), ("AuthRequired", "on")):
            _sub(proto, tag, value)
        if ptype == "SMTP":
            _sub(proto, "UsePOPAuth", "off")
            _sub(proto, "SMTPLast", "off")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def autodiscover_json(domain, protocol):
    """Autodiscover v2: where the v1 (POX) service of this domain is."""
    if (protocol or "").lower() != "autodiscoverv1":
        raise ApiError(400, "Protocol: only AutodiscoverV1 is offered (IMAP and SMTP settings)",
                       code="autodiscover_protocol_unsupported")
    return {"Protocol": "AutodiscoverV1",
            "Url": f"https://autodiscover.{domain}/autodiscover/autodiscover.xml"}


def mobileconfig(email, domain):
    """An Apple configuration profile (com.apple.mail.managed), unsigned: the
    password is not in it, the device asks for it when installing."""
    s = servers()
    account = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"emboux.mail.{domain}.{uuid.uuid5(PROFILE_NS, 'account:' + email)}",
        "PayloadUUID": str(uuid.uuid5(PROFILE_NS, "account:" + email)).upper(),
        "PayloadDisplayName": f"{email} (IMAP)",
        "EmailAccountDescription": email,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": email,
        "IncomingMailServerHostName": s["imap"]["host"],
        "IncomingMailServerPortNumber": s["imap"]["port"],
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerUsername": email,
        "OutgoingMailServerHostName": s["submissions"]["host"],
        "OutgoingMailServerPortNumber": s["submissions"]["port"],
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerUsername": email,
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"emboux.mail.{domain}",
        "PayloadUUID": str(uuid.uuid5(PROFILE_NS, "profile:" + email)).upper(),
        "PayloadDisplayName": f"Mail: {email}",
        "PayloadDescription": f"IMAP and SMTP settings of {email}",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [account],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
