"""The connector's and the Odoo module's name rules mirror each other: one
table of cases, checked against both, so they cannot drift apart."""

import importlib.util
import pathlib

import pytest

from emboux_connector import names as connector_names
from emboux_connector.errors import ApiError

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "odoo_names", ROOT / "addons" / "emboux_core" / "services" / "names.py")
odoo_names = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(odoo_names)

# (input, normalised form or None when refused)
DOMAINS = [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("example.com.", "example.com"),
    ("  mail.example.org ", "mail.example.org"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("a-b.example", "a-b.example"),
    ("localhost", None),
    ("", None),
    ("   ", None),
    ("-bad.com", None),
    ("bad-.com", None),
    ("exa mple.com", None),
    ("exa_mple.com", None),
    ("example..com", None),
    ("1.2.3.4", None),
    ("example.123", None),
    ("a" * 64 + ".com", None),
    (".".join(["abcdefghi"] * 26) + ".com", None),   # 264 characters
    ("ex@mple.com", None),
]
LOCALS = [
    ("info", "info"),
    ("First.Last", "first.last"),
    ("a+tag", "a+tag"),
    ("under_score-dash", "under_score-dash"),
    ("", None),
    (".lead", None),
    ("trail.", None),
    ("dou..ble", None),
    ("sp ace", None),
    ("quo\"te", None),
    ("percent%hack", None),
    ("bang!path", None),
    ("a" * 64, "a" * 64),
    ("a" * 65, None),
]
ADDRESSES = [
    ("Info@Example.com", "info@example.com"),
    ("info@bücher.de", "info@xn--bcher-kva.de"),
    ("no-at-sign", None),
    ("two@@example.com", None),
    ("a@b@example.com", None),
    ("@example.com", None),
    ("info@", None),
]


def _connector(fn, value):
    try:
        return fn(value)
    except ApiError as exc:
        assert exc.status == 400 and exc.code == "invalid_field", exc.detail
        return None


def _odoo(fn, value):
    try:
        return fn(value)
    except odoo_names.NameError_ as exc:
        assert str(exc), "a refusal says why"
        return None


@pytest.mark.parametrize("value,expected", DOMAINS)
def test_domain_names(value, expected):
    assert _connector(connector_names.domain_name, value) == expected
    assert _odoo(odoo_names.domain_name, value) == expected


@pytest.mark.parametrize("value,expected", LOCALS)
def test_local_parts(value, expected):
    assert _connector(connector_names.local_part, value) == expected
    assert _odoo(odoo_names.local_part, value) == expected


@pytest.mark.parametrize("value,expected", ADDRESSES)
def test_addresses(value, expected):
    got = _connector(connector_names.address, value)
    assert (got[0] if got else None) == expected
    assert _odoo(odoo_names.address, value) == expected


def test_catch_all_source():
    assert connector_names.alias_source("@Example.com") == ("@example.com", "example.com")
    assert connector_names.alias_source("Sales@Example.com") == ("sales@example.com", "example.com")
    assert _connector(connector_names.alias_source, "@") is None
