"""The daily and monthly reset jobs close only periods that are over, in
order (connector/emboux_connector/periods.py; the rules themselves in
tests/unit/test_periods.py).

A reset closes a period for every domain of the platform, and the calendar
cannot be wound forward: a test cannot freeze month after month over HTTP on
the shared stack. So the refusals (which write nothing) and the idempotent
repeat go over HTTP, and the successful resets in order run the endpoint's
own code on the real mail DB inside a transaction that is rolled back: the
test states which periods were closed before, and nothing it does stays."""

import datetime as dt

import pytest

from emboux_connector import periods
from emboux_connector.api import outbound as outbound_api
from emboux_connector.errors import ApiError

reset_daily = outbound_api.reset_daily.__wrapped__
reset_monthly = outbound_api.reset_monthly.__wrapped__


def utc_today():
    return dt.datetime.now(dt.UTC).date()


def month(d):
    return d.strftime("%Y-%m")


def refused(fn, cur, body):
    with pytest.raises(ApiError) as exc:
        fn(cur, None, body)
    assert exc.value.status == 400, exc.value.detail
    return exc.value.code


@pytest.mark.parametrize("path,field,value,code", [
    ("reset-monthly", "month", "current", "period_not_closed"),
    ("reset-monthly", "month", "2100-01", "period_not_closed"),
    ("reset-monthly", "month", "2026-1", "invalid_field"),
    ("reset-monthly", "month", "yesterday", "invalid_field"),
    ("reset-daily", "day", "today", "period_not_closed"),
    ("reset-daily", "day", "2100-01-02", "period_not_closed"),
    ("reset-daily", "day", "yesterday", "invalid_field"),
])
def test_a_period_not_over_is_refused_and_nothing_written(api, sql, path, field, value, code):
    today = utc_today()
    value = {"current": month(today), "today": today.isoformat()}.get(value, value)
    before = sql("SELECT count(*) AS n FROM outbound_resets")[0]["n"]
    r = api.post(f"/outbound/{path}", json={field: value})
    assert r.status_code == 400 and r.json()["code"] == code, r.text
    assert r.json()["detail"].startswith(f"{field}: ")
    assert sql("SELECT count(*) AS n FROM outbound_resets")[0]["n"] == before


def test_resets_are_master_only_and_repeat_harmlessly(api, tenant):
    """What Odoo's crons send (no period): a second call is `already_done`."""
    for path, field in (("reset-daily", "day"), ("reset-monthly", "month")):
        assert tenant.post(f"/outbound/{path}").status_code == 403
        first = api.post(f"/outbound/{path}")
        assert first.status_code == 200, first.text
        again = api.post(f"/outbound/{path}")
        assert again.status_code == 200 and again.json()["already_done"] is True, again.text
        assert again.json()[field] == first.json()[field]
        named = api.post(f"/outbound/{path}", json={field: first.json()[field]})
        assert named.status_code == 200 and named.json()["already_done"] is True, named.text


def test_months_freeze_in_order_for_billing_once(outbound, api, txn):
    outbound.set(warmup_profile=None, outbound_daily_limit=2, outbound_enforcement="soft")
    path = f"/domains/{outbound.domain}/outbound/increment"
    for _ in range(3):
        assert api.post(path, json={"bytes": 1000}).status_code == 200
    last_month = periods.previous_month(periods.month_start(utc_today()))
    m2 = periods.previous_month(last_month)
    m3 = periods.previous_month(m2)
    m4 = periods.previous_month(m3)
    cur = txn
    cur.execute("DELETE FROM outbound_resets WHERE kind = 'monthly'")
    cur.execute("INSERT INTO outbound_resets (kind, period, domains) VALUES ('monthly', %s, 0)", (m4,))

    assert refused(reset_monthly, cur, {"month": month(m2)}) == "period_not_next"    # m3 skipped
    assert refused(reset_monthly, cur, {"month": month(m4 - dt.timedelta(days=1))}) == "period_not_next"
    r = reset_monthly(cur, None, {"month": month(m3)})
    assert (r["month"], r["already_done"]) == (month(m3), False) and r["domains"] > 0
    cur.execute("SELECT sent, overage, bytes FROM outbound_billing WHERE domain_name = %s AND month = %s",
                (outbound.domain, m3))
    assert cur.fetchall() == [{"sent": 3, "overage": 1, "bytes": 3000}]
    cur.execute("SELECT c.sent_month, c.overage_month, c.bytes_month FROM outbound_counters c "
                "JOIN domains d ON d.id = c.domain_id WHERE d.name = %s", (outbound.domain,))
    assert cur.fetchone() == {"sent_month": 0, "overage_month": 0, "bytes_month": 0}
    # the same month again: nothing changes
    cur.execute("UPDATE outbound_counters c SET sent_month = 1 FROM domains d "
                "WHERE d.id = c.domain_id AND d.name = %s", (outbound.domain,))
    assert reset_monthly(cur, None, {"month": month(m3)})["already_done"] is True
    cur.execute("SELECT c.sent_month FROM outbound_counters c JOIN domains d ON d.id = c.domain_id "
                "WHERE d.name = %s", (outbound.domain,))
    assert cur.fetchone()["sent_month"] == 1
    # the default (Odoo's cron) catches up one month a call, then repeats harmlessly
    r = reset_monthly(cur, None, {})
    assert (r["month"], r["already_done"]) == (month(m2), False)
    assert reset_monthly(cur, None, {})["month"] == month(last_month)
    again = reset_monthly(cur, None, {})
    assert again["month"] == month(last_month) and again["already_done"] is True
    assert refused(reset_monthly, cur, {"month": month(utc_today())}) == "period_not_closed"


