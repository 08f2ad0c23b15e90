"""Fixtures of the forwarding tests: an alias on port 25 whose destinations
leave EmBoux, end to end through the real Postfix, emboux-policyd, postsrsd
and the outbound SMTP sink of the dev stack (what leaves is captured there).
Helpers in forwarding_helpers.py."""

import pytest

from forwarding_helpers import Forwarder, Port25, Sink


@pytest.fixture(scope="session")
def port25(devenv):
    if not devenv.get("SMTP_PORT") or not devenv.get("POLICYD_PORT"):
        pytest.fail("the mail stack or the policy daemon is not up (./dev up)")
    return Port25(devenv)


@pytest.fixture(scope="session")
def sink(devenv):
    if not devenv.get("OUTBOUND_SINK_DIR"):
        pytest.fail("the outbound SMTP sink is not up (./dev up)")
    return Sink(devenv["OUTBOUND_SINK_DIR"])


@pytest.fixture
def fwd(api, tenant):
    return Forwarder(api, tenant)


@pytest.fixture
def suppress(sql):
    """suppress(email, reason='bounce'): on the suppression list for this test."""
    added = []

    def add(email, reason="bounce"):
        sql("INSERT INTO suppression (email, reason, source_domain, provider) VALUES (%s, %s, NULL, 'ses')",
            (email, reason))
        added.append(email)
    yield add
    for email in added:
        sql("DELETE FROM suppression WHERE email = %s", (email,))
