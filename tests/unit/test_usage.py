"""Usage as the back office shows it (addons/emboux_core/services/usage.py):
used / allowed, a quota of 0 reads Unlimited."""

import pytest
from odoo_services import load

usage = load("usage")


@pytest.mark.parametrize("args,kw,text", [
    ((2, 5), {}, "2 / 5"),
    ((2, 0), {}, "2 / Unlimited"),
    ((0, 0), {"unlimited": "Illimité"}, "0 / Illimité"),
    ((120.5, 1024), {"unit": "MB"}, "120.5 / 1024 MB"),
    ((12.0, 0), {"unit": "MB"}, "12 MB / Unlimited"),
    ((0.04, 10), {"unit": "MB"}, "0 / 10 MB"),
    ((None, 3), {}, "0 / 3"),
    ((7, 5), {"per": "per domain"}, "7 / 5 per domain"),
    ((7, 0), {"per": "per domain"}, "7 / Unlimited"),
])
def test_used_of(args, kw, text):
    assert usage.used_of(*args, **kw) == text