def test_days_close_in_order_feed_history_and_warm_up(outbound, api, txn):
    outbound.set(warmup_profile=None)
    path = f"/domains/{outbound.domain}/outbound/increment"
    for _ in range(2):
        assert api.post(path).json()["allowed"]
    today = utc_today()
    day = lambda n: (today - dt.timedelta(days=n)).isoformat()   # noqa: E731 (n days ago)
    cur = txn
    cur.execute("DELETE FROM outbound_resets WHERE kind = 'daily'")
    cur.execute("INSERT INTO outbound_resets (kind, period, domains) VALUES ('daily', %s, 0)", (day(5),))

    for bad in (day(0), day(-1)):
        assert refused(reset_daily, cur, {"day": bad}) == "period_not_closed"
    assert refused(reset_daily, cur, {"day": day(6)}) == "period_not_next"
    assert reset_daily(cur, None, {"day": day(5)})["already_done"] is True
    r = reset_daily(cur, None, {"day": day(3)})                 # day 4 was missed: allowed
    assert r["already_done"] is False and r["day"] == day(3)
    cur.execute("SELECT h.day::text, h.sent, c.sent_today, c.warmup_day FROM outbound_history h "
                "JOIN outbound_counters c ON c.domain_id = h.domain_id JOIN domains d ON d.id = h.domain_id "
                "WHERE d.name = %s", (outbound.domain,))
    assert cur.fetchall() == [{"day": day(3), "sent": 2, "sent_today": 0, "warmup_day": 1}]
    assert refused(reset_daily, cur, {"day": day(4)}) == "period_not_next"
    assert reset_daily(cur, None, {})["day"] == day(1)
    again = reset_daily(cur, None, {})
    assert (again["day"], again["already_done"]) == (day(1), True)


def _doveadm(devenv, *args, stdin=None):
    import subprocess
    return subprocess.run([devenv.get("DOVEADM") or "doveadm", "-c", devenv["DOVECOT_CONFIG"], *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=True).stdout


def test_freeze_records_mailboxes_and_measured_storage(outbound, api, txn, make_tenant, devenv):
    """Billing from the platform's counters (migration 0014): each frozen row
    holds the domain's mailboxes and the bytes Dovecot accounts for them; a
    domain whose mailboxes Dovecot does not serve (suspended) is 'not
    measured' (null), never a wrong 0. Another tenant cannot read billing."""
    message = "From: a@example.org\nTo: x@example.org\nSubject: stored\n\n" + "x" * 20000 + "\n"
    _doveadm(devenv, "save", "-u", outbound.alice, stdin=message)
    used = [ln.split("\t") for ln in _doveadm(devenv, "-f", "tab", "quota", "get", "-u", outbound.alice).splitlines()]
    stored = next(int(c[2]) for c in used[1:] if c[1] == "STORAGE") * 1024
    assert stored > 20000
    other = make_tenant()
    held = other.domain()
    other.mailbox(held, "kept")
    assert api.put(f"/domains/{held}/suspend").status_code == 200
    empty = other.domain()

    m3 = periods.previous_month(periods.previous_month(periods.previous_month(periods.month_start(utc_today()))))
    cur = txn
    cur.execute("DELETE FROM outbound_resets WHERE kind = 'monthly'")
    cur.execute("INSERT INTO outbound_resets (kind, period, domains) VALUES ('monthly', %s, 0)",
                (periods.previous_month(m3),))
    assert reset_monthly(cur, None, {"month": month(m3)})["already_done"] is False
    cur.execute("SELECT domain_name, mailboxes, storage_bytes FROM outbound_billing "
                "WHERE month = %s AND domain_name = ANY(%s) ORDER BY domain_name", (m3, [outbound.domain, held, empty]))
    rows = {r["domain_name"]: (r["mailboxes"], r["storage_bytes"]) for r in cur.fetchall()}
    assert rows == {outbound.domain: (2, stored), held: (1, None), empty: (0, 0)}, rows

    # the frozen month over HTTP is the master's: another tenant gets a 403, and no counters
    for who in (other, outbound.tenant):
        r = who.get("/outbound/billing?month=" + month(periods.previous_month(periods.month_start(utc_today()))))
        assert r.status_code == 403 and "entries" not in r.json(), r.text
    r = api.get("/outbound/billing?month=" + month(periods.previous_month(periods.month_start(utc_today()))))
    assert r.status_code == 200 and all("mailboxes" in e and "storage_bytes" in e for e in r.json()["entries"])
