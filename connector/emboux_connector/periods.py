"""Which day or month a reset job may close (POST /outbound/reset-daily,
/outbound/reset-monthly). Pure functions of the request, the last period
already closed and today's UTC date, so that the rules are tested without a
calendar to wait for (tests/unit/test_periods.py).

A reset stores the counters as they are now under the period it names, so
the name must be the period they belong to:
- never a period that is not over (today, this month, the future): the
  counters of a running period would be billed under it, or under a month
  that has not happened;
- months in order, none skipped: the month after the last frozen one
  (any closed month when none was frozen yet). The default, what Odoo's cron
  sends, is that month when it is closed, else last month (already frozen:
  the call answers `already_done`), so a cron that missed a month catches up
  instead of being refused forever;
- days in order, gaps allowed: a day after the last closed one. A day the
  cron missed gets no history row; refusing the next day instead would stop
  the daily reset altogether and leave every domain at its daily cap.
A period already closed is answered `already_done` (idempotence), before
the order is checked.
"""

import datetime as dt

from .errors import ApiError


def month_start(day):
    return day.replace(day=1)


def next_month(month):
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def previous_month(month):
    return (month - dt.timedelta(days=1)).replace(day=1)


def parse_day(value, field="day"):
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{field}: expected YYYY-MM-DD", code="invalid_field") from None


def parse_month(value, field="month"):
    try:
        y, m = value.split("-")
        if len(y) != 4 or len(m) != 2:
            raise ValueError(value)
        return dt.date(int(y), int(m), 1)
    except (AttributeError, ValueError):
        raise ApiError(400, f"{field}: expected YYYY-MM", code="invalid_field") from None


def _fmt_month(month):
    return month.strftime("%Y-%m")


def default_month(last_frozen, today):
    """The month the monthly job freezes when none is named."""
    last_month = previous_month(month_start(today))
    if last_frozen is not None and next_month(last_frozen) < last_month:
        return next_month(last_frozen)
    return last_month


def check_month_closed(month, today):
    if month >= month_start(today):
        raise ApiError(400, f"month: {_fmt_month(month)} is not over yet (the last closed month is "
                            f"{_fmt_month(previous_month(month_start(today)))})", code="period_not_closed")


def check_month_order(month, last_frozen):
    """`month` is not frozen yet: it must be the one after `last_frozen`."""
    if last_frozen is not None and month != next_month(last_frozen):
        raise ApiError(400, f"month: the next month to freeze is {_fmt_month(next_month(last_frozen))} "
                            f"(the last frozen one is {_fmt_month(last_frozen)}), not {_fmt_month(month)}",
                       code="period_not_next")


def default_day(today):
    return today - dt.timedelta(days=1)


def check_day_closed(day, today):
    if day >= today:
        raise ApiError(400, f"day: {day.isoformat()} is not over yet (UTC; the last closed day is "
                            f"{default_day(today).isoformat()})", code="period_not_closed")


def check_day_order(day, last_closed):
    """`day` is not closed yet: it must come after `last_closed`."""
    if last_closed is not None and day < last_closed:
        raise ApiError(400, f"day: {day.isoformat()} is before the last closed day, "
                            f"{last_closed.isoformat()}", code="period_not_next")
