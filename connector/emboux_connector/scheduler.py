"""`emboux-connector scheduler`: one small loop that runs the platform's jobs
(jobs.py) at their time, so that the platform is correct without Odoo.

Every minute it asks, for each job, which period is due now (a UTC day for
the daily reset and the retention purge, a month for the monthly reset, an
hour for the DKIM expiry, a quarter of an hour for verification polling). A
job runs when that period differs from the one recorded in `scheduler_runs`
(migration 0012) after its last success; the job and the record commit in
one transaction. A transaction-scoped advisory lock per job lets several
schedulers (or a scheduler and a manual run) coexist: the second one skips.
A failed run is recorded (last_error) and retried after RETRY_AFTER.
"""

import datetime as dt
import json
import logging
import signal
import time

from . import jobs

log = logging.getLogger(__name__)

TICK_SECONDS = 60
RETRY_AFTER = dt.timedelta(minutes=10)


def _day(now):
    return now.date().isoformat()


def _month(now):
    return now.strftime("%Y-%m")


def _hour(now):
    return now.strftime("%Y-%m-%dT%H")


def _quarter(now):
    return now.strftime("%Y-%m-%dT%H:") + f"{now.minute // 15 * 15:02d}"


def _five(now):
    return now.strftime("%Y-%m-%dT%H:") + f"{now.minute // 5 * 5:02d}"


# job -> the period it is due for at `now` (UTC)
SCHEDULE = {
    "reset-daily": _day,
    "reset-monthly": _month,
    "purge-retention": _day,
    "poll-verification": _quarter,
    "clean-dkim": _hour,
    "pull-json": _five,     # each tenant's document at its own interval_minutes (5 at least)
}


def utcnow():
    return dt.datetime.now(dt.UTC)


def due(cur, job, now):
    """The period `job` should run for now, or None when it is done (or
    failed less than RETRY_AFTER ago)."""
    period = SCHEDULE[job](now)
    cur.execute("SELECT period, last_error_at FROM scheduler_runs WHERE job = %s", (job,))
    row = cur.fetchone()
    if row and row["period"] == period:
        return None
    if row and row["last_error_at"] and now - row["last_error_at"] < RETRY_AFTER:
        return None
    return period


def run_job(cur, job, now, period=None):
    """Run `job` in the cursor's transaction and record its success.
    Returns its report, or None when another scheduler holds it. Raises on
    failure (the caller rolls back and calls record_failure)."""
    cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('emboux_scheduler:' || %s)) AS got", (job,))
    if not cur.fetchone()["got"]:
        return None
    report = jobs.JOBS[job](cur)
    if jobs.failed(report):
        raise JobFailed(job, report)
    cur.execute(
        "INSERT INTO scheduler_runs (job, period, last_success_at, last_result, runs) "
        "VALUES (%s, %s, %s, %s, 1) ON CONFLICT (job) DO UPDATE SET period = EXCLUDED.period, "
        " last_success_at = EXCLUDED.last_success_at, last_result = EXCLUDED.last_result, "
        " runs = scheduler_runs.runs + 1",
        (job, period or SCHEDULE[job](now), now, json.dumps(report, default=str)))
    return report


class JobFailed(Exception):
    def __init__(self, job, report):
        super().__init__(f"{job}: {report.get('errors')}")
        self.report = report


def record_failure(cur, job, now, error):
    cur.execute(
        "INSERT INTO scheduler_runs (job, last_error, last_error_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (job) DO UPDATE SET last_error = EXCLUDED.last_error, "
        " last_error_at = EXCLUDED.last_error_at", (job, str(error)[:2000], now))


def tick(db, now=None):
    """Run every due job once, each in its own transaction."""
    now = now or utcnow()
    for job in SCHEDULE:
        try:
            with db.transaction() as cur:
                period = due(cur, job, now)
                if period is None:
                    continue
                report = run_job(cur, job, now, period)
            if report is not None:
                jobs.after_commit(job, report)
                log.info("scheduler: %s done for %s: %s", job, period, json.dumps(report, default=str))
        except Exception as exc:  # one job's failure must not stop the others
            detail = getattr(exc, "detail", None) or str(exc)
            log.error("scheduler: %s failed: %s", job, detail)
            try:
                with db.transaction() as cur:
                    record_failure(cur, job, now, detail)
            except Exception:
                log.exception("scheduler: cannot record the failure of %s", job)


def last_runs(cur):
    """For GET /health: each job's last success and last failure."""
    cur.execute("SELECT job, period, last_success_at, last_error, last_error_at FROM scheduler_runs ORDER BY job")
    out = {}
    for r in cur.fetchall():
        out[r["job"]] = {
            "period": r["period"],
            "last_success_at": r["last_success_at"].isoformat() if r["last_success_at"] else None,
            "last_error": r["last_error"],
            "last_error_at": r["last_error_at"].isoformat() if r["last_error_at"] else None,
        }
    return out


def run_forever(db, tick_seconds=TICK_SECONDS):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    log.info("scheduler: started (jobs: %s)", ", ".join(SCHEDULE))
    while not stop:
        tick(db)
        for _ in range(tick_seconds):
            if stop:
                break
            time.sleep(1)
    log.info("scheduler: stopped")
    return 0
