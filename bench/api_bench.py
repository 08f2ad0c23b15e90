#!/usr/bin/env python3
"""REST API write throughput (issue 15), side by side with references, in one run.

    ./dev up && var/venv/bin/python bench/api_bench.py [--aliases 6000] [--clients 8]
        [--mailboxes 10000] [--no-odoo]

Phases, each with the same `--clients` client threads (one keep-alive
connection each, http.client: a light client, so that what is measured is
the server):

1. `ref-http`: GET of a path the connector does not have (its JSON 404):
   the same gunicorn, Flask, error handler and access log, no token, no DB.
   The ceiling of this server process model on this machine.
2. `ref-sql`: what an alias creation must do in the mail DB, through psycopg2
   directly, one connection per client: one transaction with the token
   lookup and the alias INSERT (its change-feed trigger firing), committed
   durably (synchronous_commit on). The floor of the work itself.
3. `aliases`: POST /aliases/ with a client token (target >= 600 req/s with
   8 clients while Odoo's sync runs).
4. `mailboxes` (skipped with --mailboxes 0): POST /users/, the password
   hashed as {SHA512-CRYPT}, 5,000 rounds (Dovecot's default), target 10,000
   in <= 60 s.

Unless --no-odoo, Odoo's sync runs meanwhile: a thread asks Odoo to run its
pull cron (GET /changes, every new record mirrored into Odoo) again as soon as
it ends, and its push cron every 10 s, as a busy back office would. The
ratios aliases / ref-http and aliases / ref-sql say what our code costs;
the load average is printed: other work on the machine moves every figure.
"""

import argparse
import http.client
import json
import os
import pathlib
import sys
import threading
import time
import urllib.parse
import uuid
import xmlrpc.client

import psycopg2

from devenv import ROOT, dev_env


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Client(threading.local):
    """One keep-alive HTTP connection per thread."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.conn = None

    def request(self, method, path, token=None, body=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(1, 101):
            # a connection the server closed (keep-alive timeout): once more; a
            # connector being restarted (others share the stack): for up to 20 s.
            # (A POST the server did receive and answer is sent again then: its
            # 400 "already exists" shows up among the errors.)
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status
            except (http.client.HTTPException, OSError) as exc:
                self.conn.close()
                self.conn = None
                if attempt == 100 or (attempt > 1 and not isinstance(exc, ConnectionRefusedError)):
                    raise
                if isinstance(exc, ConnectionRefusedError):
                    time.sleep(0.2)
        return None


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """user + system CPU of a process (all its threads), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


class CpuMeter:
    """CPU spent by the server side of a phase, per request: gunicorn's
    workers and the PostgreSQL backends of an application_name. Unlike
    req/s this hardly moves with the machine's load (others' work takes
    the cores, not our CPU seconds): it says what one request costs."""

    def __init__(self, env, app_name, pidfile=None):
        self.env, self.app_name = env, app_name
        self.pidfile = pidfile or ROOT / "var" / "run" / "connector.pid"
        self.db = psycopg2.connect(env["MAILDB_DSN"], application_name="emboux-bench-meter")
        self.db.autocommit = True

    def pids(self):
        gunicorn = []
        try:
            master = int(pathlib.Path(self.pidfile).read_text())
            with open(f"/proc/{master}/task/{master}/children") as f:
                gunicorn = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            pass
        with self.db.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app_name,))
            backends = [r[0] for r in cur.fetchall()]
        return gunicorn, backends

    def snapshot(self):
        gunicorn, backends = self.pids()
        return ({p: cpu_seconds(p) for p in gunicorn}, {p: cpu_seconds(p) for p in backends})

    @staticmethod
    def spent(before, after):
        return sum(after[p] - before[p] for p in after if after[p] is not None and before.get(p) is not None)


