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
        with conn:
            with conn.cursor() as cur:
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
            with conn:
                with conn.cursor() as cur:
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
