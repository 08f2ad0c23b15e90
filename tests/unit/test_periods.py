"""Which day or month a reset job may close (connector/emboux_connector/periods.py):
over, in order, the default catching up a missed month."""

import datetime as dt

import pytest

from emboux_connector import periods
from emboux_connector.errors import ApiError

TODAY = dt.date(2026, 3, 15)
D = dt.date


def code(fn, *args):
    with pytest.raises(ApiError) as exc:
        fn(*args)
    assert exc.value.status == 400
    return exc.value.code


@pytest.mark.parametrize("month", [D(2026, 3, 1), D(2026, 4, 1), D(2100, 1, 1)])
def test_a_month_not_over_is_refused(month):
    assert code(periods.check_month_closed, month, TODAY) == "period_not_closed"


@pytest.mark.parametrize("month", [D(2026, 2, 1), D(2025, 12, 1), D(2001, 1, 1)])
def test_a_month_over_may_be_frozen(month):
    periods.check_month_closed(month, TODAY)


def test_months_in_order_none_skipped():
    periods.check_month_order(D(2026, 1, 1), None)                 # the first freeze: any closed month
    periods.check_month_order(D(2026, 1, 1), D(2025, 12, 1))       # across a year
    for month in (D(2026, 2, 1), D(2025, 11, 1), D(2025, 12, 1)):  # skipping, going back
        assert code(periods.check_month_order, month, D(2025, 12, 1)) == "period_not_next"


@pytest.mark.parametrize("last,expected", [
    (None, D(2026, 2, 1)),                # nothing frozen: last month
    (D(2026, 1, 1), D(2026, 2, 1)),       # in step
    (D(2026, 2, 1), D(2026, 2, 1)),       # last month already frozen: answered already_done
    (D(2025, 11, 1), D(2025, 12, 1)),     # the cron missed months: it catches up, one a call
])
def test_default_month(last, expected):
    assert periods.default_month(last, TODAY) == expected


@pytest.mark.parametrize("day", [TODAY, TODAY + dt.timedelta(days=1), D(2100, 1, 1)])
def test_a_day_not_over_is_refused(day):
    assert code(periods.check_day_closed, day, TODAY) == "period_not_closed"


def test_days_in_order_gaps_allowed():
    periods.check_day_closed(D(2026, 3, 14), TODAY)
    periods.check_day_order(D(2026, 3, 14), None)
    periods.check_day_order(D(2026, 3, 14), D(2026, 3, 10))        # a missed day never blocks the reset
    assert code(periods.check_day_order, D(2026, 3, 9), D(2026, 3, 10)) == "period_not_next"
    assert periods.default_day(TODAY) == D(2026, 3, 14)


@pytest.mark.parametrize("value", ["2026-1", "2026-13", "26-01", "2026-01-01", "yesterday", "", "0000-01"])
def test_bad_months(value):
    assert code(periods.parse_month, value) == "invalid_field"


@pytest.mark.parametrize("value", ["2026-02-30", "yesterday", "", "2026-1-1"])
def test_bad_days(value):
    assert code(periods.parse_day, value) == "invalid_field"
