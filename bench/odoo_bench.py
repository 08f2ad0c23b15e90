# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Benchmark (not a test): run with Odoo's virtualenv against the running
dev stack, e.g.
    $(ls -d ~/.cache/emboux/odoo19-venv-*)/bin/python bench/odoo_bench.py

1. Create 1,000 mailboxes from Odoo in one `create` call (XML-RPC, as an
   integrator would), end to end: the call returns after Odoo's commit and
   the post-commit push; we then wait until all 1,000 are in the mail DB.
   Target: <= 30 s.
2. Open a list of 10,000 mailboxes (the web client's `web_search_read` of
   the list view, first page + count). Target: <= 1 s.
3. The outbound pull (issue 11, models/emboux_outbound_pull.py) of 10,000
   domains' counters and 30 days of their history (300,000 days;
   BENCH_PULL_DAYS changes the 30), from
   empty cursors: target <= 20 s; then an incremental pull after 100
   counters changed: target <= 2 s; then a pull with nothing new.
4. Open the outbound dashboard's graph (its `formatted_read_group`: sent per
   day and tenant) over 365 days x 1,000 domains. Target: <= 1 s.
Everything is created under a throw-away tenant and deleted at the end.
`odoo_bench.py pull [--keep]` runs 3 and 4 only (--keep: leave the data for a look, then
`odoo_bench.py cleanup <ref>`), `odoo_bench.py mailboxes` 1 and 2."""

import json
import os
import pathlib
import sys
import time
import urllib.request
import uuid

import psycopg2

# The Odoo RPC client and settings of the browser tests (tests_odoo/conftest.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests_odoo"))
from conftest import ENV, Odoo  # noqa: E402


def maildb_count(domain):
    conn = psycopg2.connect(ENV["MAILDB_DSN"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = %s",
                        (domain,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def web_session():
    """A web client session (cookie) for the JSON-RPC the list view uses."""
    req = urllib.request.Request(f"{ENV['ODOO_URL']}/web/session/authenticate", method="POST",
                                 data=json.dumps({"jsonrpc": "2.0", "params": {
                                     "db": ENV["ODOO_DB"], "login": ENV["ODOO_LOGIN"],
                                     "password": ENV["ODOO_PASSWORD"]}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        cookie = resp.headers["Set-Cookie"].split(";")[0]
    return cookie


def call_kw(cookie, model, method, args, kwargs):
    req = urllib.request.Request(f"{ENV['ODOO_URL']}/web/dataset/call_kw/{model}/{method}", method="POST",
                                 data=json.dumps({"jsonrpc": "2.0", "params": {
                                     "model": model, "method": method, "args": args, "kwargs": kwargs}}).encode(),
                                 headers={"Content-Type": "application/json", "Cookie": cookie})
    with urllib.request.urlopen(req) as resp:
        body = json.loads(resp.read())
    if body.get("error"):
        raise RuntimeError(body["error"])
    return body["result"]


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which == "cleanup":
        cleanup_pull(PatientOdoo(), sys.argv[2])
        return 0
    ok = True
    if which in ("all", "mailboxes"):
        ok = bench_mailboxes() == 0 and ok
    if which in ("all", "pull"):
        ok = bench_pull() == 0 and ok
    return 0 if ok else 1


def bench_mailboxes():
    odoo = Odoo()
    ref = "bench-" + uuid.uuid4().hex[:8]
    partner = odoo("res.partner", "create", {"name": f"Benchmark {ref}"})
    tenant = odoo("emboux.tenant", "create", {"name": f"Benchmark {ref}", "partner_id": partner,
                                              "partner_ref": ref, "mailboxes_per_domain": 0,
                                              "aliases_per_mailbox": 0, "domains_allowed": 0})
    domain = f"{ref}.emboux-bench.test"
    dom_id = odoo("emboux.domain", "create", {"name": domain, "tenant_id": tenant})
    try:
        vals = [{"domain_id": dom_id, "local_part": f"user{i:05d}", "password": f"Bench-pw-{i:05d}",
                 "quota_mb": 100} for i in range(1000)]
        t0 = time.perf_counter()
        odoo("emboux.mailbox", "create", vals)
        t_call = time.perf_counter() - t0
        while maildb_count(domain) < 1000 and time.perf_counter() - t0 < 300:
            time.sleep(0.1)
        t_e2e = time.perf_counter() - t0
        n = maildb_count(domain)
        print(f"create 1,000 mailboxes in one call: call returned in {t_call:.1f} s, "
              f"{n} in the mail DB after {t_e2e:.1f} s (target <= 30 s)")

        # grow to 10,000 for the list (same path, in bigger batches)
        t1 = time.perf_counter()
        for start in range(1000, 10000, 3000):
            odoo("emboux.mailbox", "create", [
                {"domain_id": dom_id, "local_part": f"user{i:05d}", "password": f"Bench-pw-{i:05d}"}
                for i in range(start, min(start + 3000, 10000))])
        while maildb_count(domain) < 10000 and time.perf_counter() - t1 < 900:
            time.sleep(0.2)
        print(f"  (9,000 more: {time.perf_counter() - t1:.1f} s, {maildb_count(domain)} in the mail DB)")

        cookie = web_session()
        fields = {f: {} for f in ("email", "domain_id", "tenant_id", "quota_mb", "catch_all", "sync_state")}
        timings = []
        for _ in range(5):
            t2 = time.perf_counter()
            res = call_kw(cookie, "emboux.mailbox", "web_search_read", [], {
                "domain": [("domain_id", "=", dom_id)], "specification": fields,
                "offset": 0, "limit": 80, "order": "", "count_limit": 10001})
            timings.append(time.perf_counter() - t2)
        assert res["length"] == 10000, res["length"]
        print(f"open a list of 10,000 mailboxes (web_search_read, 80 rows + count): "
              f"best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms (target <= 1 s)")
        t3 = time.perf_counter()
        res = call_kw(cookie, "emboux.mailbox", "web_search_read", [], {
            "domain": [], "specification": fields, "offset": 0, "limit": 80, "order": ""})
        print(f"open the full mailbox list ({res['length']} records): {(time.perf_counter() - t3) * 1000:.0f} ms")
        ok = n == 1000 and t_e2e <= 30 and max(timings) <= 1
        return 0 if ok else 1
    finally:
        odoo("emboux.domain", "unlink", [dom_id])
        odoo("emboux.tenant", "unlink", [tenant])



# --- 3 and 4: the outbound pull and the dashboard's graph ---------------------------
PULL_DOMAINS, GRAPH_DOMAINS, GRAPH_DAYS = 10_000, 1_000, 365
PULL_DAYS = int(os.environ.get("BENCH_PULL_DAYS", "30"))   # days of history per domain in the first pull
FEED_CURSORS = "emboux.outbound_feed_cursor."


def maildb_run(sql, params=None):
    conn = psycopg2.connect(ENV["MAILDB_DSN"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount
    finally:
        conn.close()


def wait_for_feeds():
    """Until every transaction of the mail DB begun before now has ended: the
    feeds answer a change once those have (api/feeds.py). Other work's tests
    hold transactions open for tens of seconds on the shared dev stack; a
    production mail DB has none that long. Not part of the timings."""
    conn = psycopg2.connect(ENV["MAILDB_DSN"])
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT clock_timestamp()")
            since = cur.fetchone()[0]
            t0 = time.perf_counter()
            while True:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND backend_xid IS NOT NULL AND xact_start < %s AND pid <> pg_backend_pid()", (since,))
                if not cur.fetchone()[0] or time.perf_counter() - t0 > 600:
                    return time.perf_counter() - t0
                time.sleep(0.2)
    finally:
        conn.close()


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


class PatientOdoo(Odoo):
    """XML-RPC that waits for the dev Odoo to come back: other work restarts
    it (./dev up, ./dev test-odoo). A measured call that had to wait is
    reported as such (`self.waited`), not timed as if it had not."""

    def __init__(self):
        self.waited = False
        self._wait()
        super().__init__()

    def _wait(self, limit=900):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit:
            try:
                urllib.request.urlopen(f"{ENV['ODOO_URL']}/web/login", timeout=10).close()
                return
            except OSError:
                self.waited = True
                time.sleep(5)

    def __call__(self, model, method, *args, **kw):
        for _attempt in range(5):
            try:
                return super().__call__(model, method, *args, **kw)
            except ConnectionError:
                self._wait()
        return super().__call__(model, method, *args, **kw)


def pull_timed(odoo, what):
    odoo.waited = False
    result, t = timed(lambda: odoo("emboux.outbound.pull", "action_pull_now"))
    if odoo.waited:
        print(f"  ({what}: Odoo was restarted during the call: not timed, run again)")
        t = float("inf")
    return result, t


def bench_pull():
    """The platform's rows are written straight into the mail DB (as the
    policy daemon and reset-daily would: the triggers stamp them for the
    feeds); the domains in Odoo are created without sync (they exist on the
    platform already). The pull cron is paused meanwhile so that it does not
    pull the data before the measured pull does."""
    odoo = PatientOdoo()
    ref = "bench-" + uuid.uuid4().hex[:8]
    print(f"  (benchmark data: {ref})")
    suffix = f".{ref}.emboux-bench.test"
    quiet = {"emboux_no_sync": True, "tracking_disable": True, "mail_create_nolog": True}
    cron = odoo("ir.model.data", "search_read", [("module", "=", "emboux_core"), ("name", "=", "cron_outbound_pull")],
                fields=["res_id"])[0]["res_id"]
    odoo("ir.cron", "write", [cron], {"active": False})
    partner = odoo("res.partner", "create", {"name": f"Benchmark {ref}"})
    tenant = odoo("emboux.tenant", "create", {"name": f"Benchmark {ref}", "partner_id": partner, "partner_ref": ref},
                  context=quiet)
    try:
        t0 = time.perf_counter()
        for start in range(0, PULL_DOMAINS, 2000):
            odoo("emboux.domain", "create", [{"name": f"p{i:05d}{suffix}", "tenant_id": tenant}
                                             for i in range(start, start + 2000)], context=quiet)
        # Master-owned on the platform (no partner_ref): the change feed leaves them alone.
        maildb_run("INSERT INTO domains (name) SELECT 'p' || lpad(i::text, 5, '0') || %s "
                   "FROM generate_series(0, %s - 1) i", (suffix, PULL_DOMAINS))
        maildb_run("UPDATE outbound_counters c SET sent_today = d.id %% 97, sent_month = d.id %% 9973, "
                   "bytes_month = (d.id %% 9973) * 20000, bounce_count = d.id %% 7, complaint_count = d.id %% 3 "
                   "FROM domains d WHERE d.id = c.domain_id AND d.name LIKE %s", ("%" + suffix,))
        maildb_run("INSERT INTO outbound_history (domain_id, day, sent, bytes, overage, bounces, complaints) "
                   "SELECT d.id, current_date - g, (d.id + g) %% 500, ((d.id + g) %% 500) * 20000, 0, g %% 4, g %% 2 "
                   "FROM domains d, generate_series(1, %s) g WHERE d.name LIKE %s", (PULL_DAYS, "%" + suffix))
        print(f"  (set-up: {PULL_DOMAINS:,} domains in Odoo and the mail DB, {PULL_DOMAINS * PULL_DAYS:,} days of "
              f"history: {time.perf_counter() - t0:.1f} s)")

        print(f"  (waited {wait_for_feeds():.1f} s for older transactions of the mail DB to end)")
        cursors = odoo("ir.config_parameter", "search", [("key", "=like", FEED_CURSORS + "%")])
        odoo("ir.config_parameter", "unlink", cursors)
        first, t_first = pull_timed(odoo, "first pull")
        print(f"first pull (empty cursors: every domain of the platform): {t_first:.1f} s (target <= 20 s); {first}")

        maildb_run("UPDATE outbound_counters c SET sent_today = sent_today + 1, sent_month = sent_month + 1 "
                   "FROM domains d WHERE d.id = c.domain_id AND d.name LIKE %s AND d.id %% 100 = 0", ("%" + suffix,))
        print(f"  (waited {wait_for_feeds():.1f} s for older transactions of the mail DB to end)")
        incr, t_incr = pull_timed(odoo, "incremental pull")
        print(f"incremental pull, 100 counters changed: {t_incr * 1000:.0f} ms (target <= 2 s); {incr}")
        idle, t_idle = pull_timed(odoo, "idle pull")
        print(f"pull with nothing new: {t_idle * 1000:.0f} ms; {idle}")

        # 4. a year of history for 1,000 of them, pulled, then the graph the dashboard opens
        maildb_run("INSERT INTO outbound_history (domain_id, day, sent, bytes, overage, bounces, complaints) "
                   "SELECT d.id, current_date - g, (d.id + g) %% 500, 0, 0, g %% 4, 0 "
                   "FROM domains d, generate_series(%s + 1, %s) g WHERE d.name LIKE %s "
                   "AND d.name < %s", (PULL_DAYS, GRAPH_DAYS, "%" + suffix, f"p{GRAPH_DOMAINS:05d}{suffix}"))
        wait_for_feeds()
        year, t_year = pull_timed(odoo, "pull of a year")
        print(f"  (pull of {year['history']:,} more days: {t_year:.1f} s)")
        cookie = web_session()
        since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - GRAPH_DAYS * 86400))
        domain = [("tenant_id", "=", tenant), ("domain_id.name", "<", f"p{GRAPH_DOMAINS:05d}{suffix}"),
                  ("day", ">=", since)]
        timings = []
        for _ in range(5):
            groups, t = timed(lambda: call_kw(cookie, "emboux.outbound.day", "formatted_read_group", [], {
                "domain": domain, "groupby": ["day:day", "tenant_id"], "aggregates": ["__count", "sent:sum"]}))
            timings.append(t)
        rows = sum(g["__count"] for g in groups)
        print(f"open the outbound graph, {GRAPH_DAYS} days x {GRAPH_DOMAINS:,} domains ({rows:,} rows, {len(groups)} "
              f"points): best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms (target <= 1 s)")
        ok = t_first <= 20 and t_incr <= 2 and max(timings) <= 1 and incr["counters"] == 100
        return 0 if ok else 1
    finally:
        odoo("ir.cron", "write", [cron], {"active": True})
        if "--keep" in sys.argv:
            print(f"  (kept for a look: remove with `odoo_bench.py cleanup {ref}`)")
        else:
            cleanup_pull(odoo, ref)


def cleanup_pull(odoo, ref):
    suffix = f".{ref}.emboux-bench.test"
    quiet = {"emboux_no_sync": True, "tracking_disable": True}
    tenants = odoo("emboux.tenant", "search", [("partner_ref", "=", ref)], context={"active_test": False})
    ids = odoo("emboux.domain", "search", [("tenant_id", "in", tenants)], context={"active_test": False})
    for start in range(0, len(ids), 2000):
        odoo("emboux.domain", "unlink", ids[start:start + 2000], context=quiet)
    odoo("emboux.tenant", "unlink", tenants, context=quiet)
    maildb_run("DELETE FROM domains WHERE name LIKE %s", ("%" + suffix,))
    for table in ("outbound_retained", "outbound_retained_history"):
        maildb_run(f"DELETE FROM {table} WHERE domain_name LIKE %s", ("%" + suffix,))


if __name__ == "__main__":
    sys.exit(main())
