"""The platform's own periodic jobs (jobs.py) and the scheduler that runs
them (scheduler.py): correct without Odoo, idempotent per period.

A reset closes a period for the whole platform, so the jobs' effects are
checked inside a rolled-back transaction on the real mail DB (fixture txn);
the CLI and the scheduler process run for real where what they do is what
the platform does anyway (yesterday's reset, already done by any cron)."""

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys


from emboux_connector import dkim, jobs, periods, scheduler

EXE = pathlib.Path(sys.executable).parent / "emboux-connector"


def utc_now():
    return dt.datetime.now(dt.UTC)


def domain_id(cur, name):
    cur.execute("SELECT id FROM domains WHERE name = %s", (name,))
    return cur.fetchone()["id"]


def test_scheduler_closes_yesterday_once_per_day(tenant, txn):
    name = tenant.domain()
    cur = txn
    did = domain_id(cur, name)
    cur.execute("UPDATE outbound_counters SET sent_today = 7 WHERE domain_id = %s", (did,))
    cur.execute("DELETE FROM outbound_resets WHERE kind = 'daily'")
    cur.execute("DELETE FROM scheduler_runs")
    now = utc_now()
    today, yesterday = now.date().isoformat(), (now.date() - dt.timedelta(days=1)).isoformat()

    assert scheduler.due(cur, "reset-daily", now) == today
    report = scheduler.run_job(cur, "reset-daily", now, today)
    assert (report["day"], report["already_done"]) == (yesterday, False) and report["domains"] > 0
    cur.execute("SELECT sent_today FROM outbound_counters WHERE domain_id = %s", (did,))
    assert cur.fetchone()["sent_today"] == 0
    cur.execute("SELECT day::text, sent FROM outbound_history WHERE domain_id = %s", (did,))
    assert cur.fetchall() == [{"day": yesterday, "sent": 7}]
    cur.execute("SELECT period, runs, last_success_at FROM scheduler_runs WHERE job = 'reset-daily'")
    row = cur.fetchone()
    assert (row["period"], row["runs"]) == (today, 1) and row["last_success_at"] == now

    # done for today: not due; run by hand (Odoo's cron, the CLI) it changes nothing
    later_today = now.replace(hour=23, minute=59, second=59)   # not now + 3 h: after 21:00 that is tomorrow
    assert scheduler.due(cur, "reset-daily", later_today) is None
    cur.execute("UPDATE outbound_counters SET sent_today = 1 WHERE domain_id = %s", (did,))
    assert jobs.reset_daily(cur)["already_done"] is True
    cur.execute("SELECT sent_today FROM outbound_counters WHERE domain_id = %s", (did,))
    assert cur.fetchone()["sent_today"] == 1
    # tomorrow it is due again
    assert scheduler.due(cur, "reset-daily", now + dt.timedelta(days=1)) == \
        (now.date() + dt.timedelta(days=1)).isoformat()
    assert scheduler.last_runs(cur)["reset-daily"]["period"] == today


def test_monthly_reset_is_due_once_a_month_and_idempotent(txn):
    cur = txn
    cur.execute("DELETE FROM scheduler_runs")
    now = utc_now()
    month = now.strftime("%Y-%m")
    # frozen up to four months ago: the scheduler's one run catches up to last month
    m = periods.month_start(now.date())
    back = [m := periods.previous_month(m) for _ in range(4)]
    cur.execute("DELETE FROM outbound_resets WHERE kind = 'monthly'")
    cur.execute("INSERT INTO outbound_resets (kind, period, domains) VALUES ('monthly', %s, 0)", (back[3],))
    assert scheduler.due(cur, "reset-monthly", now) == month
    first = scheduler.run_job(cur, "reset-monthly", now, month)
    assert first["closed"] == [b.strftime("%Y-%m") for b in reversed(back[:3])]
    again = jobs.reset_monthly(cur)
    assert again["already_done"] is True and again["closed"] == [] and again["month"] == back[0].strftime("%Y-%m")
    assert scheduler.due(cur, "reset-monthly", now) is None


def test_a_failed_run_is_recorded_and_retried_later(txn):
    cur = txn
    cur.execute("DELETE FROM scheduler_runs")
    now = utc_now()
    scheduler.record_failure(cur, "clean-dkim", now, "boom")
    assert scheduler.due(cur, "clean-dkim", now + dt.timedelta(minutes=5)) is None
    later = now + scheduler.RETRY_AFTER + dt.timedelta(minutes=1)
    assert scheduler.due(cur, "clean-dkim", later) == scheduler.SCHEDULE["clean-dkim"](later)
    assert scheduler.last_runs(cur)["clean-dkim"]["last_error"] == "boom"


