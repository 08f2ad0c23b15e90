#!/usr/bin/env python3
"""Benchmark (not a test): EmBoux's mail path against a bare Postfix + Dovecot, in one run.

    var/venv/bin/python bench/mailpath.py [--quick] [--only inbound,latency,submission,probes]

Against the running dev stack (./dev up), as root. It starts a *reference*:
the same Postfix and Dovecot binaries as private instances in a temporary
directory, on other ports, with static hash maps / a passwd-file, no EmBoux
lookup, no policy service, no milter, no quota (the physical limit of this
machine for this software), relaying to the same SMTP sink. It then measures
both, side by side, with the same client, the same mailboxes and the same
messages:

  * inbound: SMTP accept rate and end-to-end delivery rate (until the message
    is a file in the mailbox's Maildir) at 1, 4 and 16 connections, 4 KB and
    100 KB messages;
  * per-command latency (MAIL, RCPT, DATA of 4 KB: p50, p99) on one warm
    inbound connection;
  * submission (STARTTLS, AUTH once per connection; EmBoux: policy daemon,
    DKIM signing by OpenDKIM, every rule on) accept rate and per-message
    latency, relayed to the dev stack's sink;
  * where the time goes: every Postfix lookup of EmBoux's RCPT, each asked
    through Postfix's own proxymap socket exactly as smtpd asks it, Dovecot's
    quota-status, the policy daemon, and the DKIM milter (the reference's
    submission with and without EmBoux's OpenDKIM as milter).

Each figure is printed with the ratio EmBoux / reference. The tenant, domain
and reference instance are removed afterwards. See docs/benchmarks.md.
"""
import argparse
import os
import pathlib
import socket
import subprocess
import sys
import time

import psycopg2

import proc_cpu
from devenv import ROOT, dev_env
from mailpath_clients import (EHLO, SENDER, Target, Tenant, command_latency, inbound, pct,
                              submission)
from mailpath_reference import Reference, pid_file


# --- where the time goes: EmBoux's parts asked one by one ---------------------------------------
def proxymap_maps(config_dir):
    """{table: (restriction, key kind)} of every proxy: map in EmBoux's main.cf."""
    out = subprocess.run(["postconf", "-c", config_dir, "-n"], capture_output=True, text=True).stdout
    tables = {}
    for line in out.splitlines():
        name, _, value = line.partition(" = ")
        for word in value.replace(",", " ").split():
            if word.startswith("proxy:pgsql:"):
                table = word[len("proxy:"):].replace("$config_directory", config_dir)
                if not tables.get(table, "smtpd").startswith("smtpd"):  # name it by smtpd's own parameter
                    tables[table] = name
                tables.setdefault(table, name)
    return tables


class Proxymap:
    """Postfix's proxymap protocol (attributes as NUL-terminated name/value
    pairs, a request ends with an empty name), spoken on its private socket
    exactly as smtpd does: one kept connection, one request per lookup."""

    def __init__(self, queue_dir):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(pathlib.Path(queue_dir) / "private" / "proxymap"))
        self.sock.settimeout(0.2)
        try:  # newer Postfix announces its protocol first
            self.buf = self.sock.recv(4096)
        except TimeoutError:
            self.buf = b""
        self.buf = b"" if self.buf.startswith(b"protocol\0") else self.buf
        self.sock.settimeout(10)

    def lookup(self, table, key, flags=524352):
        req = b"".join(x + b"\0" for x in (b"request", b"lookup", b"table", table.encode(), b"flags",
                                          str(flags).encode(), b"key", key.encode())) + b"\0"
        self.sock.sendall(req)
        while True:
            if self.buf.count(b"\0") >= 5 and b"\0\0" in self.buf:
                parts = self.buf.split(b"\0")
                # status, n, value, v, '' (end)
                end = 5
                self.buf = b"\0".join(parts[end:])
                return int(parts[1]), parts[3].decode()
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("proxymap closed the connection")
            self.buf += chunk


def time_calls(fn, n):
    for _ in range(20):
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return pct(ts, 0.5), pct(ts, 0.99)


