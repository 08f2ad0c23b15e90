# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""How usage is shown in the back office: "used / allowed", where a quota of
0 means unlimited and says so. No Odoo import (tests/unit/test_usage.py)."""


def _num(value):
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value)}"
    return f"{value}"


def used_of(used, allowed, unlimited="Unlimited", unit="", per=""):
    """'2 / 5', '2 / Unlimited', '120.5 / 1024 MB', '3 / 5 per domain'.
    `unlimited` is the (translated) word for a quota of 0."""
    suffix = f" {unit}" if unit else ""
    if not allowed:
        return f"{_num(used or 0)}{suffix} / {unlimited}"
    per = f" {per}" if per else ""
    return f"{_num(used or 0)} / {_num(allowed)}{suffix}{per}"
