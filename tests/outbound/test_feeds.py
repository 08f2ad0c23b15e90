"""The back office's incremental feeds (api/feeds.py, migration 0015):
outbound counters, the daily history and the suppression list, page by page,
from a cursor. What is checked: a change is answered once and a second pull
with nothing new answers nothing; pages cover every row exactly once; a
client token never sees another tenant's rows (its cursor or not); hostile
cursors and page sizes are refused with a 400 naming the field.

The stack is shared: other tests write counters at the same time, so the
"nothing new" checks read with a tenant's client token, whose scope only
this test writes to. A change becomes visible once every transaction of the
mail DB that started before it has ended: reads wait for it (wait_until),
they never assume a delay."""

import datetime as dt

import pytest

from emboux_connector.api import outbound as outbound_api
from outbound_helpers import closable, wait_until

reset_daily = outbound_api.reset_daily.__wrapped__


def pull(client, feed, cursor=None, limit=1000):
    """Every page from `cursor`: (entries, next cursor, pages)."""
    entries, pages = [], 0
    while True:
        params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = client.get(f"/{feed}", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["count"] == len(page["entries"]) <= limit
        entries += page["entries"]
        cursor, pages = page["next_cursor"], pages + 1
        if not page["more"]:
            return entries, cursor, pages


def pull_until(client, feed, cursor, ready):
    """Pull from `cursor` until the entries satisfy `ready` (a change shows
    once the transactions begun before it have ended); returns like pull."""
    got = []

    def attempt():
        nonlocal cursor
        entries, cursor, _ = pull(client, feed, cursor)
        got.extend(entries)
        return ready(got)

    assert wait_until(attempt, timeout=30), f"{feed}: never saw the change; got {got}"
    return got, cursor


def names(entries, key="name"):
    return [e[key] for e in entries]


def test_counters_feed_answers_a_change_once_and_only_the_callers_domains(api, make_tenant):
    a, b = make_tenant(), make_tenant()
    mine = {a.domain(prove=False), a.domain(prove=False)}
    theirs = b.domain(prove=False)
    got, cursor = pull_until(a, "outbound/feed/counters", None, lambda e: mine <= set(names(e)))
    assert set(names(got)) == mine, "a client sees its own domains' counters, nothing else"
    assert all(e["partner_ref"] == a.partner_ref for e in got)
    assert pull(a, "outbound/feed/counters", cursor)[0] == [], "nothing new: no entries"

    dom = sorted(mine)[0]
    r = api.post(f"/domains/{dom}/outbound/increment", json={"count": 3, "bytes": 1234})
    assert r.status_code == 200 and r.json()["allowed"], r.text
    got, cursor = pull_until(a, "outbound/feed/counters", cursor, lambda e: bool(e))
    assert names(got) == [dom]
    assert got[0]["outbound_sent_today"] == 3 and got[0]["outbound_sent_month"] == 3
    assert got[0]["outbound_bytes_month"] == 1234
    assert got[0]["bounce_rate"] == 0.0 and got[0]["outbound_status"] == "active"
    assert pull(a, "outbound/feed/counters", cursor)[0] == []

    # An operator's suspension is a change of the counters feed too.
    r = api.put(f"/domains/{dom}/outbound", json={"outbound_status": "suspended",
                                                  "outbound_status_reason": "feed test"})
    assert r.status_code == 200, r.text
    got, cursor = pull_until(a, "outbound/feed/counters", cursor, lambda e: bool(e))
    assert [(e["name"], e["outbound_status"], e["outbound_status_reason"]) for e in got] == \
        [(dom, "suspended", "feed test")]
    assert pull(a, "outbound/feed/counters", cursor)[0] == []

    # The other tenant, from the start or from the first tenant's cursor, sees only its own.
    assert names(pull_until(b, "outbound/feed/counters", None, lambda e: theirs in names(e))[0]) == [theirs]
    assert pull(b, "outbound/feed/counters", cursor)[0] == []


def test_a_leased_or_hourly_change_does_not_resend_counters(api, tenant, sql):
    """Only what the feed shows moves a row: the daemon's leases and hourly
    throttle churn on the hot path without re-sending it; a count does."""
    dom = tenant.domain(prove=False)
    where = "WHERE domain_id = (SELECT id FROM domains WHERE name = %s)"

    def stamp():
        return sql(f"SELECT feed_xid FROM outbound_counters {where}", (dom,))[0]["feed_xid"]

    before = stamp()
    sql(f"UPDATE outbound_counters SET reserved_units = reserved_units + 5, sent_hour = sent_hour + 1 {where}",
        (dom,))
    assert stamp() == before
    api.post(f"/domains/{dom}/outbound/increment", json={"count": 1})
    assert stamp() > before


def test_pages_cover_every_row_once(make_tenant):
    t = make_tenant()
    mine = {t.domain(prove=False) for _ in range(5)}
    everything, _ = pull_until(t, "outbound/feed/counters", None, lambda e: mine <= set(names(e)))
    entries, cursor, pages = pull(t, "outbound/feed/counters", limit=2)
    assert sorted(names(entries)) == sorted(mine) == sorted(names(everything))
    assert pages == 3, "5 rows in pages of 2: 2 + 2 + 1"
    assert pull(t, "outbound/feed/counters", cursor, limit=2) == ([], cursor, 1)


def test_history_feed_pages_closed_days_of_the_callers_domains(make_tenant, sql):
    a, b = make_tenant(), make_tenant()
    dom, other = a.domain(prove=False), b.domain(prove=False)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(3)]
    for d in (dom, other):
        for i, day in enumerate(days):
            sql("INSERT INTO outbound_history (domain_id, day, sent, bytes, overage, bounces, complaints) "
                "SELECT id, %s, %s, %s, 0, %s, 0 FROM domains WHERE name = %s", (day, 10 + i, 1000 * i, i, d))
    got, cursor = pull_until(a, "outbound/feed/history", None, lambda e: len(e) >= 3)
    assert [(e["domain"], e["day"], e["sent"], e["bytes"], e["bounces"]) for e in got] == \
        [(dom, day.isoformat(), 10 + i, 1000 * i, i) for i, day in enumerate(days)]
    assert pull(a, "outbound/feed/history", cursor)[0] == []
    entries, _, pages = pull(a, "outbound/feed/history", limit=1)
    assert len(entries) == 3 and pages == 3, "a page says `more` only when another row follows"
    assert {e["domain"] for e in pull_until(b, "outbound/feed/history", None, lambda e: len(e) >= 3)[0]} == {other}