def run_phase(label, items, clients, fn, expect, target=None, meter=None):
    """fn(item) -> status; items shared by `clients` threads. Prints and returns req/s."""
    lock = threading.Lock()
    queue = list(reversed(items))
    latencies, errors = [], []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            t0 = time.perf_counter()
            status = fn(item)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if status != expect:
                    errors.append(status)

    load0 = os.getloadavg()[0]
    server0 = meter.snapshot() if meter else None
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    n = len(latencies)
    rate = n / wall
    line = (f"{label:<10} {n:>6} req {wall:6.1f} s {rate:7.1f} req/s  p50 {pct(latencies, 50) * 1000:6.1f} ms  "
            f"p99 {pct(latencies, 99) * 1000:6.1f} ms  errors {len(errors)}  "
            f"load {load0:.1f}->{os.getloadavg()[0]:.1f}\n"
            f"{'':11}CPU per request: client {client_cpu / n * 1000:.2f} ms")
    if meter:
        server1 = meter.snapshot()
        line += (f", gunicorn {meter.spent(server0[0], server1[0]) / n * 1000:.2f} ms, "
                 f"PostgreSQL {meter.spent(server0[1], server1[1]) / n * 1000:.2f} ms")
    if errors:
        line += f" (e.g. {errors[0]})"
    if target:
        line += f"  [target: {target}]"
    print(line, flush=True)
    return rate, wall