def policy_request(path_or_port, attrs):
    if isinstance(path_or_port, int):
        s = socket.create_connection(("127.0.0.1", path_or_port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path_or_port)
    f = s.makefile("rb")
    req = ("".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n").encode()
    answer = []

    def ask():
        s.sendall(req)
        answer.clear()
        while True:
            line = f.readline()
            if line in (b"\n", b""):
                return
            answer.append(line)
    return s, ask, answer


def probes(env, tenant, n):
    rows = []
    queue = env["POSTFIX_QUEUE_DIR"]
    pm = Proxymap(queue)
    rcpt = tenant.users[0]
    for table, param in proxymap_maps(env["POSTFIX_CONFIG_DIR"]).items():
        key = tenant.domain if "domains.cf" in table and "relay" not in table else rcpt
        try:
            p50, p99 = time_calls(lambda t=table, k=key: pm.lookup(t, k), n)
            rows.append((f"proxymap {pathlib.Path(table.split(':', 1)[1]).name} ({param})", p50, p99))
        except Exception as e:  # a map proxymap does not serve: say so
            rows.append((f"proxymap {table}: {e}", float("nan"), float("nan")))
    base = {"request": "smtpd_access_policy", "protocol_name": "ESMTP", "client_address": "127.0.0.1",
            "client_name": "localhost", "helo_name": EHLO, "recipient": rcpt, "size": "4096"}
    s, ask, _ = policy_request(str(pathlib.Path(queue) / "private" / "quota-status"),
                               dict(base, protocol_state="RCPT", sender=SENDER))
    rows.append(("Dovecot quota-status (RCPT, port 25)",) + time_calls(ask, n))
    s.close()
    attrs = dict(base, protocol_state="RCPT", sender=tenant.sender, sasl_username=tenant.sender,
                 sasl_method="PLAIN", recipient="someone@example.org", recipient_count="0",
                 queue_id="")
    s, ask, ans = policy_request(int(env["POLICYD_PORT"]), attrs)
    rows.append(("emboux-policyd (RCPT, submission)",) + time_calls(ask, n))
    s.close()
    return rows


# --- the run -----------------------------------------------------------------------------------
def emboux_masters(env):
    """The dev stack's masters whose CPU is counted (proc_cpu.py), by their PID files."""
    run = ROOT / "var" / "run"
    masters = {"Postfix": pid_file(pathlib.Path(env["POSTFIX_QUEUE_DIR"]) / "pid" / "master.pid"),
               "Dovecot": pid_file(run / "dovecot.pid"), "Rspamd": pid_file(run / "rspamd.pid"),
               "emboux-policyd": pid_file(run / "policyd.pid"), "postsrsd": pid_file(run / "postsrsd.pid"),
               "OpenDKIM": pid_file(run / "opendkim.pid")}
    with psycopg2.connect(env["MAILDB_DSN"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")  # its parent is the postmaster
        with open(f"/proc/{cur.fetchone()[0]}/stat") as f:
            masters["PostgreSQL"] = int(f.read().rsplit(")", 1)[1].split()[1])
    return {k: v for k, v in masters.items() if v}


def emboux_targets(env):
    """(EmBoux without its content milter, EmBoux as it runs): the first is the
    dev stack's SMTP_UNFILTERED_PORT and SUBMISSION_UNFILTERED_PORT
    (scripts/dev/stack-mail.sh: copies of port 25's and submission's services,
    same Postfix, same options, no Rspamd); without them, both are the real ports."""
    vmail, masters = pathlib.Path(env["VMAIL_DIR"]), emboux_masters(env)
    filtered = Target("EmBoux + Rspamd", int(env["SMTP_PORT"]), int(env["SUBMISSION_PORT"]), vmail, masters)
    if not env.get("SMTP_UNFILTERED_PORT") or not env.get("SUBMISSION_UNFILTERED_PORT"):
        return filtered, filtered
    return Target("EmBoux", int(env["SMTP_UNFILTERED_PORT"]), int(env["SUBMISSION_UNFILTERED_PORT"]), vmail,
                  masters), filtered


def ratio(a, b):
    return f"{a / b:5.2f}x" if b else "   - "


def run_inbound(targets, tenant, scale, conns_list):
    """Each size and connection count on every target in turn. targets: the
    reference, EmBoux (port 25's path without its content milter) and, when
    the stack has that port, EmBoux + Rspamd (port 25 as the Internet meets it)."""
    names = [tg.name for tg in targets]
    print("\ninbound, msg/s accepted / delivered  " + "".join(f"{n:>26s}" for n in names)
          + "   EmBoux / reference" + ("   + Rspamd / EmBoux" if len(targets) > 2 else "")
          + "\n  (ratios of the delivery rates)")
    for size, n in ((4096, int(800 * scale)), (102400, int(300 * scale))):
        for conns in conns_list:
            res = [inbound(tg, tenant.users, conns, size, n) for tg in targets]
            line = f"  {size // 1024:3d} KB x {n:4d}, {conns:2d} conn        "
            line += "".join(f"{r[0]:14.1f} / {r[1]:7.1f}  " for r in res)
            line += f"    {ratio(res[1][1], res[0][1])}"
            if len(targets) > 2:
                line += f"            {ratio(res[2][1], res[1][1])}"
            errs = {tg.name: r[2][:2] for tg, r in zip(targets, res, strict=True) if r[2]}
            print(line + (f"   errors: {errs}" if errs else ""))


def run_cpu(targets, tenant, n, conns=4, kind="inbound"):
    """CPU per message of each part, 4 KB at `conns` connections (proc_cpu.py);
    kind "submission": through the targets' submission ports."""
    table, names = {}, [tg.name for tg in targets]
    for tg in targets:
        before, t0 = proc_cpu.snapshot(), os.times()
        if kind == "inbound":
            inbound(tg, tenant.users, conns, 4096, n)
        else:
            submission(tg.submission_port, tenant.sender, conns, n)
        after, t1 = proc_cpu.snapshot(), os.times()
        for part, sec in proc_cpu.cpu_by_part(before, after, tg.masters).items():
            table.setdefault(part, {})[tg.name] = sec * 1000 / n
        table.setdefault("the bench's SMTP client", {})[tg.name] = \
            ((t1.user - t0.user) + (t1.system - t0.system)) * 1000 / n
    print(f"\nwhere the CPU goes, {kind} 4 KB x {n}, {conns} connections: ms of CPU per message"
          "\n  " + " " * 40 + "".join(f"{n:>22s}" for n in names))
    rows = sorted(table.items(), key=lambda kv: -max(kv[1].values()))
    for part, per in rows + [("total", {nm: sum(r.get(nm, 0) for _, r in rows) for nm in names})]:
        if max(per.values()) >= 0.05 or part == "total":
            print(f"  {part[:40]:40s}" + "".join(f"{per.get(nm, 0):22.2f}" for nm in names))


def run_latency(targets, ref, tenant, n):
    lat = [command_latency(tg, tenant.users, n) for tg in targets]
    lm = None
    if ref.inbound_milters:
        lm = command_latency(Target("reference + milters", ref.smtp_milter_port, None, ref.vmail), tenant.users, n,
                             strict=False)
        targets, lat = targets + [Target(f"reference + {ref.inbound_milters}", 0, None, None)], lat + [lm]
    print(f"\nper command on one warm inbound connection ({n} transactions), ms p50 / p99"
          "\n      " + "".join(f"{tg.name[:30]:>32s}" for tg in targets) + "   EmBoux / reference p50")
    for cmd in ("MAIL", "RCPT", "DATA"):
        print(f"  {cmd:4s}" + "".join(f"{r[cmd][0]:21.2f} / {r[cmd][1]:7.2f}" for r in lat)
              + f"   {ratio(lat[1][cmd][0], lat[0][cmd][0])}")
    if lm and lm["refused"]:
        print(f"  (reference + milters: {lm['refused']} of {n} transactions refused by the milter)")


def run_submission(targets, ref, tenant, n):
    """targets: EmBoux (submission's path without Rspamd: AUTH, every rule of
    the policy daemon, OpenDKIM) and, when the stack has that port, EmBoux +
    Rspamd (submission as users meet it: outbound scanning first)."""
    print("\nsubmission (STARTTLS, AUTH once per connection, 4 KB to an outside address)"
          "\n" + " " * 56 + "accept msg/s   per message p50 / p99 ms   AUTH p50 ms")
    results = {}
    ports = [("reference", ref.submission_port),
             (f"reference + EmBoux's OpenDKIM ({ref.dkim_milter})", ref.submission_dkim_port)]
    ports += [(tg.name, tg.submission_port) for tg in targets]
    for conns in (1, 4):
        for name, port in ports:
            rate, p50, p99, auth, errs = submission(port, tenant.sender, conns, n)
            results[(name, conns)] = (rate, p50)
            print(f"  {conns} conn {name[:48]:48s} {rate:7.1f}    {p50:8.2f} / {p99:7.2f}        {auth:6.2f}"
                  + (f"   errors: {len(errs)} {errs[:2]}" if errs else ""))
        e, r = results[(targets[0].name, conns)], results[("reference", conns)]
        line = (f"  {conns} conn ratio EmBoux / reference: accept {ratio(e[0], r[0])}, "
                f"latency p50 {ratio(e[1], r[1])}")
        if len(targets) > 1:
            f = results[(targets[1].name, conns)]
            line += f"; + Rspamd / EmBoux: accept {ratio(f[0], e[0])}"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages (a smoke run)")
    ap.add_argument("--only", default="inbound,cpu,latency,submission,probes")
    ap.add_argument("--conns", default="1,4,16")
    ap.add_argument("--dkim-milter", help="the reference's DKIM milter (default: EmBoux's, OPENDKIM_MILTER)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    if os.geteuid() != 0:
        sys.exit("run as root: the reference Postfix and Dovecot are started as private instances")
    env = dev_env()
    scale = 0.25 if args.quick else 1
    tenant = Tenant(env)
    ref = None
    try:
        tenant.create()
        ref = Reference(env, tenant, args.dkim_milter or env.get("OPENDKIM_MILTER")
                        or f"inet:127.0.0.1:{env['OPENDKIM_PORT']}")
        ref.start()
        emboux, filtered = emboux_targets(env)
        reference = Target("reference", ref.smtp_port, ref.submission_port, ref.vmail, ref.masters())
        inbound_targets = [reference, emboux] + ([filtered] if filtered is not emboux else [])
        sub_targets = [emboux] + ([filtered] if filtered is not emboux else [])
        load = os.getloadavg()
        print(f"mailpath: {', '.join(f'{tg.name} (127.0.0.1:{tg.smtp_port})' for tg in inbound_targets)}; "
              f"reference in {ref.root}; {os.cpu_count()} CPUs, load {load[0]:.2f}; "
              f"DKIM key: {'yes' if tenant.dkim else 'NO'}")
        if filtered is emboux:
            print("  (no SMTP_UNFILTERED_PORT / SUBMISSION_UNFILTERED_PORT in var/dev.env: EmBoux is measured "
                  "with Rspamd only; ./dev up adds them)")
        # warm every target: smtpd, proxymap, DB sessions, Dovecot's processes (and the usage rows)
        for tg in inbound_targets:
            inbound(tg, tenant.users, 2, 4096, 40)
        if "inbound" in parts:
            run_inbound(inbound_targets, tenant, scale, list(map(int, args.conns.split(","))))
        if "cpu" in parts:
            run_cpu(inbound_targets, tenant, int(400 * scale))
        if "latency" in parts:
            run_latency(inbound_targets, ref, tenant, int(1000 * scale))
        if "submission" in parts:
            run_submission(sub_targets, ref, tenant, int(600 * scale))
        if "cpu" in parts and "submission" in parts:
            run_cpu([Target("reference", 0, ref.submission_port, None, ref.masters()),
                     Target("reference + OpenDKIM", 0, ref.submission_dkim_port, None,
                            {**ref.masters(), "OpenDKIM": emboux.masters.get("OpenDKIM")})]
                    + sub_targets, tenant, int(400 * scale), kind="submission")
        if "probes" in parts:
            print("\nwhere the time goes: each part asked alone, as the mail server asks it (ms)     p50     p99")
            for name, p50, p99 in probes(env, tenant, int(1000 * scale)):
                print(f"  {name:76s} {p50:6.3f}  {p99:6.3f}")
    finally:
        if ref is not None:
            ref.stop()
        tenant.remove()


if __name__ == "__main__":
    main()
