"""BIMI logos (issue 14, seed 004): upload validated against SVG Tiny PS,
served at a public URL that the BIMI record dns-check proposes points at;
hostile SVGs refused with nothing stored; the other tenant sees nothing."""

import pytest
import requests

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'
LOGO = (f'<svg {SVG_NS} version="1.2" baseProfile="tiny-ps" viewBox="0 0 100 100">'
        '<title>Example Corp</title><rect width="100" height="100" fill="#1a73e8"/>'
        '<circle cx="50" cy="50" r="30" fill="#ffffff"/></svg>')
OTHER_LOGO = LOGO.replace("#1a73e8", "#e81a1a")


def _svg(inner, attrs='version="1.2" baseProfile="tiny-ps"', ns=SVG_NS):
    return f"<svg {ns} {attrs}><title>T</title>{inner}</svg>"


HOSTILE = {
    "script": _svg("<script>alert(1)</script>"),
    "handler": _svg('<rect width="1" height="1" onclick="alert(1)"/>'),
    "onload": _svg("", 'version="1.2" baseProfile="tiny-ps" onload="alert(1)"'),
    "external href": _svg('<use xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="https://evil.example/x.svg#a"/>'),
    "image": _svg('<image href="https://evil.example/p.png" width="1" height="1"/>'),
    "external url()": _svg('<rect width="1" height="1" fill="url(https://evil.example/x#g)"/>'),
    "foreignObject": _svg("<foreignObject><p/></foreignObject>"),
    "animation": _svg('<rect width="1" height="1"><animate attributeName="x" to="1"/></rect>'),
    "style sheet": _svg("<style>@import url(https://evil.example/c.css);</style>"),
    "billion laughs": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
                       '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                       + _svg("<desc>&c;</desc>")),
    "xxe": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + _svg("<desc>&x;</desc>")),
    "no baseProfile": _svg("", 'version="1.2"'),
    "wrong profile": _svg("", 'version="1.2" baseProfile="tiny"'),
    "no version": _svg("", 'baseProfile="tiny-ps"'),
    "x on root": _svg("", 'version="1.2" baseProfile="tiny-ps" x="0"'),
    "no title": f'<svg {SVG_NS} version="1.2" baseProfile="tiny-ps"><rect width="1" height="1"/></svg>',
    "not svg": '<html xmlns="http://www.w3.org/1999/xhtml"><title>x</title></html>',
    "no namespace": '<svg version="1.2" baseProfile="tiny-ps"><title>x</title></svg>',
    "malformed": "<svg",
    "oversized": _svg("<desc>" + "x" * 33000 + "</desc>"),
}


@pytest.fixture
def logo_url_get(devenv):
    def get(url):
        path = url.split("/", 3)[3]
        return requests.get(f"{devenv['EMBOUX_API_URL']}/{path}", timeout=15)
    return get