class OdooSync(threading.Thread):
    """Odoo's sync, run back to back: the pull cron (the change feed mirrored
    into Odoo) again as soon as it ends, the push cron every 10 s."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.env = env
        self.stop = threading.Event()
        self.pulls = 0
        self.busy = 0
        self.error = None

    def _odoo(self):
        url, db = self.env["ODOO_URL"], self.env["ODOO_DB"]
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        uid = common.authenticate(db, self.env["ODOO_LOGIN"], self.env["ODOO_PASSWORD"], {})
        models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

        def call(model, method, *args, **kw):
            return models.execute_kw(db, uid, self.env["ODOO_PASSWORD"], model, method, list(args), kw)
        return call

    def crons(self, call):
        found = {}
        for xmlid in ("cron_sync_pull_changes", "cron_sync_push_queue"):
            rec = call("ir.model.data", "search_read", [["module", "=", "emboux_core"], ["name", "=", xmlid]],
                       fields=["res_id"])
            found[xmlid] = rec[0]["res_id"]
        return found

    def run(self):
        try:
            call = self._odoo()
            crons = self.crons(call)
            last_push = 0
            while not self.stop.is_set():
                try:
                    call("ir.cron", "method_direct_trigger", [crons["cron_sync_pull_changes"]])
                    self.pulls += 1
                    if time.monotonic() - last_push > 10:
                        last_push = time.monotonic()
                        call("ir.cron", "method_direct_trigger", [crons["cron_sync_push_queue"]])
                except xmlrpc.client.Fault:   # Odoo's own cron thread runs that job now: again soon
                    self.busy += 1
                    time.sleep(1)
        except Exception as exc:  # reported, the benchmark goes on without it
            self.error = exc


def ref_sql_phase(env, items, clients, token):
    """The alias creation's durable minimum through psycopg2, same clients."""
    local = threading.local()
    free = [psycopg2.connect(env["MAILDB_DSN"], application_name="emboux-bench-ref") for _ in range(clients)]
    conns = list(free)
    lock = threading.Lock()

    def one(item):
        conn = getattr(local, "conn", None)
        if conn is None:
            with lock:
                conn = local.conn = free.pop()
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, partner_ref, active, expires_at FROM api_keys WHERE token_hash = "
                        "encode(sha256(%s::bytea), 'hex')", (token,))
            cur.fetchone()
            cur.execute("INSERT INTO aliases (domain_id, source, destination) VALUES (%s, %s, %s)", item)
        return 201

    try:
        return run_phase("ref-sql", items, clients, one, 201, meter=CpuMeter(env, "emboux-bench-ref"))
    finally:
        for c in conns:
            c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aliases", type=int, default=6000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--domains", type=int, default=20,
                    help="the writes go to these, round robin (as bench/provision.py)")
    ap.add_argument("--mailboxes", type=int, default=10000)
    ap.add_argument("--no-odoo", action="store_true", help="without Odoo's sync running")
    ap.add_argument("--url", help="another gunicorn of the connector (default: the dev stack's)")
    ap.add_argument("--pidfile", help="that gunicorn's PID file (for its workers' CPU)")
    args = ap.parse_args()
    env = dev_env()
    base, master = args.url or env["EMBOUX_API_URL"], env["EMBOUX_API_KEY"]
    client = Client(base)
    run = uuid.uuid4().hex[:8]
    ref = f"apibench-{run}"

    # Set-up (not timed): a client key, the domains of its partner.
    setup = Client(base)
    conn = http.client.HTTPConnection(setup.host, setup.port)
    conn.request("POST", "/api-keys/", body=json.dumps({
        "partner_ref": ref, "domains_allowed": 0, "mailboxes_per_domain": 0, "aliases_per_mailbox": 0}),
        headers={"Authorization": f"Bearer {master}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    token = json.loads(resp.read())["token"]
    assert resp.status == 201, resp.status
    domains = [f"d{i}-{run}.apibench-emboux.net" for i in range(args.domains)]
    for domain in domains:
        assert setup.request("POST", "/domains/", token, {"name": domain}) == 201
    db = psycopg2.connect(env["MAILDB_DSN"])
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("SELECT name, id FROM domains WHERE name = ANY(%s)", (domains,))
        domain_ids = dict(cur.fetchall())
    db.close()

    print(f"EmBoux REST API writes: {os.cpu_count()} cores, {args.clients} clients, connector {base}; "
          f"Odoo's sync {'OFF' if args.no_odoo else 'running (pull cron back to back)'}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    sync = None
    if not args.no_odoo:
        sync = OdooSync(env)
        sync.start()
        time.sleep(1)
    n = args.aliases
    meter = CpuMeter(env, "emboux-connector", args.pidfile)
    http_rate, _ = run_phase("ref-http", range(n), args.clients,
                             lambda i: client.request("GET", f"/apibench-nothing/{i}"), 404, meter=meter)
    def dom(i):
        return domains[i % len(domains)]
    sql_rate, _ = ref_sql_phase(env, [(domain_ids[dom(i)], f"ref{i}@{dom(i)}", f"dest{i}@example.net")
                                      for i in range(n)], args.clients, token)
    api_rate, _ = run_phase(
        "aliases", range(n), args.clients,
        lambda i: client.request("POST", "/aliases/", token, {
            "domain_name": dom(i), "source": f"alias{i}@{dom(i)}", "destination": f"dest{i}@example.net"}),
        201, target=">= 600 req/s", meter=meter)
    box_wall = None
    if args.mailboxes:
        _, box_wall = run_phase(
            "mailboxes", range(args.mailboxes), args.clients,
            lambda i: client.request("POST", "/users/", token, {
                "domain_name": dom(i), "email": f"user{i}@{dom(i)}", "password": f"pw-user{i}-secret"}),
            201, target=f"{args.mailboxes} in <= 60 s", meter=meter)
    if sync:
        sync.stop.set()
        print(f"Odoo sync: {sync.pulls} pulls during the run ({sync.busy} times a job was already running)"
              + (f"; stopped by an error: {sync.error}" if sync.error else ""))
    print(f"\nratios: aliases / ref-http {api_rate / http_rate:.2f}, aliases / ref-sql {api_rate / sql_rate:.2f}")
    print(f"summary: aliases {api_rate:.0f} req/s (target 600): {'OK' if api_rate >= 600 else 'MISSED'}"
          + (f"; {args.mailboxes} mailboxes in {box_wall:.1f} s (target 60 s): "
             f"{'OK' if box_wall <= 60 else 'MISSED'}" if box_wall else ""))
    # The domains go (their mailboxes and aliases with them); Odoo's next pull archives them.
    for domain in domains:
        setup.request("DELETE", f"/domains/{domain}", token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
