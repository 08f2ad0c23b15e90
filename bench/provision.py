#!/usr/bin/env python3
"""Provisioning benchmark (not a test): domains, 10,000 mailboxes and aliases
through the real HTTP API, then a delta sync of 100 changes with 100,000 rows
present. Prints figures beside the targets of issue 2.

    ./dev up && var/venv/bin/python bench/provision.py [--mailboxes 10000] [--workers 8]
"""

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import time
import uuid

import psycopg2
import requests

from devenv import dev_env


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_parallel(fn, items, workers):
    latencies, errors = [], 0
    session_per_thread = {}

    def call(item):
        import threading
        s = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        t0 = time.perf_counter()
        ok = fn(s, item)
        return time.perf_counter() - t0, ok

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        for dt, ok in pool.map(call, items):
            latencies.append(dt)
            errors += 0 if ok else 1
    return time.perf_counter() - t0, latencies, errors


def report(label, wall, latencies, errors, target=None):
    n = len(latencies)
    if not n:
        return
    line = (f"{label:<28} {n:>7} req  {wall:7.1f} s  {n / wall:8.1f} req/s  "
            f"p50 {pct(latencies, 50) * 1000:6.1f} ms  p99 {pct(latencies, 99) * 1000:6.1f} ms  errors {errors}")
    if target:
        line += f"   [target: {target}]"
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=20)
    ap.add_argument("--mailboxes", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--history", type=int, default=100000, help="rows present for the delta sync")
    args = ap.parse_args()
    env = dev_env()
    base, master = env["EMBOUX_API_URL"], env["EMBOUX_API_KEY"]
    run = uuid.uuid4().hex[:8]
    hdr = {"Authorization": f"Bearer {master}"}
    r = requests.post(f"{base}/api-keys/", headers=hdr, json={"partner_ref": f"bench-{run}", "domains_allowed": 0,
                      "mailboxes_per_domain": 0, "aliases_per_mailbox": 0})
    r.raise_for_status()
    token = r.json()["token"]
    chdr = {"Authorization": f"Bearer {token}"}
    print(f"EmBoux provisioning benchmark, {os.cpu_count()} cores, {args.workers} client threads, "
          f"password hash {{SHA512-CRYPT}} (Dovecot's default cost)")

    domains = [f"b{i}-{run}.bench-emboux.net" for i in range(args.domains)]
    wall, lat, err = run_parallel(
        lambda s, d: s.post(f"{base}/domains/", headers=chdr, json={"name": d}).status_code == 201,
        domains, args.workers)
    report("domains", wall, lat, err)

    boxes = [(domains[i % len(domains)], f"user{i}") for i in range(args.mailboxes)]
    wall, lat, err = run_parallel(
        lambda s, b: s.post(f"{base}/users/", headers=chdr, json={
            "domain_name": b[0], "email": f"{b[1]}@{b[0]}", "password": f"pw-{b[1]}-secret"}).status_code == 201,
        boxes, args.workers)
    report("mailboxes", wall, lat, err, target=f"{args.mailboxes} in <= 60 s")
    box_wall = wall

    wall, lat, err = run_parallel(
        lambda s, b: s.post(f"{base}/aliases/", headers=chdr, json={
            "domain_name": b[0], "source": f"alias-{b[1]}@{b[0]}", "destination": f"{b[1]}@{b[0]}"}).status_code == 201,
        boxes, args.workers)
    report("aliases", wall, lat, err)

    # Delta sync: make sure `history` change rows are present, then time a
    # sync that returns exactly 100 changes.
    conn = psycopg2.connect(env["MAILDB_DSN"])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM changes")
        present = cur.fetchone()[0]
        if present < args.history:
            cur.execute("INSERT INTO changes (partner_ref, resource, key, action, changed_at) "
                        "SELECT %s, 'mailbox', 'filler' || g || '@x.net', 'created', now() - interval '1 day' "
                        "FROM generate_series(1, %s) g", (f"bench-{run}", args.history - present))
        cur.execute("SELECT count(*) FROM changes")
        present = cur.fetchone()[0]
    # Catch up first (a feed answers at most 10,000 changes a page).
    page = requests.get(f"{base}/api-keys/{token}/usage", headers=chdr).json()
    while page["truncated"]:
        page = requests.get(f"{base}/api-keys/{token}/usage", headers=chdr,
                            params={"since": page["next_since"]}).json()
    since = page["next_since"]
    time.sleep(0.01)
    for i in range(100):  # 100 changes: new mailboxes in a fresh domain
        requests.post(f"{base}/users/", headers=chdr, json={
            "domain_name": domains[0], "email": f"sync{i}@{domains[0]}", "password": "pw-sync-secret"}
        ).raise_for_status()
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        body = requests.get(f"{base}/api-keys/{token}/usage", headers=chdr, params={"since": since}).json()
        times.append(time.perf_counter() - t0)
    assert len(body["changes"]) == 100, len(body["changes"])
    print(f"{'delta sync, 100 changes':<28} {present:>7} change rows present  median "
          f"{statistics.median(times) * 1000:6.1f} ms  max {max(times) * 1000:6.1f} ms   [target: <= 100 ms]")
    if not args.mailboxes:
        return 0
    print(f"\nsummary: {args.mailboxes} mailboxes in {box_wall:.1f} s (target 60 s): "
          f"{'OK' if box_wall <= 60 else 'MISSED'}; delta sync {statistics.median(times) * 1000:.1f} ms "
          f"(target 100 ms): {'OK' if statistics.median(times) <= 0.1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
