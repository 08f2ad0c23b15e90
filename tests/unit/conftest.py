"""The fast tier: pure code, no service. Nothing here may reach the stack
(no `devenv`, `api` or DB fixture): `./dev test` runs this tier first, before
it starts anything, and stops at its first failure."""

import pytest


@pytest.fixture(autouse=True)
def _no_stack(request):
    for name in ("devenv", "api", "db", "make_tenant"):
        if name in request.fixturenames:
            pytest.fail(f"unit tests may not use the stack fixture {name!r}")
