"""Which names nobody may host (connector/emboux_connector/ownership.py),
without services: the platform's names come from the environment."""

import pytest

from emboux_connector import ownership
from emboux_connector.errors import ApiError


@pytest.fixture
def platform(monkeypatch):
    monkeypatch.setenv("MAIL_HOSTNAME", "mx1.mail.example-host.net")
    monkeypatch.setenv("MX_HOST", "mx.example-host.net")
    monkeypatch.setenv("EMBOUX_RESERVED_DOMAINS", "Platform.example, other-brand.test.")


def code(name, is_master):
    try:
        ownership.refuse_unownable(name, is_master)
    except ApiError as exc:
        return exc.status, exc.code
    return None


def test_platform_names_from_the_environment(platform):
    hosts, listed, derived = ownership.platform_names()
    assert hosts == {"mx1.mail.example-host.net", "mx.example-host.net"}
    assert listed == {"platform.example", "other-brand.test"}
    assert derived == {"example-host.net"}


@pytest.mark.parametrize("name, client, master", [
    ("mx1.mail.example-host.net", "domain_reserved", "domain_reserved"),   # a host name: nobody
    ("mx.example-host.net", "domain_reserved", "domain_reserved"),
    ("platform.example", "domain_reserved", "domain_reserved"),            # listed: nobody
    ("shop.platform.example", "domain_reserved", None),                    # below it: the operator only
    ("example-host.net", "domain_reserved", None),                         # MAIL_HOSTNAME's domain
    ("x.mx.example-host.net", "domain_reserved", None),
    ("example-host.org", None, None),
    ("notplatform.example", None, None),                                    # a suffix match is not a subdomain
    ("co.uk", "domain_public_suffix", "domain_public_suffix"),
    ("s3.amazonaws.com", "domain_public_suffix", "domain_public_suffix"),
])
def test_who_may_create_what(platform, name, client, master):
    assert (code(name, False) or (None, None))[1] == client
    assert (code(name, True) or (None, None))[1] == master


def test_no_platform_names_configured(monkeypatch):
    for key in ("MAIL_HOSTNAME", "MX_HOST", "EMBOUX_RESERVED_DOMAINS"):
        monkeypatch.delenv(key, raising=False)
    assert ownership.platform_names() == (set(), set(), set())
    assert code("example.org", False) is None


def test_record_and_tokens():
    a, b = ownership.new_token(), ownership.new_token()
    assert a != b and len(a) >= 32
    assert ownership.record("example.org", a) == {
        "type": "TXT", "name": "_emboux-verification.example.org", "value": f"emboux-verify={a}"}
    assert ownership.record("example.org", None) is None