def test_clean_dkim_retires_and_deletes_keys_after_their_overlap(api, txn):
    name = f"dk{os.urandom(5).hex()}.emboux-test.net"
    assert api.post("/domains/", json={"name": name}).status_code == 201
    cur = txn
    did = domain_id(cur, name)
    dkim.ensure_key(cur, did)
    _, old = dkim.rotate(cur, did, overlap=0)          # retiring, retire_after = now()
    cur.execute("UPDATE dkim_keys SET status = 'retiring' WHERE domain_id = %s AND selector = ANY(%s)",
                (did, old))
    report = jobs.clean_dkim(cur)
    assert report["retired"] >= 1 and report["deleted"] >= 1, report
    # retired, then deleted with its private key
    cur.execute("SELECT status FROM dkim_keys WHERE domain_id = %s AND selector = ANY(%s)", (did, old))
    assert cur.fetchall() == []
    assert jobs.clean_dkim(cur)["retired"] == 0
    # a key still inside its overlap stays published
    _, kept = dkim.rotate(cur, did, overlap=7)
    jobs.clean_dkim(cur)
    cur.execute("SELECT status FROM dkim_keys WHERE domain_id = %s AND selector = ANY(%s)", (did, kept))
    assert [r["status"] for r in cur.fetchall()] == ["retiring"]


def test_poll_verification_verifies_once_the_key_is_in_dns(api, dns_zones, txn):
    name = f"pv{os.urandom(5).hex()}.emboux-test.net"
    assert api.post("/domains/", json={"name": name}).status_code == 201
    body = api.post(f"/domains/{name}/verify").json()
    assert body["state"] == "pending", body
    dk = [x for x in body["dns_records"] if x["purpose"] == "dkim"][0]
    cur = txn
    did = domain_id(cur, name)
    # not in DNS yet: polled, still pending
    cur.execute("UPDATE provider_identities SET checked_at = NULL WHERE domain_id = %s", (did,))
    report = jobs.poll_verification(cur)
    assert report["polled"] >= 1
    cur.execute("SELECT state, checked_at FROM provider_identities WHERE domain_id = %s", (did,))
    row = cur.fetchone()
    assert row["state"] == "pending" and row["checked_at"] is not None
    dns_zones.write(name, [(dk["name"] + ".", "TXT", dk["value"])])
    cur.execute("UPDATE provider_identities SET checked_at = NULL WHERE domain_id = %s", (did,))
    jobs.poll_verification(cur)
    cur.execute("SELECT d.provider_verified, pi.state FROM domains d JOIN provider_identities pi "
                "ON pi.domain_id = d.id WHERE d.id = %s", (did,))
    assert cur.fetchone() == {"provider_verified": True, "state": "verified"}


def run_cli(*args):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=os.environ, timeout=300)


def test_cli_jobs_repeat_harmlessly_and_refuse_an_open_period(sql):
    first = run_cli("reset-daily")
    assert first.returncode == 0, first.stderr
    again = run_cli("reset-daily")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_done"] is True
    assert json.loads(again.stdout)["day"] == json.loads(first.stdout)["day"]
    before = sql("SELECT count(*) AS n FROM outbound_resets")[0]["n"]
    today = run_cli("reset-daily", "--day", utc_now().date().isoformat())
    assert today.returncode == 1 and json.loads(today.stderr)["code"] == "period_not_closed"
    bad = run_cli("reset-monthly", "--month", "2026-1")
    assert bad.returncode == 1 and json.loads(bad.stderr)["code"] == "invalid_field"
    assert sql("SELECT count(*) AS n FROM outbound_resets")[0]["n"] == before
    dk = run_cli("clean-dkim")
    assert dk.returncode == 0 and "retired" in json.loads(dk.stdout), dk.stderr
    pulled = run_cli("pull-json")
    assert pulled.returncode == 0 and "rejected" in json.loads(pulled.stdout), pulled.stderr


def test_unknown_job_is_refused():
    r = run_cli("reset-weekly")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_scheduler_process_runs_every_job_and_health_reports_it(api, sql, tmp_path):
    """The real loop, on the shared DB: what it does there (yesterday's reset,
    last month's freeze, the purge, polling) any cron does anyway."""
    sql("DELETE FROM scheduler_runs")
    with open(tmp_path / "scheduler.log", "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen([str(EXE), "scheduler"], env=os.environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        import time
        for _ in range(600):
            rows = sql("SELECT job, last_success_at, last_error FROM scheduler_runs")
            if len(rows) == len(scheduler.SCHEDULE) or proc.poll() is not None:
                break
            time.sleep(0.5)
        text = (tmp_path / "scheduler.log").read_text()
        assert {r["job"]: r["last_error"] for r in rows} == {j: None for j in scheduler.SCHEDULE}, text
    finally:
        proc.terminate()
        assert proc.wait(30) == 0          # SIGTERM: a clean stop
    r = api.get("/health")
    jobs_seen = r.json()["scheduler"]["jobs"]
    assert set(jobs_seen) == set(scheduler.SCHEDULE)
    assert jobs_seen["reset-daily"]["period"] == rows_period(sql, "reset-daily")
    assert all(j["last_success_at"] for j in jobs_seen.values())


def rows_period(sql, job):
    return sql("SELECT period FROM scheduler_runs WHERE job = %s", (job,))[0]["period"]