def test_upload_serve_and_dns_check(api, tenant, dns_zones, devenv, logo_url_get):
    domain = tenant.domain()
    r = tenant.put(f"/domains/{domain}/bimi", json={"svg": LOGO})
    assert r.status_code == 200, r.text
    info = r.json()
    web = devenv["MAIL_HOSTNAME"]   # PUBLIC_HOST defaults to it
    assert info["url"] == f"https://{web}/bimi/{domain}/logo.svg"
    assert info["record"] == {"type": "TXT", "name": f"default._bimi.{domain}", "value": f"v=BIMI1; l={info['url']}"}
    served = logo_url_get(info["url"])
    assert served.status_code == 200 and served.content == LOGO.encode()
    assert served.headers["Content-Type"].startswith("image/svg+xml")
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]
    assert tenant.get(f"/domains/{domain}/bimi").json()["sha256"] == info["sha256"]

    def bimi_entry():
        return next(e for e in api.get(f"/domains/{domain}/dns-check").json()["records"] if e["record"] == "BIMI")
    e = bimi_entry()
    assert e["expected"] == info["record"]["value"] and e["status"] == "missing"
    # published, but DMARC at p=none: BIMI is ignored until it enforces
    dns_zones.write(domain, [(f"default._bimi.{domain}.", "TXT", info["record"]["value"]),
                             (f"_dmarc.{domain}.", "TXT", "v=DMARC1; p=none")])
    e = bimi_entry()
    assert e["status"] == "wrong" and "enforcing" in e["fix"]
    # quarantine at pct=50 is not enough; reject is
    dns_zones.write(domain, [(f"default._bimi.{domain}.", "TXT", info["record"]["value"]),
                             (f"_dmarc.{domain}.", "TXT", "v=DMARC1; p=quarantine; pct=50")])
    assert bimi_entry()["status"] == "wrong"
    dns_zones.write(domain, [(f"default._bimi.{domain}.", "TXT", info["record"]["value"]),
                             (f"_dmarc.{domain}.", "TXT", "v=DMARC1; p=reject")])
    assert bimi_entry()["status"] == "ok"
    # a record pointing elsewhere than the uploaded logo
    dns_zones.write(domain, [(f"default._bimi.{domain}.", "TXT", "v=BIMI1; l=https://cdn.example/logo.svg"),
                             (f"_dmarc.{domain}.", "TXT", "v=DMARC1; p=reject")])
    e = bimi_entry()
    assert e["status"] == "wrong" and info["url"] in e["fix"]

    # replaced, then removed
    new = tenant.put(f"/domains/{domain}/bimi", json={"svg": OTHER_LOGO}).json()
    assert new["sha256"] != info["sha256"] and logo_url_get(info["url"]).content == OTHER_LOGO.encode()
    assert tenant.delete(f"/domains/{domain}/bimi").status_code == 204
    gone = logo_url_get(info["url"])
    assert gone.status_code == 404 and gone.json()["code"] == "bimi_logo_not_found"
    assert tenant.delete(f"/domains/{domain}/bimi").status_code == 404


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_svg_is_refused_and_nothing_stored(tenant, name, logo_url_get):
    domain = tenant.domain()
    assert tenant.put(f"/domains/{domain}/bimi", json={"svg": LOGO}).status_code == 200
    r = tenant.put(f"/domains/{domain}/bimi", json={"svg": HOSTILE[name]})
    assert r.status_code == 400, (name, r.text)
    assert r.json()["code"] in ("bimi_svg_invalid", "invalid_field"), r.text   # the oversized one: the field's bound
    assert r.json()["detail"].startswith("svg:")
    assert "root:" not in r.text
    info = tenant.get(f"/domains/{domain}/bimi").json()      # the previous logo, untouched
    assert logo_url_get(info["url"]).content == LOGO.encode()


def test_bad_bodies(tenant):
    domain = tenant.domain()
    for body in ({}, {"svg": 5}, {"svg": ["<svg/>"]}, {"svg": ""}):
        r = tenant.put(f"/domains/{domain}/bimi", json=body)
        assert r.status_code == 400, (body, r.text)
    assert tenant.get(f"/domains/{domain}/bimi").status_code == 404


def test_other_tenant_and_unhosted_domains(make_tenant, devenv, logo_url_get):
    owner, other = make_tenant(), make_tenant()
    domain = owner.domain()
    info = owner.put(f"/domains/{domain}/bimi", json={"svg": LOGO}).json()
    assert other.get(f"/domains/{domain}/bimi").status_code == 404
    assert other.put(f"/domains/{domain}/bimi", json={"svg": OTHER_LOGO}).status_code == 404
    assert other.delete(f"/domains/{domain}/bimi").status_code == 404
    assert logo_url_get(info["url"]).content == LOGO.encode()
    # a pending claim's logo is not served; nor a name we do not host, nor a malformed one
    pending = other.domain(prove=False)
    assert other.put(f"/domains/{pending}/bimi", json={"svg": LOGO}).status_code == 200
    base = devenv["EMBOUX_API_URL"]
    for name in (pending, "nothere.example", "-bad-.example"):
        r = requests.get(f"{base}/bimi/{name}/logo.svg", timeout=15)
        assert r.status_code == 404 and r.json()["code"] == "domain_not_hosted", name