def test_reset_daily_records_the_days_bytes_bounces_and_complaints(txn, tenant):
    """The monthly counters minus what they were at the previous close."""
    dom = tenant.domain(prove=False)
    day = closable(txn, "daily")
    txn.execute("UPDATE outbound_counters SET sent_today = 7, bytes_month = 5000, bytes_month_closed = 1200, "
                "bounce_count = 4, bounce_count_closed = 1, complaint_count = 2, complaint_count_closed = 2 "
                "WHERE domain_id = (SELECT id FROM domains WHERE name = %s)", (dom,))
    txn.execute("DELETE FROM outbound_history WHERE day = %s "
                "AND domain_id = (SELECT id FROM domains WHERE name = %s)", (day, dom))
    reset_daily(txn, None, {"day": day})
    txn.execute("SELECT h.sent, h.bytes, h.bounces, h.complaints, c.bytes_month_closed, c.bounce_count_closed, "
                "c.complaint_count_closed FROM outbound_history h JOIN domains d ON d.id = h.domain_id "
                "JOIN outbound_counters c ON c.domain_id = d.id WHERE d.name = %s AND h.day = %s", (dom, day))
    assert dict(txn.fetchone()) == {"sent": 7, "bytes": 3800, "bounces": 3, "complaints": 0,
                                    "bytes_month_closed": 5000, "bounce_count_closed": 4,
                                    "complaint_count_closed": 2}


