"""Ordered SQL migrations under version control (migrations/NNNN_*.sql).

Each file runs once, in its own transaction, recorded in schema_migrations.
An advisory lock keeps two connectors starting at once from racing.
"""

import importlib.resources
import logging

import psycopg2

log = logging.getLogger(__name__)
LOCK_ID = 0x656D626F  # "embo"


def migration_files():
    root = importlib.resources.files("emboux_connector") / "migrations"
    return sorted((p.name, p.read_text("utf-8")) for p in root.iterdir() if p.name.endswith(".sql"))


def migrate(dsn):
    conn = psycopg2.connect(dsn)
    applied_now = []
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
        conn.commit()
        for name, sql in migration_files():
            if name in done:
                continue
            with conn, conn.cursor() as cur:
                cur.execute(sql)
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (name,))
            applied_now.append(name)
            log.info("applied %s", name)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
        conn.commit()
    finally:
        conn.close()
    return applied_now


def pending(dsn):
    """Migrations of this version not applied yet to `dsn` (all when it has none)."""
    want = [name for name, _ in migration_files()]
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return want
            cur.execute("SELECT version FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    return [n for n in want if n not in done]


def wait_migrated(dsn, timeout):
    """Wait (up to `timeout` s) until the DB is reachable and migrated to this
    version: what a container started beside the one-shot migration waits
    for. Returns what is still missing ([] = ready)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            missing = pending(dsn)
        except psycopg2.Error as exc:
            missing = [f"database: {str(exc).strip().splitlines()[0]}"]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(2)
