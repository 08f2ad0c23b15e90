#!/usr/bin/env python3
"""Benchmark (not a test): emboux-policyd vs postfwd1 over the policy protocol.

    var/venv/bin/python bench/policyd_bench.py [--seconds 5] [--repeats 3] [--conns 1,8,32] [--workers 1,2]

A load generator keeps 1, 8 and 32 persistent connections, one request in
flight on each (as smtpd does), and sends what smtpd sends for a submitted
message: RCPT, then END-OF-MESSAGE, each with the thirty-odd attributes of
Postfix 3.7's smtpd on a submission service (unique queue id, size,
recipient_count, TLS and SASL attributes). Every request is a decision; a
message is two. The generator is built to cost far less than what it
measures (payloads built before the clock starts, a callback state machine
per connection): against a server answering DUNNO with no state it does
about 80,000 requests/s here.

* emboux-policyd: fresh daemons on free ports, with 1 worker (its default
  on 2 CPUs) and with 2, every rule on: 100 sending domains
  (provider-verified, outbound active), mailbox lookup, 10,000 suppressed
  addresses, daily / monthly / warm-up / transfer caps, hourly throttle,
  spike detection over 7 days of history; caps set high so that the answers
  are DUNNO. Each run also sends 5 % of its messages from a domain with a
  hard monthly cap of 300 that the run overshoots on purpose: the bench
  checks exactly 300 were accepted (zero overshoot).
* postfwd1 (Debian's postfwd, installed here on first run) with a
  per-sender-domain rate limit (rate(sender_domain/...)), request cache off.

Both are measured in the same run; then 1,000,000 history rows are added
(for the bench domains) and everything is measured again. Results are
printed as a table (decisions/s, p50, p99, the ratio, and the CPU steal of
the run: on a shared VM a figure taken while the hypervisor gives our CPUs
to others is theirs, not ours, so a run with more than --max-steal % is run
again); record them in docs/outbound.md. The bench
domains are removed at the end.
"""

import argparse
import asyncio
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from time import perf_counter

import psycopg2

from devenv import export_dev_env
from emboux_connector.policy.daemon import tune_runtime

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from stack_clients import free_port, wait_port  # noqa: E402 (shared with the tests)
BENCH_SUFFIX = ".policyd-bench.test"
N_DOMAINS = 100
CAPPED = 300


