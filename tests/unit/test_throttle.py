"""The failed-authentication throttle's own rules (throttle.py): its settings,
whose address it counts, and the 429 it answers once an address is over."""

import pytest
from flask import Flask

from emboux_connector.errors import ApiError
from emboux_connector.throttle import Throttle


def test_a_malformed_limit_names_its_setting():
    with pytest.raises(ValueError, match="AUTH_FAILURE_LIMIT"):
        Throttle.from_env({"AUTH_FAILURE_LIMIT": "lots per fortnight"})


@pytest.mark.parametrize("remote,xff,proxies,expected", [
    ("10.0.0.5", "6.6.6.6", "", "10.0.0.5"),                      # not believed by default
    ("10.0.0.5", "6.6.6.6", "10.0.0.9", "10.0.0.5"),              # not from a trusted proxy
    ("10.0.0.9", "6.6.6.6, 7.7.7.7", "10.0.0.9", "7.7.7.7"),      # the proxy's hop, not the client's claim
    ("10.0.0.9", "", "10.0.0.9", "10.0.0.9"),
])
def test_the_address_counted(remote, xff, proxies, expected):
    t = Throttle.from_env({"API_TRUSTED_PROXIES": proxies})
    with Flask(__name__).test_request_context(environ_base={"REMOTE_ADDR": remote},
                                              headers={"X-Forwarded-For": xff} if xff else {}):
        assert t.client_address() == expected


def test_only_failures_count_and_the_refusal_says_when_to_retry():
    t = Throttle.from_env({"AUTH_FAILURE_LIMIT": "3/minute"})
    for _ in range(100):
        t.check("192.0.2.1")          # checking counts nothing
    for _ in range(3):
        t.failed("192.0.2.1")
    with pytest.raises(ApiError) as exc:
        t.check("192.0.2.1")
    err = exc.value
    assert (err.status, err.code) == (429, "rate_limited")
    assert 1 <= int(err.headers["Retry-After"]) <= 60
    t.check("192.0.2.2")              # another address is not affected


def test_an_unreachable_store_counts_in_the_workers_memory(caplog):
    # nothing listens on port 1: every call to the store fails at once
    t = Throttle.from_env({"AUTH_FAILURE_LIMIT": "3/minute",
                           "AUTH_LIMIT_STORAGE": "redis://127.0.0.1:1/0?socket_connect_timeout=1"})
    t.check("192.0.2.1")              # no 500: served, counted nowhere yet
    for _ in range(3):
        t.failed("192.0.2.1")
    with pytest.raises(ApiError) as exc:
        t.check("192.0.2.1")          # ... and the guesses were still counted
    assert exc.value.status == 429
    t.check("192.0.2.2")
    warnings = [r for r in caplog.records if "AUTH_LIMIT_STORAGE unreachable" in r.getMessage()]
    assert len(warnings) == 1, caplog.records   # once per outage, not once per request
