"""Mail-client setup documents (issue 14): public, token-less, hosted domains
only; Outlook's POX request parsed safely. The end-to-end lookup and login
is tests/mail/test_client_discovery.py."""

import plistlib
import uuid

import pytest
import requests
from defusedxml import ElementTree as SafeET

REQ_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
OUT_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def pox(email):
    return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{REQ_NS}"><Request>'
            f"<EMailAddress>{email}</EMailAddress><AcceptableResponseSchema>"
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
            "</AcceptableResponseSchema></Request></Autodiscover>")


@pytest.fixture
def public(devenv):
    """Token-less requests, as a mail client makes them."""
    base = devenv["EMBOUX_API_URL"].rstrip("/")

    def call(method, path, **kw):
        kw.setdefault("timeout", 15)
        return requests.request(method, base + path, **kw)
    return call


def _stranger():
    return f"d{uuid.uuid4().hex[:10]}.emboux-test.net"


def test_autoconfig_names_the_deployment_hosts_and_ports(public, tenant, devenv):
    domain = tenant.domain()
    r = public("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", params={"emailaddress": f"x@{domain}"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    prov = SafeET.fromstring(r.content).find("emailProvider")
    inc = prov.find("incomingServer")
    assert (inc.get("type"), inc.findtext("hostname"), inc.findtext("port"), inc.findtext("socketType")) == \
        ("imap", devenv["MAIL_HOSTNAME"], devenv["IMAPS_PORT"], "SSL")
    outs = [(o.findtext("port"), o.findtext("socketType")) for o in prov.findall("outgoingServer")]
    assert outs == [(devenv["SUBMISSIONS_PORT"], "SSL"), (devenv["SUBMISSION_PORT"], "STARTTLS")]
    # the host form, without the address: the domain comes from the Host header
    r2 = public("GET", "/mail/config-v1.1.xml", headers={"Host": f"autoconfig.{domain}"})
    assert r2.status_code == 200 and r2.content == r.content
    # an address of the domain with no mailbox gets the same document (no enumeration)
    r3 = public("GET", "/mail/config-v1.1.xml", params={"emailaddress": f"nobody@{domain}"})
    assert r3.content == r.content


def test_setup_documents_are_404_for_a_domain_not_hosted_or_pending(public, tenant):
    pending = tenant.domain(prove=False)
    for domain in (_stranger(), pending):
        email = f"a@{domain}"
        answers = [
            public("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", params={"emailaddress": email}),
            public("GET", "/mail/config-v1.1.xml", headers={"Host": f"autoconfig.{domain}"}),
            public("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", headers={"Host": domain}),
            public("POST", "/autodiscover/autodiscover.xml", data=pox(email), headers={"Content-Type": "text/xml"}),
            public("GET", "/autodiscover/autodiscover.json", params={"Email": email, "Protocol": "AutodiscoverV1"}),
            public("GET", f"/autodiscover/autodiscover.json/v1.0/{email}", params={"Protocol": "AutodiscoverV1"}),
            public("GET", "/mail-setup/apple.mobileconfig", params={"emailaddress": email}),
        ]
        for r in answers:
            assert r.status_code == 404, (r.url, r.text)
            assert r.json()["code"] == "domain_not_hosted"
    # a Host that is no domain at all
    r = public("GET", "/mail/config-v1.1.xml", headers={"Host": "autoconfig.[::1]"})
    assert r.status_code in (400, 404)


def test_autoconfig_refuses_a_malformed_address(public):
    for bad in ("no-at-sign", "a@b@c.example", "x" * 700 + "@example.com", "a@-bad-.example"):
        r = public("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", params={"emailaddress": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["code"] in ("invalid_field",)


def test_outlook_pox_autodiscover(public, tenant, devenv):
    domain = tenant.domain()
    email = f"alice@{domain}"
    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"):
        r = public("POST", path, data=pox(email), headers={"Content-Type": "text/xml"})
        assert r.status_code == 200, r.text
        acct = SafeET.fromstring(r.content).find(f"{OUT_NS}Response/{OUT_NS}Account")
        protos = {p.findtext(f"{OUT_NS}Type"): p for p in acct.findall(f"{OUT_NS}Protocol")}
        assert protos["IMAP"].findtext(f"{OUT_NS}Server") == devenv["MAIL_HOSTNAME"]
        assert protos["IMAP"].findtext(f"{OUT_NS}Port") == devenv["IMAPS_PORT"]
        assert protos["IMAP"].findtext(f"{OUT_NS}LoginName") == email
        assert protos["SMTP"].findtext(f"{OUT_NS}Port") == devenv["SUBMISSIONS_PORT"]
        assert protos["SMTP"].findtext(f"{OUT_NS}Encryption") == "SSL"


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                  f'<Autodiscover xmlns="{REQ_NS}"><Request><EMailAddress>&lol3;</EMailAddress></Request>'
                  "</Autodiscover>")
XXE = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       f'<Autodiscover xmlns="{REQ_NS}"><Request><EMailAddress>&xxe;</EMailAddress></Request></Autodiscover>')


@pytest.mark.parametrize("body, status, code", [
    (BILLION_LAUGHS, 400, "xml_forbidden"),
    (XXE, 400, "xml_forbidden"),
    ('<!DOCTYPE a SYSTEM "http://127.0.0.1:1/x.dtd"><a/>', 400, "xml_forbidden"),
    ("<Autodiscover><Request>", 400, "xml_malformed"),
    ("", 400, "xml_malformed"),
    ("\xff\xfe garbage", 400, "xml_malformed"),
    ('<Other xmlns="urn:x"><Request><EMailAddress>a@b.example</EMailAddress></Request></Other>', 400,
     "autodiscover_request_invalid"),
    (pox("not an address"), 400, "invalid_field"),
    (pox("a@example.com") + " " * 20000, 413, "body_too_large"),
])
def test_outlook_pox_refuses_hostile_xml(public, body, status, code):
    r = public("POST", "/autodiscover/autodiscover.xml", data=body.encode("utf-8", "surrogateescape"),
               headers={"Content-Type": "text/xml"})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert "root:" not in r.text


def test_autodiscover_v2_json_points_at_the_pox_service(public, tenant):
    domain = tenant.domain()
    want = {"Protocol": "AutodiscoverV1", "Url": f"https://autodiscover.{domain}/autodiscover/autodiscover.xml"}
    r = public("GET", "/autodiscover/autodiscover.json", params={"Email": f"a@{domain}", "Protocol": "AutodiscoverV1"})
    assert r.status_code == 200 and r.json() == want
    r = public("GET", f"/autodiscover/autodiscover.json/v1.0/a@{domain}", params={"Protocol": "autodiscoverv1"})
    assert r.status_code == 200 and r.json() == want
    r = public("GET", f"/autodiscover/autodiscover.json/v1.0/a@{domain}", params={"Protocol": "Ews"})
    assert r.status_code == 400 and r.json()["code"] == "autodiscover_protocol_unsupported"


def test_apple_profile(public, tenant, devenv):
    domain = tenant.domain()
    r = public("GET", "/mail-setup/apple.mobileconfig", params={"emailaddress": f"Bob@{domain}"})
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == f'attachment; filename="{domain}.mobileconfig"'
    acct = plistlib.loads(r.content)["PayloadContent"][0]
    assert acct["EmailAddress"] == f"bob@{domain}"
    assert (acct["IncomingMailServerHostName"], acct["IncomingMailServerPortNumber"]) == \
        (devenv["MAIL_HOSTNAME"], int(devenv["IMAPS_PORT"]))
    assert acct["OutgoingMailServerPortNumber"] == int(devenv["SUBMISSIONS_PORT"])
    assert "IncomingPassword" not in acct          # never a password in the profile
    # the same address gets the same profile (installing again replaces it)
    again = plistlib.loads(public("GET", "/mail-setup/apple.mobileconfig",
                                  params={"emailaddress": f"bob@{domain}"}).content)
    assert again["PayloadUUID"] == plistlib.loads(r.content)["PayloadUUID"]
    assert public("GET", "/mail-setup/apple.mobileconfig").status_code == 400