def test_suppression_feed_adds_and_lifts_only_the_callers_entries(api, make_tenant, sql):
    a, b = make_tenant(), make_tenant()
    dom, other = a.domain(prove=False), b.domain(prove=False)
    mine, theirs = f"x{a.partner_ref}@example.org", f"y{b.partner_ref}@example.org"
    sql("INSERT INTO suppression (email, reason, source_domain, provider) VALUES "
        "(%s, 'bounce', %s, 'ses'), (%s, 'complaint', %s, 'mailgun')", (mine, dom, theirs, other))
    got, cursor = pull_until(a, "outbound/feed/suppression", None, lambda e: bool(e))
    assert [(e["email"], e["reason"], e["source_domain"], e["provider"], e["removed"]) for e in got] == \
        [(mine, "bounce", dom, "ses", False)]
    assert pull(a, "outbound/feed/suppression", cursor)[0] == []

    # a client cannot lift, even its own; the master can, and the lift is fed as removed
    assert a.delete(f"/suppression/{mine}").status_code == 403
    assert api.delete(f"/suppression/{mine}").status_code == 200
    got, cursor = pull_until(a, "outbound/feed/suppression", cursor, lambda e: bool(e))
    assert [(e["email"], e["removed"]) for e in got] == [(mine, True)]
    assert pull(a, "outbound/feed/suppression", cursor)[0] == []

    b_entries = pull_until(b, "outbound/feed/suppression", None, lambda e: bool(e))[0]
    assert [e["email"] for e in b_entries] == [theirs], "another tenant's entries are never shown"
    assert mine not in {e["email"] for e in pull(b, "outbound/feed/suppression")[0]}
    assert api.delete(f"/suppression/{theirs}").status_code == 200


@pytest.mark.parametrize("feed", ["outbound/feed/counters", "outbound/feed/history", "outbound/feed/suppression"])
@pytest.mark.parametrize("params,code", [
    ({"cursor": "garbage"}, "invalid_cursor"),
    ({"cursor": "counters.1.2"}, "invalid_cursor"),
    ({"cursor": "1.2.3.4"}, "invalid_cursor"),
    ({"cursor": "history.99999999999999999999.1.1"}, "invalid_cursor"),
    ({"cursor": "history.1.-5.1"}, "invalid_cursor"),
    ({"cursor": "history.1.1.99999999"}, "invalid_cursor"),
    ({"cursor": "history.1.1.1'; DROP TABLE domains; --"}, "invalid_cursor"),
    ({"cursor": "x" * 500}, "invalid_field"),
    ({"limit": "0"}, "invalid_field"),
    ({"limit": "5001"}, "invalid_field"),
    ({"limit": "999999999999999999999"}, "invalid_field"),
    ({"limit": "ten"}, "invalid_field"),
])
def test_hostile_cursors_and_page_sizes_are_refused(tenant, feed, params, code):
    r = tenant.get(f"/{feed}", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == code, body
    assert body["detail"].split(":")[0] in ("cursor", "limit"), body


def test_another_feeds_cursor_is_refused_and_a_future_one_answers_nothing(tenant):
    _, cursor, _ = pull(tenant, "outbound/feed/counters")
    r = tenant.get("/outbound/feed/suppression", params={"cursor": cursor})
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor", r.text
    far = "counters.999999999999999999.0.0"
    r = tenant.get("/outbound/feed/counters", params={"cursor": far})
    assert r.status_code == 200 and r.json()["entries"] == [] and r.json()["next_cursor"] == far


def test_feeds_need_a_valid_token(api):
    for feed in ("outbound/feed/counters", "outbound/feed/history", "outbound/feed/suppression"):
        r = api.get(f"/{feed}", token="not-a-token")
        assert r.status_code == 403 and r.json()["code"] == "auth_invalid_key", r.text
