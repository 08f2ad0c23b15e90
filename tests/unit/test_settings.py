"""The settings registry (connector/emboux_connector/settings.py) is the one
place the environment is read, and the README's table is generated from it."""

import pathlib
import re

import pytest

from emboux_connector import settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "connector" / "emboux_connector"


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", readme, re.S)
    assert table, "README.md lost its settings markers"
    assert table.group(1) == settings.markdown(), \
        "README.md's settings table is stale: paste `python -m emboux_connector.settings --markdown`"


def test_no_module_reads_the_environment_around_the_registry():
    # os.environ itself stays allowed where a whole environment is passed on
    # (subprocesses) or a test injects one; reading a variable by name is not
    reads = re.compile(r"os\.environ(\.get\(|\[)|os\.getenv\(|\benv\.get\(\"")
    allowed = {"settings.py"}
    offenders = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py") if p.name not in allowed
                 for n, line in enumerate(p.read_text().splitlines(), 1) if reads.search(line)]
    assert offenders == []


def test_every_name_read_is_registered():
    names = set()
    for p in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r"""settings\.(?:get|number|lenient|raw)\("([A-Z0-9_]+)\"""", p.read_text()))
        names |= set(re.findall(r"""registry\.(?:get|number)\("([A-Z0-9_]+)\"""", p.read_text()))
        names |= set(re.findall(r"""\benv\("([A-Z0-9_]+)\"""", p.read_text()))
        names |= set(re.findall(r"""_env\("([A-Z0-9_]+)\"""", p.read_text()))
    assert names, "the scan found no reads"
    assert sorted(names - set(settings.REGISTRY)) == []


def test_defaults_and_types():
    assert settings.get("EMBOUX_DB_POOL_MAX", {}) == 8
    assert settings.get("EMBOUX_DB_POOL_MAX", {"EMBOUX_DB_POOL_MAX": ""}) == 8     # empty = unset
    assert settings.number("EMBOUX_DB_POOL_MAX", {"EMBOUX_DB_POOL_MAX": "3"}) == 3
    assert settings.number("HOURLY_FRACTION", {"HOURLY_FRACTION": "0.5"}) == 0.5
    assert settings.raw("MAIL_HOSTNAME", {}) is None and settings.get("MAIL_HOSTNAME", {}) == "mail.emboux.test"
    assert settings.lenient("DKIM_KEY_BITS", {"DKIM_KEY_BITS": "lots"}) == 2048


def test_a_malformed_number_stops_start_up_naming_the_variable():
    with pytest.raises(SystemExit, match="EMBOUX_DB_POOL_MAX must be a number, got 'eight'"):
        settings.number("EMBOUX_DB_POOL_MAX", {"EMBOUX_DB_POOL_MAX": "eight"})


def test_an_unregistered_name_is_a_programming_error():
    with pytest.raises(KeyError):
        settings.get("NO_SUCH_SETTING", {})


def test_the_secret_settings_are_redacted_from_logs():
    from emboux_connector import logs
    assert set(logs.SECRET_SETTINGS) >= {"EMBOUX_API_KEY", "MAILGUN_API_KEY", "MAILGUN_WEBHOOK_SIGNING_KEY",
                                          "SES_SECRET_ACCESS_KEY", "MAILDB_PASSWORD"}
