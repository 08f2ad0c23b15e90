"""RSPAMD_MAP_CLIENTS (connector/emboux_connector/api/spam.py): who may read
Rspamd's settings map and report outbound spam -- addresses, networks, and
host names resolved at each request (the docker/ deployment names its
`rspamd` service, whose address changes at each start). No services."""

import pytest
from flask import Flask

from emboux_connector.api import spam
from emboux_connector.errors import ApiError


def check(monkeypatch, allowed, remote):
    monkeypatch.setenv("RSPAMD_MAP_CLIENTS", allowed)
    with Flask(__name__).test_request_context(environ_base={"REMOTE_ADDR": remote}):
        spam._map_caller_ok()


@pytest.mark.parametrize("allowed,remote", [
    ("127.0.0.1", "127.0.0.1"), ("10.0.0.0/8, 192.0.2.7", "192.0.2.7"), ("localhost", "127.0.0.1"),
    ("no-such-host.invalid localhost", "127.0.0.1"), ("127.0.0.1", "::ffff:127.0.0.1"),
])
def test_listed_callers_are_served(monkeypatch, allowed, remote):
    check(monkeypatch, allowed, remote)


@pytest.mark.parametrize("allowed,remote", [
    ("127.0.0.1", "127.0.0.2"), ("localhost", "192.0.2.1"), ("no-such-host.invalid", "127.0.0.1"),
    # not a host name: never handed to the resolver
    ("-x", "127.0.0.1"), ("a_b", "127.0.0.1"), ("localhost", "not an address"),
])
def test_anyone_else_is_refused(monkeypatch, allowed, remote):
    with pytest.raises(ApiError) as e:
        check(monkeypatch, allowed, remote)
    assert e.value.status == 403 and e.value.code == "forbidden"


def test_unset_is_not_configured(monkeypatch):
    with pytest.raises(ApiError) as e:
        check(monkeypatch, "", "127.0.0.1")
    assert e.value.status == 404 and e.value.code == "rspamd_map_not_configured"
