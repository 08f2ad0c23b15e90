"""End-to-end tests of inbound protection (issue 17, docs/inbound.md): the
real Postfix with the real Rspamd as its milter, Dovecot with Pigeonhole
Sieve, the test DNS zones on the dev stack's NSD.

Senders are outside domains published in NSD for the test (SPF, DKIM,
DMARC); mail comes in on the MX port from 127.0.0.1, which each sender's
SPF record lists (or, for a forger, does not).
"""

import pytest

from inbound_helpers import Inbound, Sender


@pytest.fixture(scope="session")
def inbound(devenv):
    for key in ("SMTP_PORT", "IMAP_PORT", "RSPAMD_NORMAL_PORT", "RSPAMD_CONTROLLER_PORT", "RSPAMD_REDIS_PORT",
                "DNS_RESOLVER"):
        if not devenv.get(key):
            pytest.fail(f"{key} missing in var/dev.env: the mail stack with Rspamd is not up (./dev up)")
    return Inbound(devenv)


@pytest.fixture
def make_sender(dns_zones):
    return lambda **kw: Sender(dns_zones, **kw)


@pytest.fixture
def mailbox(tenant):
    domain = tenant.domain()
    return tenant.mailbox(domain)
