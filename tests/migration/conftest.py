"""Fixtures of the migration tests (seed 002's REST and JSON APIs)."""

import pytest

DOMAIN = "example.com"


@pytest.fixture
def seed_domain(api, tenant):
    """example.com, the seed's domain, vouched by the operator for the tenant
    (the seed's examples name it); gone again afterwards. (Tests elsewhere
    only send from @example.com addresses, which a hosted example.com does
    not refuse on port 25, so the few seconds it is hosted change nothing.)"""
    api.delete(f"/domains/{DOMAIN}")   # a run that was interrupted
    r = api.post("/domains/", json={"name": DOMAIN, "partner_ref": tenant.partner_ref})
    assert r.status_code == 201, r.text
    yield DOMAIN
    api.delete(f"/domains/{DOMAIN}")
