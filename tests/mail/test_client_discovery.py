"""Mail-client setup end to end (issue 14): a client discovers the settings the
way Thunderbird does, then logs in over IMAPS and submits over 465 with
exactly what it discovered; Apple's profile likewise.

No maintained Python library performs Thunderbird's lookup (PyPI has autoconfig
*servers*, not clients), so `thunderbird_lookup` below follows Thunderbird's
documented order (wiki.mozilla.org/Thunderbird:Autoconfiguration,
"Mechanisms"): 1. https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=,
2. https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=,
3. the same over http, 4. the ISPDB (not reachable from the test stack:
skipped), 5. the MX host's domain, 1-3 again. Host names are resolved
through the stack's DNS server (NSD); a name that resolves to this machine is
served by the connector (the HTTPS proxy in front of it in production is
not part of the dev stack: the test speaks HTTP to the connector with the
Host header the client would send). The mail host the document names is
checked by TLS itself: the connection is verified against that name.
"""

import imaplib
import plistlib
import smtplib
import ssl
import uuid

import dns.resolver
import pytest
import requests
from defusedxml import ElementTree as SafeET

PASSWORD = "correct horse 1"


class ThunderbirdLookup:
    def __init__(self, devenv):
        host, _, port = devenv["DNS_RESOLVER"].rpartition(":")
        self.res = dns.resolver.Resolver(configure=False)
        self.res.nameservers, self.res.port = [host], int(port)
        self.res.lifetime = 3
        self.connector = devenv["EMBOUX_API_URL"].rstrip("/")
        self.tried = []

    def _resolves_here(self, host):
        try:
            return "127.0.0.1" in [r.to_text() for r in self.res.resolve(host, "A")]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
            return False

    def _fetch(self, scheme, host, path, email):
        url = f"{scheme}://{host}{path}"
        self.tried.append(url)
        if not self._resolves_here(host):
            return None
        r = requests.get(self.connector + path, params={"emailaddress": email}, headers={"Host": host},
                         timeout=10)
        if r.status_code != 200 or "xml" not in r.headers.get("Content-Type", ""):
            return None
        return url, r.content

    def _domain_candidates(self, domain, email):
        for scheme in ("https", "http"):
            yield scheme, f"autoconfig.{domain}", "/mail/config-v1.1.xml"
            yield scheme, domain, "/.well-known/autoconfig/mail/config-v1.1.xml"

    def lookup(self, email):
        """(url it came from, parsed settings) or (None, None)."""
        domain = email.split("@", 1)[1]
        domains = [domain]
        try:
            mx = sorted(self.res.resolve(domain, "MX"), key=lambda r: r.preference)
            mx_domain = mx[0].exchange.to_text().rstrip(".").split(".", 1)[1] if mx else None
            if mx_domain and mx_domain != domain:
                domains.append(mx_domain)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
            pass
        for d in domains:
            for scheme, host, path in self._domain_candidates(d, email):
                got = self._fetch(scheme, host, path, email)
                if got:
                    return got[0], self._parse(got[1], email)
        return None, None

    @staticmethod
    def _parse(xml, email):
        """What Thunderbird takes: the first IMAP incoming server and the first
        outgoing server, placeholders replaced."""
        local, domain = email.split("@", 1)

        def server(el):
            out = {c.tag: (c.text or "") for c in el}
            out["username"] = (out.get("username", "").replace("%EMAILADDRESS%", email)
                               .replace("%EMAILLOCALPART%", local).replace("%EMAILDOMAIN%", domain))
            out["port"] = int(out["port"])
            return out
        root = SafeET.fromstring(xml)
        prov = root.find("emailProvider")
        assert domain in [d.text for d in prov.findall("domain")]
        incoming = next(s for s in prov.findall("incomingServer") if s.get("type") == "imap")
        return {"incoming": server(incoming), "outgoing": server(prov.find("outgoingServer"))}


@pytest.fixture
def lookup(devenv):
    return ThunderbirdLookup(devenv)


def _tls(devenv):
    return ssl.create_default_context(cafile=devenv["MAIL_TLS_CERT"])


