"""Fixtures of the periodic-job tests (connector/emboux_connector/jobs.py,
scheduler.py)."""

import psycopg2
import psycopg2.extras
import pytest


@pytest.fixture
def txn(devenv):
    """A dict cursor on the real mail DB in a transaction rolled back at the
    end: a reset closes a period for every domain of the shared dev DB, so
    the jobs run here on the real DB and nothing they do stays."""
    conn = psycopg2.connect(devenv["MAILDB_DSN"])
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SET LOCAL lock_timeout = '20s'")
            yield cur
    finally:
        conn.rollback()
        conn.close()
