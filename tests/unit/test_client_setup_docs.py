"""Issue 14 without the stack: the SVG Tiny PS validator, the MTA-STS policy
id, the setup documents' values and the dns-check entries of setupdns.py
against a fake lookup."""

import plistlib

import pytest
from defusedxml import ElementTree as SafeET

from emboux_connector import bimi, clientsetup, mtasts, setupdns
from emboux_connector.errors import ApiError

LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 10 10">'
        '<title>Co</title><defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>'
        '</defs><rect width="10" height="10" fill="url(#g)"/></svg>')


@pytest.fixture
def deployment(monkeypatch):
    monkeypatch.setenv("MAIL_HOSTNAME", "mail.example.net")
    monkeypatch.setenv("IMAPS_PORT", "993")
    monkeypatch.setenv("SUBMISSIONS_PORT", "465")
    monkeypatch.setenv("SUBMISSION_PORT", "587")
    monkeypatch.delenv("MX_HOST", raising=False)
    monkeypatch.delenv("PUBLIC_HOST", raising=False)
    monkeypatch.delenv("TLSRPT_RUA", raising=False)


def test_a_tiny_ps_logo_with_internal_references_passes():
    assert bimi.validate(LOGO) == LOGO.encode()


@pytest.mark.parametrize("svg, why", [
    (LOGO.replace('fill="url(#g)"', 'fill="url(http://x.example/#g)"'), "refers outside"),
    (LOGO.replace("<title>Co</title>", ""), "<title>"),
    (LOGO.replace('baseProfile="tiny-ps"', 'baseProfile="full"'), "tiny-ps"),
    (LOGO.replace("<defs>", "<script>1</script><defs>"), "<script>"),
    ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY e "x">]>' + LOGO.replace("Co", "&e;"), "DTD"),
    (LOGO + "<!--" + "x" * 40000 + "-->", "32 KB"),
])
def test_bad_logos_say_why(svg, why):
    with pytest.raises(ApiError) as exc:
        bimi.validate(svg)
    assert exc.value.code == "bimi_svg_invalid" and why in exc.value.detail


def test_policy_id_follows_the_policy(deployment):
    a, b = mtasts.policy_text("testing", 604800), mtasts.policy_text("enforce", 604800)
    assert mtasts.policy_id(a) == mtasts.policy_id(mtasts.policy_text("testing", 604800))
    assert mtasts.policy_id(a) != mtasts.policy_id(b)
    assert mtasts.policy_id(a).isalnum() and len(mtasts.policy_id(a)) <= 32
    assert "mx: mail.example.net\r\n" in a


def test_documents_carry_the_settings(deployment, monkeypatch):
    monkeypatch.setenv("IMAPS_PORT", "2993")
    root = SafeET.fromstring(clientsetup.autoconfig_xml("example.com"))
    assert root.find("emailProvider/incomingServer/port").text == "2993"
    profile = plistlib.loads(clientsetup.mobileconfig("a@example.com", "example.com"))
    assert profile["PayloadContent"][0]["IncomingMailServerPortNumber"] == 2993
    assert clientsetup.srv_records("example.com")[0] == ("_imaps._tcp.example.com", "0 1 2993 mail.example.net")


def _run(checks, zone):
    def lk(name, rtype):
        return zone.get((name, rtype), [])
    return [fn(lk, *args) for fn, *args in checks]


def test_setup_entries_against_a_fake_zone(deployment):
    row = {"mode": "enforce", "max_age": 604800}
    want = mtasts.sts_record("example.com", mtasts.policy_text("enforce", 604800))["value"]
    zone = {("_imaps._tcp.example.com", "SRV"): ["10 5 993 mail.example.net."],
            ("autoconfig.example.com", "A"): ["192.0.2.1"], ("mail.example.net", "A"): ["192.0.2.1"],
            ("_mta-sts.example.com", "TXT"): [want],
            ("_smtp._tls.example.com", "TXT"): ["v=TLSRPTv1; rua=mailto:tls@example.com"]}
    by = {e["name"]: e for e in _run(setupdns.checks("example.com", row), zone)}
    assert by["_imaps._tcp.example.com"]["status"] == "ok"
    assert by["_submissions._tcp.example.com"]["status"] == "missing"
    assert by["autoconfig.example.com"]["status"] == "ok"           # same address as the web host
    assert by["autodiscover.example.com"]["status"] == "missing"
    assert by["mta-sts.example.com"]["status"] == "missing" and by["mta-sts.example.com"]["required"]
    assert by["_mta-sts.example.com"]["status"] == "ok"
    assert by["_smtp._tls.example.com"]["status"] == "ok"
    # without a mode nothing of MTA-STS is required
    by = {e["name"]: e for e in _run(setupdns.checks("example.com", None), {})}
    assert "mta-sts.example.com" not in by
    assert not by["_mta-sts.example.com"]["required"] and not by["_smtp._tls.example.com"]["required"]


@pytest.mark.parametrize("published, rate, stage, advice", [
    ("v=DMARC1; p=none", None, "1/3", "raise p= to quarantine"),
    ("v=DMARC1; p=none", 99.2, "1/3", "aligned pass 99.2 % >= 98 %: raise p= to quarantine"),
    ("v=DMARC1; p=quarantine", 91.0, "2/3", "aligned pass 91.0 % < 98 %"),
    ("v=DMARC1; p=quarantine", 98.0, "2/3", "raise p= to reject"),
    ("v=DMARC1; p=reject", 50.0, "3/3", None),
])
def test_dmarc_walks_none_quarantine_reject(published, rate, stage, advice):
    from emboux_connector import dnscheck
    e = dnscheck._dmarc_check(lambda name, rtype: [published] if name == "_dmarc.example.com" else [],
                              "example.com", None, rate)
    assert e["stage"] == stage
    assert (e["next_step"] is None) if advice is None else (advice in e["next_step"])
