#!/usr/bin/env python3
"""Benchmark (not a test): the cost of every mail-server lookup on a big mail DB.

    var/venv/bin/python bench/maps.py [--mailboxes 1000000] [--aliases 1000000] [--lookups 20000]

Builds (once, kept for reruns) a separate database `emboux_bench` with the
connector's migrations and N mailboxes + N aliases over N/100 domains, then
measures, for every Postfix map the dev stack renders (var/mail/etc/postfix/
pgsql-*.cf) and for Dovecot's passdb/userdb queries (dovecot-sql.conf.ext):

  * the query as the mail server sends it, over one kept connection, as the
    mail server's own role (per lookup: mean, p50, p99), hits and misses;
  * Postfix's own client: `postmap -q - pgsql:map.cf` (one process, one
    connection, all keys through stdin), minus its start-up cost;
  * EXPLAIN ANALYZE of one lookup (index use, planning + execution time).

Needs ./dev up (the rendered configuration, PostgreSQL) and root (creates the
database as the postgres superuser). Prints figures for docs/mail-server.md.
The database (about 0.5 GB at 1M + 1M) is kept for reruns; --drop removes it.
"""
import argparse
import os
import pathlib
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from devenv import dev_env

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH_DB = "emboux_bench"




def with_db(dsn, db):
    u = urlsplit(dsn)
    return urlunsplit((u.scheme, u.netloc, "/" + db, u.query, u.fragment))


