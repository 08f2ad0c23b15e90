"""`emboux-connector`: migrate, serve, reconcile, openapi, the periodic jobs
of jobs.JOBS (reset-daily, reset-monthly, purge-retention, poll-verification,
clean-dkim, pull-json), the scheduler that runs them and the report LMTP
server (reports-lmtp)."""

import argparse
import json
import logging
import sys

from . import settings


def main(argv=None):
    parser = argparse.ArgumentParser(prog="emboux-connector")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations to MAILDB_DSN")
    sub.add_parser("reconcile", help="set every partner's domains_used to the real count")
    sub.add_parser("openapi", help="print the OpenAPI document")
    sub.add_parser("purge-retention", help="delete mail older than each domain's retention_days")
    daily = sub.add_parser("reset-daily", help="close a UTC day (default: yesterday); idempotent per day")
    daily.add_argument("--day", help="YYYY-MM-DD")
    monthly = sub.add_parser("reset-monthly", help="freeze a month's counters (default: the next due); idempotent")
    monthly.add_argument("--month", help="YYYY-MM")
    sub.add_parser("poll-verification", help="poll every pending sending identity (provider or DNS)")
    sub.add_parser("clean-dkim", help="rotate DKIM keys past their domain's rotation age, retire those "
                                       "past their overlap, delete retired ones")
    sub.add_parser("pull-json", help="pull every tenant's seed 002 JSON document that is due and converge to it")
    sub.add_parser("scheduler", help="run the jobs above at their time, forever (SIGTERM stops it)")
    wait = sub.add_parser("wait-migrated", help="wait until MAILDB_DSN has every migration of this version")
    wait.add_argument("--timeout", type=int, default=300, help="seconds (default 300)")
    lmtp = sub.add_parser("reports-lmtp", help="LMTP server for DMARC/TLS-RPT report mail (docs/reports.md)")
    lmtp.add_argument("--listen", default="127.0.0.1:10026", help="host:port (default 127.0.0.1:10026)")
    serve = sub.add_parser("serve", help="development server (use gunicorn in production)")
    serve.add_argument("--port", type=int, default=8600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if args.command == "migrate":
        from .migrate import migrate
        dsn = settings.get("MAILDB_DSN") or sys.exit("MAILDB_DSN is not set")
        applied = migrate(dsn)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
        return 0
    if args.command == "wait-migrated":
        from .migrate import wait_migrated
        dsn = settings.get("MAILDB_DSN") or sys.exit("MAILDB_DSN is not set")
        missing = wait_migrated(dsn, args.timeout)
        if missing:
            print(f"wait-migrated: still missing after {args.timeout}s: {missing}", file=sys.stderr)
            return 1
        return 0
    from . import jobs
    if args.command in jobs.JOBS:
        return _run_job(args)
    if args.command == "reports-lmtp":
        from .reportsd import serve as serve_reports
        return serve_reports(args.listen)
    if args.command == "scheduler":
        from .app import create_app
        from .scheduler import run_forever
        app = create_app(reconcile=False)
        return run_forever(app.extensions["emboux_db"])
    if args.command == "reconcile":
        from .app import create_app
        create_app(reconcile=True)
        return 0
    from .app import create_app
    if args.command == "openapi":
        # The document depends on the code only: no settings, no database.
        from .api.meta import _version
        from .config import Config
        from .openapi import build_spec
        app = create_app(Config(api_key="-" * 16, maildb_dsn="unused"), reconcile=False)
        print(json.dumps(build_spec(app, _version()), indent=2))
        return 0
    app = create_app(reconcile=True)
    app.run(host="127.0.0.1", port=args.port)
    return 0


def _run_job(args):
    """One job, once, in one transaction; its report as JSON on stdout.
    Exit 1 (and nothing committed) when it failed."""
    from .app import create_app
    from .errors import ApiError
    from . import jobs
    app = create_app(reconcile=False)
    kwargs = {}
    if args.command == "reset-daily" and args.day:
        kwargs["day"] = args.day
    if args.command == "reset-monthly" and args.month:
        kwargs["month"] = args.month
    try:
        with app.extensions["emboux_db"].transaction() as cur:
            report = jobs.JOBS[args.command](cur, **kwargs)
            if jobs.failed(report):
                raise _Failed(report)
    except ApiError as exc:
        print(json.dumps({"detail": exc.detail, "code": exc.code}), file=sys.stderr)
        return 1
    except _Failed as exc:
        report = exc.report
    else:
        jobs.after_commit(args.command, report)
    print(json.dumps(report, indent=2, default=str))
    return 1 if jobs.failed(report) else 0


class _Failed(Exception):
    def __init__(self, report):
        super().__init__("job failed")
        self.report = report


if __name__ == "__main__":
    sys.exit(main())
