"""`GET /outbound/billing?month=` says whether the month is frozen, so that
a biller (Odoo's emboux_saas) bills a closed month and only a closed month,
even when no domain had counters that month. Master only: a client token
(another tenant's side) learns nothing."""

import datetime as dt


def test_frozen_flag_follows_the_monthly_resets(api, maildb):
    with maildb.cursor() as cur:
        cur.execute("SELECT to_char(max(period), 'YYYY-MM') FROM outbound_resets WHERE kind = 'monthly' "
                    "AND period <= date_trunc('month', now())::date")
        frozen = cur.fetchone()[0]
    current = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    r = api.get(f"/outbound/billing?month={current}")
    assert r.status_code == 200, r.text
    assert r.json()["frozen"] is False  # the current month is never closed
    if frozen:
        r = api.get(f"/outbound/billing?month={frozen}")
        assert r.status_code == 200 and r.json()["frozen"] is True, r.text
    assert "frozen" not in api.get("/outbound/billing").json()  # no month: all records, no flag


def test_billing_is_master_only(tenant):
    r = tenant.get("/outbound/billing?month=2020-01")
    assert r.status_code == 403, r.text
    assert "entries" not in r.json()