def ensure_db(env, n_mailboxes, n_aliases):
    owner_dsn = with_db(env["MAILDB_DSN"], BENCH_DB)
    exists = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-p", env["PGPORT"],
                             "-qAtc", f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DB}'"],
                            capture_output=True, text=True).stdout.strip()
    if not exists:
        subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-p", env["PGPORT"],
                        "-qc", f'CREATE DATABASE "{BENCH_DB}" OWNER emboux TEMPLATE template0'], check=True)
    sys.path.insert(0, str(ROOT / "connector"))
    from emboux_connector.migrate import migrate
    migrate(owner_dsn)
    conn = psycopg2.connect(owner_dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM mailboxes")
    have_mb = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM aliases")
    have_al = cur.fetchone()[0]
    per_domain = 100
    n_domains = max(1, max(n_mailboxes, n_aliases) // per_domain)
    if have_mb != n_mailboxes or have_al != n_aliases:
        print(f"loading {n_domains} domains, {n_mailboxes} mailboxes, {n_aliases} aliases into {BENCH_DB} ...",
              flush=True)
        t0 = time.monotonic()
        for table in ("aliases", "mailboxes", "domains"):
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")   # no change log for bench rows
        cur.execute("TRUNCATE aliases, mailboxes, domains CASCADE")
        cur.execute("""INSERT INTO domains (name, status)
                       SELECT 'bd' || i || '.bench.test', CASE WHEN i %% 100 = 0 THEN 'suspended' ELSE 'active' END
                       FROM generate_series(1, %s) i""", (n_domains,))
        cur.execute("""INSERT INTO mailboxes (domain_id, email, local_part, password_hash, quota_mb)
                       SELECT d.id, 'u' || j || '@' || d.name, 'u' || j,
                              '{SHA512-CRYPT}$6$benchsalt$abcdefghijklmnopqrstuvwxyz', 100
                       FROM domains d, generate_series(1, %s) j""", (n_mailboxes // n_domains,))
        cur.execute("""INSERT INTO aliases (domain_id, source, destination)
                       SELECT d.id, 'a' || j || '@' || d.name, 'u' || j || '@' || d.name
                       FROM domains d, generate_series(1, %s) j""", (n_aliases // n_domains,))
        for table in ("aliases", "mailboxes", "domains"):
            cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        cur.execute("ANALYZE")
        print(f"  loaded in {time.monotonic() - t0:.0f} s", flush=True)
    cur.execute("SELECT count(*) FROM domains")
    n_domains = cur.fetchone()[0]
    conn.close()
    return n_domains, n_mailboxes // n_domains, n_aliases // n_domains


def parse_cf(path):
    """Postfix pgsql_table(5) file -> dict (continuation lines joined)."""
    out, key = {}, None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and key:
            out[key] += " " + line.strip()
            continue
        key, _, val = line.partition("=")
        key = key.strip()
        out[key] = val.strip()
    return out


def parse_dovecot_sql(path):
    out, key = {}, None
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, val = line.partition("=")
        out[key.strip()] = " ".join(val.split())
    return out


def expand(query, key, dovecot=False):
    """Postfix's %s/%u/%d (or Dovecot's %u/%n/%d) with SQL quoting."""
    local, _, domain = key.rpartition("@") if "@" in key else ("", "", key)
    def q(s):
        return s.replace("'", "''")
    vals = {"s": key, "u": key if dovecot else local, "d": domain, "n": local}
    return re.sub(r"%([sudn%])", lambda m: "%" if m.group(1) == "%" else q(vals[m.group(1)]), query)


def keys_for(name, n, n_domains, per_mb, per_al, rnd):
    """Half hits, half misses, of the kind the map is asked for."""
    keys = []
    for i in range(n):
        d = rnd.randint(1, n_domains)
        hit = i % 2 == 0
        if name == "pgsql-domains.cf":
            keys.append(f"bd{d}.bench.test" if hit else f"nx{d}.example.org")
        elif name == "pgsql-aliases.cf" and rnd.random() < 0.5:
            keys.append(f"a{rnd.randint(1, per_al)}@bd{d}.bench.test" if hit else f"zz{i}@bd{d}.bench.test")
        else:
            keys.append(f"u{rnd.randint(1, per_mb)}@bd{d}.bench.test" if hit else f"zz{i}@bd{d}.bench.test")
    return keys


def time_sql(dsn, query, keys, dovecot=False):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    for k in keys[:200]:                      # warm the connection and the cache
        cur.execute(expand(query, k, dovecot))
        cur.fetchall()
    times, found = [], 0
    for k in keys:
        sql = expand(query, k, dovecot)
        t0 = time.perf_counter()
        cur.execute(sql)
        rows = cur.fetchall()
        times.append(time.perf_counter() - t0)
        found += bool(rows and rows[0][0] is not None)
    cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) " + expand(query, keys[0], dovecot))
    plan = [r[0] for r in cur.fetchall()]
    conn.close()
    times.sort()
    def ms(x):
        return x * 1000
    return {"mean": ms(statistics.mean(times)), "p50": ms(times[len(times) // 2]),
            "p99": ms(times[int(len(times) * 0.99)]), "found": found, "plan": plan}


def time_postmap(config_dir, cf_path, keys):
    def run(ks):
        t0 = time.perf_counter()
        p = subprocess.run(["postmap", "-c", str(config_dir), "-q", "-", f"pgsql:{cf_path}"],
                           input="\n".join(ks) + "\n", capture_output=True, text=True, check=False)
        if p.returncode not in (0, 1) or "fatal" in p.stderr:
            raise SystemExit(f"postmap failed: {p.stderr.strip()}")
        return time.perf_counter() - t0, len(p.stdout.splitlines())
    startup = min(run(keys[:1])[0] for _ in range(3))
    total, found = run(keys)
    return (total - startup) / len(keys) * 1000, startup * 1000, found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailboxes", type=int, default=1_000_000)
    ap.add_argument("--aliases", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    ap.add_argument("--show-plans", action="store_true", help="print every EXPLAIN ANALYZE in full")
    ap.add_argument("--drop", action="store_true", help=f"drop the {BENCH_DB} database and exit")
    args = ap.parse_args()
    env = dev_env()
    if args.drop:
        subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-p", env["PGPORT"],
                        "-qc", f'DROP DATABASE IF EXISTS "{BENCH_DB}"'], check=True)
        return
    n_domains, per_mb, per_al = ensure_db(env, args.mailboxes, args.aliases)
    rnd = random.Random(42)
    pf_dsn = with_db(env["MAILDB_POSTFIX_DSN"], BENCH_DB)
    dv_dsn = with_db(env["MAILDB_DOVECOT_DSN"], BENCH_DB)
    etc = pathlib.Path(env.get("POSTFIX_CONFIG_DIR") or ROOT / "var/mail/etc/postfix")
    print(f"\n{BENCH_DB}: {n_domains} domains, {n_domains * per_mb} mailboxes, {n_domains * per_al} aliases;"
          f" {args.lookups} lookups per map, half of them misses\n")
    print(f"{'map / query':34} {'SQL mean':>9} {'p50':>7} {'p99':>7} {'postmap':>9}  plan")
    tmpdir = tempfile.mkdtemp(prefix="emboux-bench-")
    results = []
    for cf in sorted(etc.glob("pgsql-*.cf")):
        conf = parse_cf(cf)
        keys = keys_for(cf.name, args.lookups, n_domains, per_mb, per_al, rnd)
        r = time_sql(pf_dsn, conf["query"], keys)
        bench_cf = pathlib.Path(tmpdir) / cf.name
        bench_cf.write_text(cf.read_text().replace(f"dbname = {conf['dbname']}", f"dbname = {BENCH_DB}"))
        os.chmod(bench_cf, 0o600)
        pm, start, pm_found = time_postmap(etc, bench_cf, keys)
        if pm_found != r["found"]:
            print(f"  warning: {cf.name}: postmap found {pm_found}, SQL found {r['found']}")
        results.append((cf.name, r, pm, start))
    dovecot_conf = pathlib.Path(env.get("DOVECOT_CONFIG", ROOT / "var/mail/etc/dovecot/dovecot.conf"))
    sqlconf = parse_dovecot_sql(dovecot_conf.parent / "dovecot-sql.conf.ext")
    for qname in ("password_query", "user_query"):
        keys = keys_for("dovecot", args.lookups, n_domains, per_mb, per_al, rnd)
        r = time_sql(dv_dsn, sqlconf[qname], keys, dovecot=True)
        results.append((f"dovecot {qname}", r, None, None))
    for name, r, pm, _start in results:
        scan_re = r"(Index Only Scan|Index Scan|Seq Scan|Bitmap Heap Scan) using \w+|Seq Scan on \w+"
        scans = sorted({m.group(0) for line in r["plan"] for m in re.finditer(scan_re, line)})
        exec_line = next((line.strip() for line in r["plan"] if line.strip().startswith("Execution Time")), "")
        pm_s = f"{pm:.3f}" if pm is not None else "-"
        print(f"{name:34} {r['mean']:8.3f}ms {r['p50']:6.3f} {r['p99']:6.3f} {pm_s:>8}ms  "
              f"{'; '.join(scans)} ({exec_line})")
        if args.show_plans:
            print("    " + "\n    ".join(r["plan"]))
    if results and results[0][3]:
        print(f"\npostmap start-up (process + connect), subtracted above: ~{results[0][3]:.0f} ms")
    print("SQL columns: wall time per lookup over one kept connection, client included.")


if __name__ == "__main__":
    main()
