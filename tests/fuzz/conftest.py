"""The fuzzing tier: a second connector of its own, on a database of its own.

`fuzz_connector` empties the fuzz database (emboux_fuzz, made by
scripts/dev/stack-fuzz.sh from the mail DB's roles), migrates it with
`emboux-connector migrate`, and serves it with gunicorn -- the production
configuration -- on a free port with a master token of its own. Nothing it
runs can reach the mail DB, the dev mail store or the dev stack's provider
stand-ins: the mail store is an empty directory, doveadm is `false`, and
SES (moto) and Mailgun are stand-ins of its own, started here.
"""

import os
import pathlib
import secrets
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg2
import pytest
import requests

from stack_clients import free_port, wait_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
LOG = ROOT / "var" / "log"


def _dbname(dsn):
    return urlsplit(dsn).path.lstrip("/")


FUZZ_LOCK = 0x656D_6275_7A7A   # advisory lock: one fuzz run at a time on this database


def claim_fuzz_db(dsn, mail_db):
    """Wait until no other run uses the fuzz database, then empty it (as its
    owner). Refuses any other database. Returns the connection that holds the
    claim: the run keeps it open until it is over."""
    name = _dbname(dsn)
    assert name == "emboux_fuzz" and name != mail_db, f"refusing to empty database {name!r}"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        assert cur.fetchone()[0] == "emboux_fuzz"
        cur.execute("SELECT pg_advisory_lock(%s)", (FUZZ_LOCK,))
        cur.execute("DROP SCHEMA IF EXISTS mailserver CASCADE; DROP SCHEMA IF EXISTS public CASCADE; "
                    "CREATE SCHEMA public")
    return conn


class FuzzConnector:
    def __init__(self, url, master):
        self.url, self.master = url, master


@pytest.fixture(scope="module")  # the fuzz DB's claim ends with the fuzzing, not the whole session
def fuzz_connector(devenv, tmp_path_factory):
    dsn = devenv.get("FUZZ_MAILDB_DSN")
    if not dsn:
        pytest.fail("FUZZ_MAILDB_DSN missing from var/dev.env: run ./dev up (scripts/dev/stack-fuzz.sh)")
    claim = claim_fuzz_db(dsn, devenv["MAILDB_NAME"])
    procs = []

    def start(args, port, what, **kw):
        procs.append(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, **kw))
        assert wait_port(port, 30), f"{what} did not start"

    ses, mailgun, port = free_port(), free_port(), free_port()
    master = secrets.token_urlsafe(32)
    env = {k: v for k, v in {**os.environ, **devenv}.items() if not k.endswith("_DSN")}
    env.update({
        "MAILDB_DSN": dsn, "EMBOUX_API_KEY": master,
        "EMBOUX_LOG_FILE": str(LOG / "fuzz-connector-app.log"),
        "VMAIL_DIR": str(tmp_path_factory.mktemp("fuzz-vmail")), "DOVEADM": "false",
        "DOVECOT_CONFIG": "/nonexistent/dovecot.conf",
        "SES_ENDPOINT_URL": f"http://127.0.0.1:{ses}", "SNS_ENDPOINT_URL": f"http://127.0.0.1:{ses}",
        "MAILGUN_API_URL": f"http://127.0.0.1:{mailgun}",
        # the fuzzer's authentication checks send bad tokens on purpose; the
        # failure throttle (throttle.py, tested in tests/api) would then answer
        # every later request with 429 and nothing deeper would be reached
        "AUTH_FAILURE_LIMIT": "1000000/minute",
    })
    subprocess.run([str(VENV_BIN / "emboux-connector"), "migrate"], env=env, check=True,
                   capture_output=True)
    try:
        start([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(ses)], ses, "moto (SES)")
        start([str(VENV_BIN / "python"), str(ROOT / "tests" / "standins" / "mailgun.py"), "--port", str(mailgun),
               "--api-key", env["MAILGUN_API_KEY"]], mailgun, "the Mailgun stand-in")
        start([str(VENV_BIN / "gunicorn"), "--config", "python:emboux_connector.gunicorn_conf",
               "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
               "--access-logfile", str(LOG / "fuzz-connector-access.log"),
               "--error-logfile", str(LOG / "fuzz-connector.log"), "emboux_connector.wsgi:app"],
              port, "the fuzz connector (var/log/fuzz-connector.log)", env=env, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        assert requests.get(url + "/health", timeout=30).json()["database"]["ok"]
        yield FuzzConnector(url, master)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        claim.close()
