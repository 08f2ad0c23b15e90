"""`emboux-connector`: migrate, serve, reconcile, openapi."""

import argparse
import json
import logging
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="emboux-connector")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations to MAILDB_DSN")
    sub.add_parser("reconcile", help="set every partner's domains_used to the real count")
    sub.add_parser("openapi", help="print the OpenAPI document")
    sub.add_parser("purge-retention", help="delete mail older than each domain's retention_days")
    serve = sub.add_parser("serve", help="development server (use gunicorn in production)")
    serve.add_argument("--port", type=int, default=8600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if args.command == "migrate":
        from .migrate import migrate
        dsn = os.environ.get("MAILDB_DSN") or sys.exit("MAILDB_DSN is not set")
        applied = migrate(dsn)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
        return 0
    if args.command == "purge-retention":
        from .app import create_app
        from .api.retention import RETENTION_ROWS
        from . import stores
        app = create_app(reconcile=False)
        with app.extensions["emboux_db"].transaction() as cur:
            cur.execute(RETENTION_ROWS)
            rows = [(r["email"], r["retention_days"]) for r in cur.fetchall()]
        report = stores.purge_retention(rows)
        print(json.dumps(report, indent=2))
        return 1 if report.get("errors") else 0
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


if __name__ == "__main__":
    sys.exit(main())