# --- fixtures in the mail DB -------------------------------------------------------
def setup_db(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cleanup_db(cur)
    cur.execute("""
        INSERT INTO domains (name, outbound_daily_limit, outbound_monthly_limit, warmup_profile,
                             spike_max_multiplier, transfer_monthly_mb, provider, provider_verified)
        SELECT 'b' || i || %s, 100000000, 1000000000, 'standard', 5, 100000000, 'ses', true
        FROM generate_series(1, %s) i""", (BENCH_SUFFIX, N_DOMAINS))
    cur.execute("""
        INSERT INTO domains (name, outbound_daily_limit, outbound_monthly_limit, warmup_profile,
                             spike_max_multiplier)
        VALUES (%s, 0, %s, NULL, 0)""", ("capped" + BENCH_SUFFIX, CAPPED))
    cur.execute("""
        INSERT INTO mailboxes (domain_id, email, local_part, password_hash)
        SELECT id, 'sender@' || name, 'sender', '{PLAIN}x' FROM domains WHERE name LIKE %s""",
                ("%" + BENCH_SUFFIX,))
    # operator-vouched (migration 0007): a domain whose ownership is pending is not hosted
    cur.execute("UPDATE domains SET ownership = 'vouched' WHERE name LIKE %s", ("%" + BENCH_SUFFIX,))
    # warm-up past its end, 7 days of history: every rule evaluates, none binds
    cur.execute("UPDATE outbound_counters SET warmup_day = 400 WHERE domain_id IN "
                "(SELECT id FROM domains WHERE name LIKE %s)", ("%" + BENCH_SUFFIX,))
    add_history(cur, 7)
    cur.execute("""
        INSERT INTO suppression (email, reason, source_domain, provider)
        SELECT 'gone' || i || '@suppressed' || %s, 'bounce', NULL, 'bench'
        FROM generate_series(1, 10000) i ON CONFLICT DO NOTHING""", (BENCH_SUFFIX,))
    return conn


def add_history(cur, days):
    """`days` rows per bench domain (1,000,000 rows = 100 domains x 10,000 days)."""
    cur.execute("""
        INSERT INTO outbound_history (domain_id, day, sent)
        SELECT d.id, DATE '2000-01-01' + g, 1000000 FROM domains d, generate_series(0, %s - 1) g
        WHERE d.name LIKE %s AND d.name NOT LIKE 'capped%%'
        ON CONFLICT DO NOTHING""", (days, "%" + BENCH_SUFFIX))
    cur.execute("ANALYZE outbound_history")


def reset_capped(cur):
    cur.execute("UPDATE outbound_counters SET sent_today = 0, sent_month = 0, sent_hour = 0 "
                "WHERE domain_id = (SELECT id FROM domains WHERE name = %s)", ("capped" + BENCH_SUFFIX,))
    cur.execute("NOTIFY emboux_policy, '*'")      # as the reset endpoints do
    time.sleep(0.2)


def capped_count(cur):
    cur.execute("SELECT sent_month FROM outbound_counters WHERE domain_id = "
                "(SELECT id FROM domains WHERE name = %s)", ("capped" + BENCH_SUFFIX,))
    return cur.fetchone()[0]


def cleanup_db(cur):
    cur.execute("DELETE FROM outbound_messages WHERE domain_id IN (SELECT id FROM domains WHERE name LIKE %s)",
                ("%" + BENCH_SUFFIX,))
    cur.execute("DELETE FROM mailboxes WHERE email LIKE %s", ("%" + BENCH_SUFFIX,))
    cur.execute("DELETE FROM domains WHERE name LIKE %s", ("%" + BENCH_SUFFIX,))
    cur.execute("DELETE FROM suppression WHERE provider = 'bench'")


# --- the servers ----------------------------------------------------------------------
def start_policyd(dsn, logdir, workers):
    port = free_port()
    exe = pathlib.Path(sys.executable).parent / "emboux-policyd"
    with open(pathlib.Path(logdir) / "policyd.log", "ab") as log:  # the child keeps its own copy
        p = subprocess.Popen([str(exe), "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING",
                              "--workers", str(workers)],
                             env=dict(os.environ, POLICYD_DSN=dsn), stdout=log, stderr=subprocess.STDOUT)
    if not wait_port(port, timeout=20):
        sys.exit("emboux-policyd did not start")
    # until it is connected to the mail DB it answers temporary refusals
    probe = build_messages(1, 0.0)[0][1]
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(probe)
            if s.recv(4096).startswith(b"action=DUNNO"):
                break
        time.sleep(0.05)
    return p, port


def ensure_postfwd():
    if shutil.which("postfwd1") or os.path.exists("/usr/sbin/postfwd1"):
        return
    subprocess.run(["bash", "-c", '. "$ROOT/scripts/dev/common.sh"; apt_install postfwd'],
                   env=dict(os.environ, ROOT=str(ROOT)), check=True)


def start_postfwd(logdir):
    ensure_postfwd()
    port = free_port()
    rules = pathlib.Path(logdir) / "postfwd.cf"
    # per-sender-domain rate limit, as high as our caps (answers are DUNNO)
    rules.write_text("id=RATE01; protocol_state==RCPT; "
                     "action=rate(sender_domain/100000000/86400/450 4.7.1 sender domain rate exceeded)\n")
    os.chmod(logdir, 0o777)
    pidfile = pathlib.Path(logdir) / "postfwd.pid"
    # postfwd1 runs as a daemon only (Net::Server), as an unprivileged user
    with open(pathlib.Path(logdir) / "postfwd.log", "ab") as log:
        subprocess.run(["/usr/sbin/postfwd1", "-d", "-f", str(rules), "-i", "127.0.0.1", "-p", str(port),
                        "--cache=0", "--nodns", "--norulelog", "--noidlestats", "-P",
                        "-u", "nobody", "-g", "nogroup", "--pidfile", str(pidfile)],
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    if not wait_port(port, timeout=20):
        sys.exit("postfwd1 did not start (see %s)" % (pathlib.Path(logdir) / "postfwd.log"))
    for _ in range(50):
        if pidfile.exists():
            break
        time.sleep(0.1)
    return int(pidfile.read_text().split()[0]), port


def stop(p):
    if isinstance(p, int):                 # a daemon we know by its pid file
        try:
            os.kill(p, 15)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(p, 9)
        return
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


# --- the load generator ---------------------------------------------------------------
# It stands in for smtpd, which is C: it must cost far less than the daemon it
# measures, or the figures are its own. So every payload is built before the
# clock starts, and each connection is a callback state machine (no coroutine,
# no future per request): a reply arrives, its latency is noted, the next
# request goes out.
class Conn(asyncio.Protocol):
    def __init__(self, plan, taken, t_end, lat, counts):
        # plan: the messages of the run, shared by its connections; taken: how
        # many of them the connections took so far (a list of one int)
        self.plan, self.taken, self.t_end, self.lat, self.counts = plan, taken, t_end, lat, counts
        self.state = None          # (capped, eom payload) while the RCPT is answered
        self.buf = b""
        self.sent_at = 0.0
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def start(self):
        self._next_message()

    def _send(self, payload):
        self.sent_at = perf_counter()
        self.transport.write(payload)

    def _next_message(self):
        if perf_counter() >= self.t_end:
            if not self.done.done():
                self.done.set_result(None)
            return
        capped, rcpt, eom = self.plan[self.taken[0] % len(self.plan)]
        self.taken[0] += 1
        self.counts["capped_tried"] += capped
        self.state = (capped, eom)
        self.pending_eom = False
        self._send(rcpt)

    def data_received(self, data):
        self.buf += data
        if not self.buf.endswith(b"\n\n"):
            return                  # one request in flight: one reply, maybe in pieces
        now = perf_counter()
        reply, self.buf = self.buf[:-2], b""
        self.lat.append(now - self.sent_at)
        counts = self.counts
        counts["decisions"] += 1
        dunno = reply.lower() == b"action=dunno"
        capped, eom = self.state
        if not self.pending_eom:            # the RCPT answer
            if dunno:
                self.pending_eom = True
                self._send(eom)
                return
            if not capped:
                counts["other"] += 1
        elif capped:                        # the END-OF-MESSAGE answer
            counts["capped_ok"] += dunno
        elif not dunno:
            counts["other"] += 1
        self._next_message()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_exception(ConnectionError("closed"))


def build_messages(n, capped_share):
    """What smtpd sends for n submitted messages: RCPT, then
    END-OF-MESSAGE, every attribute Postfix 3.7's smtpd puts in a policy
    request on a submission service (TLS, SASL), unique queue ids."""
    every = int(1 / capped_share) if capped_share else 0
    out = []
    for i in range(1, n + 1):
        conn_no = i % 32                # client attributes of 32 smtpd processes
        capped = bool(every) and (i % every == 0)
        dom = ("capped" if capped else f"b{(i * 7 + conn_no) % N_DOMAINS + 1}") + BENCH_SUFFIX
        login = "sender@" + dom
        qid = uuid.uuid4().hex[:14].upper()
        rcpt = f"rcpt{i}@example.org"
        who = {"i": i, "conn_no": conn_no, "login": login, "rcpt": rcpt, "qid": qid}
        out.append((capped, _smtpd_request("RCPT", 0, 0, **who), _smtpd_request("END-OF-MESSAGE", 1, 2048, **who)))
    return out


def _smtpd_request(state, count, size, *, i, conn_no, login, rcpt, qid):
    """What Postfix 3.7's smtpd sends for one recipient of a submitted message."""
    ip = f"192.0.2.{conn_no % 250 + 1}"
    return (f"request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\n"
            f"client_address={ip}\nclient_name=client{conn_no}.example.net\n"
            f"client_port={40000 + conn_no}\nreverse_client_name=client{conn_no}.example.net\n"
            f"server_address=192.0.2.250\nserver_port=587\nhelo_name=laptop.example.net\n"
            f"sender={login}\nrecipient={rcpt}\nrecipient_count={count}\nqueue_id={qid}\n"
            f"instance={qid.lower()}.{i}\nsize={size}\netrn_domain=\nstress=\n"
            f"sasl_method=PLAIN\nsasl_username={login}\nsasl_sender=\n"
            f"ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"
            f"encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"
            f"encryption_keysize=256\npolicy_context=submission\n"
            f"compatibility_level=3.6\nmail_version=3.7.11\n\n").encode()


def cpu_times():
    """(steal, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


async def run_load(port, nconns, seconds, capped_share):
    loop = asyncio.get_running_loop()
    # enough distinct messages that none repeats (a repeat is answered from
    # the daemon's memory of what it counted): up to 100,000 decisions/s,
    # however unevenly the connections go (one alone on a worker runs fast)
    plan, taken = build_messages(int(50_000 * seconds) + 1000, capped_share), [0]
    lat = []
    counts = {"decisions": 0, "capped_ok": 0, "capped_tried": 0, "other": 0}
    conns = []
    t_end = perf_counter() + 3600
    for _ in range(nconns):
        _, proto = await loop.create_connection(lambda: Conn(plan, taken, t_end, lat, counts), "127.0.0.1", port)
        conns.append(proto)
    steal0, total0 = cpu_times()
    t0 = perf_counter()
    for c in conns:
        c.t_end = t0 + seconds
        c.start()
    await asyncio.gather(*(c.done for c in conns))
    elapsed = perf_counter() - t0
    steal1, total1 = cpu_times()
    for c in conns:
        c.transport.close()
    repeats = max(0, taken[0] - len(plan))
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    return {"rate": counts["decisions"] / elapsed, "p50": q(0.50), "p99": q(0.99),
            "capped_ok": counts["capped_ok"], "capped_tried": counts["capped_tried"],
            "unexpected": counts["other"], "repeated_plans": repeats,
            # CPU time the hypervisor gave to other guests: figures taken while
            # it is high are the neighbours', not ours
            "steal": 100.0 * (steal1 - steal0) / max(1, total1 - total0)}


def measure(port, nconns, seconds, capped_share, repeats, max_steal=100.0):
    """The median (by rate) of `repeats` runs. A run during which the
    hypervisor took more than max_steal % of the CPUs is run again (up to
    four times as many runs in all); if too few were quiet, the least noisy
    ones fill in. Counts of the capped domain add up every run made."""
    quiet, noisy = [], []
    for _ in range(repeats * 4):
        r = asyncio.run(run_load(port, nconns, seconds, capped_share))
        (quiet if r["steal"] <= max_steal else noisy).append(r)
        if len(quiet) >= repeats:
            break
    every = quiet + noisy
    runs = quiet + sorted(noisy, key=lambda r: r["steal"])[:max(0, repeats - len(quiet))]
    runs.sort(key=lambda r: r["rate"])
    best = dict(runs[len(runs) // 2])        # the median run
    for key in ("capped_ok", "capped_tried", "unexpected", "repeated_plans"):
        best[key] = sum(r[key] for r in every)
    best["noisy_runs"] = len(noisy)
    return best


def exact(result, accepted):
    """Zero overshoot, and no undershoot: exactly min(cap, attempts)."""
    return accepted == result["capped_ok"] == min(CAPPED, result["capped_tried"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", default="1,8,32")
    ap.add_argument("--repeats", type=int, default=1, help="runs per point (median reported)")
    ap.add_argument("--max-steal", type=float, default=5.0,
                    help="a run with more CPU steal (%%) than this is run again (default 5)")
    ap.add_argument("--history", type=int, default=1_000_000, help="history rows for the second pass")
    ap.add_argument("--keep", action="store_true", help="keep the bench domains")
    ap.add_argument("--workers", default="1,2",
                    help="emboux-policyd worker counts to measure (default 1,2)")
    args = ap.parse_args()
    # The generator stands in for smtpd (C, no collector): the daemon's runtime
    # settings keep Python's GC pauses out of the latencies it measures.
    tune_runtime()
    export_dev_env()
    dsn = os.environ.get("MAILDB_DSN") or sys.exit("MAILDB_DSN is not set: run ./dev up first")
    conns = [int(x) for x in args.conns.split(",")]
    worker_counts = sorted({int(x) for x in args.workers.split(",")})
    logdir = tempfile.mkdtemp(prefix="policyd-bench-")
    db = setup_db(dsn)
    cur = db.cursor()
    print(f"# emboux-policyd vs postfwd1, {os.cpu_count()} CPUs, {args.seconds:g} s per point, logs in {logdir}")
    table = []
    try:
        for label, history in (("7 days of history", 0), (f"{args.history:,} history rows", args.history)):
            if history:
                t0 = time.time()
                add_history(cur, history // N_DOMAINS)
                cur.execute("SELECT count(*) FROM outbound_history WHERE domain_id IN "
                            "(SELECT id FROM domains WHERE name LIKE %s)", ("%" + BENCH_SUFFIX,))
                print(f"# added history: {cur.fetchone()[0]:,} rows for the bench domains "
                      f"({time.time() - t0:.0f} s)")
            ours = {w: start_policyd(dsn, logdir, w) for w in worker_counts}
            theirs, theirs_port = start_postfwd(logdir)
            try:
                for n in conns:
                    b = measure(theirs_port, n, args.seconds, 0.0, args.repeats, args.max_steal)
                    for w, (_, ours_port) in ours.items():
                        reset_capped(cur)
                        a = measure(ours_port, n, args.seconds, 0.05, args.repeats, args.max_steal)
                        accepted = capped_count(cur)
                        table.append((label, n, w, a, b, accepted))
                        print(f"{label:>24} | {n:>2} conns | emboux-policyd x{w} {a['rate']:>8,.0f}/s "
                              f"p50 {a['p50']:.2f} ms p99 {a['p99']:.2f} ms (steal {a['steal']:.0f}%) | "
                              f"postfwd1 {b['rate']:>7,.0f}/s p50 {b['p50']:.2f} ms p99 {b['p99']:.2f} ms "
                              f"(steal {b['steal']:.0f}%) | x{a['rate'] / b['rate']:.1f} | "
                              f"capped domain: {accepted} of {a['capped_tried']} accepted, cap {CAPPED} "
                              f"({'OK' if exact(a, accepted) else 'WRONG'})"
                              + (f" | {a['unexpected']} unexpected answers" if a["unexpected"] else "")
                              + (f" | {a['noisy_runs']} + {b['noisy_runs']} runs redone for steal"
                                 if a["noisy_runs"] or b["noisy_runs"] else "")
                              + (" | WARNING: messages repeated (figures flattered)"
                                 if a["repeated_plans"] or b["repeated_plans"] else ""),
                              flush=True)
            finally:
                for p, _ in ours.values():
                    stop(p)
                stop(theirs)
    finally:
        if not args.keep:
            cleanup_db(cur)
        db.close()
    print()
    print("| history | conns | workers | emboux-policyd decisions/s | p50 ms | p99 ms | postfwd1 decisions/s "
          "| p50 ms | p99 ms | ratio | steal % (ours / postfwd1) | capped domain: accepted of tried (cap 300) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, n, w, a, b, accepted in table:
        print(f"| {label} | {n} | {w} | {a['rate']:,.0f} | {a['p50']:.2f} | {a['p99']:.2f} | {b['rate']:,.0f} "
              f"| {b['p50']:.2f} | {b['p99']:.2f} | {a['rate'] / b['rate']:.1f}x "
              f"| {a['steal']:.0f} / {b['steal']:.0f} | {accepted} of {a['capped_tried']} |")
    ok = all(exact(a, acc) for _, _, _, a, _, acc in table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