def _imaps_login(devenv, host, port, user):
    """IMAPS to the discovered host:port; the stack's host names resolve to
    IMAP_HOST here, and the certificate is verified for the discovered name."""
    ctx = _tls(devenv)
    imap_ip = devenv.get("IMAP_HOST") or "127.0.0.1"

    class Imap(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            sock = imaplib.IMAP4._create_socket(self, timeout)
            return self.ssl_context.wrap_socket(sock, server_hostname=host)
    m = Imap(imap_ip, port, ssl_context=ctx, timeout=30)
    return m


def _smtps(devenv, host, port):
    ip = devenv.get("SMTP_HOST") or "127.0.0.1"

    class Smtps(smtplib.SMTP_SSL):
        def _get_socket(self, _host, port, timeout):
            sock = smtplib.socket.create_connection((ip, port), timeout)
            return self.context.wrap_socket(sock, server_hostname=host)
    return Smtps(host, port, context=_tls(devenv), timeout=30)


def _use_settings(devenv, mail, settings, alice, bob):
    inc, out = settings["incoming"], settings["outgoing"]
    assert inc["socketType"] == "SSL" and out["socketType"] == "SSL"
    m = _imaps_login(devenv, inc["hostname"], inc["port"], inc["username"])
    assert m.login(inc["username"], PASSWORD)[0] == "OK"
    m.logout()
    subject = f"autoconfig-{uuid.uuid4().hex[:10]}"
    with _smtps(devenv, out["hostname"], out["port"]) as s:
        s.login(out["username"], PASSWORD)
        assert not s.sendmail(alice, [bob], f"From: {alice}\r\nTo: {bob}\r\nSubject: {subject}\r\n\r\nhi\r\n")
    mail.wait_for(bob, PASSWORD, subject)


def test_thunderbird_lookup_finds_autoconfig_host_then_logs_in_and_submits(mail, tenant, dns_zones, lookup,
                                                                           devenv):
    domain = tenant.domain()
    alice, bob = tenant.mailbox(domain, "alice"), tenant.mailbox(domain, "bob")
    dns_zones.write(domain, [("autoconfig", "A", "127.0.0.1"), ("@", "MX", f"10 {devenv['MAIL_HOSTNAME']}.")])
    url, settings = lookup.lookup(alice)
    assert url == f"https://autoconfig.{domain}/mail/config-v1.1.xml"
    # the deployment's real names and ports, from its settings
    assert settings["incoming"]["hostname"] == devenv["MAIL_HOSTNAME"]
    assert settings["incoming"]["port"] == int(devenv["IMAPS_PORT"])
    assert settings["outgoing"]["port"] == int(devenv["SUBMISSIONS_PORT"])
    assert settings["incoming"]["username"] == alice
    _use_settings(devenv, mail, settings, alice, bob)


def test_thunderbird_lookup_falls_back_to_the_well_known_url(mail, tenant, dns_zones, lookup, devenv):
    domain = tenant.domain()
    alice, bob = tenant.mailbox(domain, "alice"), tenant.mailbox(domain, "bob")
    dns_zones.write(domain, [("@", "A", "127.0.0.1")])   # no autoconfig.<domain>
    url, settings = lookup.lookup(alice)
    assert lookup.tried[0] == f"https://autoconfig.{domain}/mail/config-v1.1.xml"
    assert url == f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"
    _use_settings(devenv, mail, settings, alice, bob)


def test_thunderbird_lookup_of_a_domain_not_hosted_finds_nothing(tenant, dns_zones, lookup):
    stranger = f"d{uuid.uuid4().hex[:10]}.emboux-test.net"
    # DNS points at us, but we do not host it: every candidate answers 404
    dns_zones.write(stranger, [("autoconfig", "A", "127.0.0.1"), ("@", "A", "127.0.0.1")])
    assert lookup.lookup(f"someone@{stranger}") == (None, None)
    assert len(lookup.tried) == 4
    # claimed but not proven: the same
    pending = tenant.domain(prove=False)
    dns_zones.write(pending, [("autoconfig", "A", "127.0.0.1")])
    assert lookup.lookup(f"someone@{pending}") == (None, None)


def test_apple_profile_settings_log_in_and_submit(mail, tenant, api, devenv):
    domain = tenant.domain()
    alice, bob = tenant.mailbox(domain, "alice"), tenant.mailbox(domain, "bob")
    r = requests.get(devenv["EMBOUX_API_URL"] + "/mail-setup/apple.mobileconfig", params={"emailaddress": alice},
                     timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/x-apple-aspen-config")
    profile = plistlib.loads(r.content)
    acct = profile["PayloadContent"][0]
    assert acct["PayloadType"] == "com.apple.mail.managed" and acct["EmailAddress"] == alice
    settings = {
        "incoming": {"hostname": acct["IncomingMailServerHostName"], "port": acct["IncomingMailServerPortNumber"],
                     "socketType": "SSL" if acct["IncomingMailServerUseSSL"] else "plain",
                     "username": acct["IncomingMailServerUsername"]},
        "outgoing": {"hostname": acct["OutgoingMailServerHostName"], "port": acct["OutgoingMailServerPortNumber"],
                     "socketType": "SSL" if acct["OutgoingMailServerUseSSL"] else "plain",
                     "username": acct["OutgoingMailServerUsername"]},
    }
    _use_settings(devenv, mail, settings, alice, bob)


def test_outlook_autodiscover_settings_log_in_and_submit(mail, tenant, devenv):
    """Outlook's POX exchange: the request it posts, the Protocol entries it reads."""
    ns_req = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
    ns = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    domain = tenant.domain()
    alice, bob = tenant.mailbox(domain, "alice"), tenant.mailbox(domain, "bob")
    body = (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{ns_req}"><Request>'
            f"<EMailAddress>{alice}</EMailAddress><AcceptableResponseSchema>{ns[1:-1]}</AcceptableResponseSchema>"
            "</Request></Autodiscover>")
    r = requests.post(devenv["EMBOUX_API_URL"] + "/autodiscover/autodiscover.xml", data=body,
                      headers={"Content-Type": "text/xml", "Host": f"autodiscover.{domain}"}, timeout=10)
    assert r.status_code == 200, r.text
    account = SafeET.fromstring(r.content).find(f"{ns}Response/{ns}Account")
    assert account.findtext(f"{ns}Action") == "settings"
    protocols = {p.findtext(f"{ns}Type"): p for p in account.findall(f"{ns}Protocol")}

    def server(p):
        return {"hostname": p.findtext(f"{ns}Server"), "port": int(p.findtext(f"{ns}Port")),
                "socketType": "SSL" if p.findtext(f"{ns}Encryption") == "SSL" else "plain",
                "username": p.findtext(f"{ns}LoginName")}
    _use_settings(devenv, mail, {"incoming": server(protocols["IMAP"]), "outgoing": server(protocols["SMTP"])},
                  alice, bob)
