#!/usr/bin/env python3
"""Benchmark (not a test): the high-availability overlay (docker/compose.ha.yaml,
docs/scaling.md) on this machine.

    var/venv/bin/python bench/ha.py [--messages 320] [--failovers 2] [--parts rates,staleness,failover]
                                    [--reuse FILE] [--keep FILE]

As root, with the images built (tests/deploy builds them). It starts the HA
deployment under its own project (tests/deploy/ha_stack.py; --reuse a pickled
one left by --keep) and measures, side by side in one run:

  * inbound: messages to port 25 (16 connections, several messages each) sent
    to one node, then spread over both; accept rate and delivery rate (until
    IMAP counts them in the mailbox);
  * submission: the same over implicit-TLS submission (4 connections, AUTH
    once each -- Postfix allows 20 AUTH a minute per client address; policy
    daemon, Rspamd and DKIM on);
  * failover: the primary killed while the API is written to and both nodes
    receive mail: time to the first acknowledged API write started after the
    kill, to the first message accepted again by each node, to the new
    leader, and for the old primary to rejoin as a replica;
  * replica staleness: after an acknowledged API write, how long until the
    synchronous standby shows it in the mail servers' view (a reader on
    postgres:5433 would lag by that much).

Two mail nodes on one 2-core machine share its CPUs: expect a ratio, not a
doubling. Other work on the machine makes the figures noisy.
"""
import argparse
import imaplib
import math
import pathlib
import pickle
import smtplib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "deploy"), str(ROOT / "tests")]
from deploy_stack import BASE, PASSWORD, run, wait_until  # noqa: E402 (the tests' deployment helpers)
from ha_stack import HADeployment, build_ha_image  # noqa: E402


def start(args):
    if args.reuse:
        with open(args.reuse, "rb") as f:
            return pickle.load(f)
    build_ha_image(BASE)
    d = HADeployment(pathlib.Path(tempfile.mkdtemp(prefix="bench-ha-")))
    d.up()
    assert wait_until(d.healthy, timeout=600, step=2), d.logs()
    assert wait_until(lambda: sorted(r for r, _ in d.members().values()) == ["Leader", "Sync Standby"], timeout=120)
    d.ca.write_text(d.exec("mail", "cat", "/etc/emboux-mail/tls/ca.pem").stdout)
    assert wait_until(d.filter_ready, timeout=600, step=3), d.logs()
    if args.keep:
        with open(args.keep, "wb") as f:
            pickle.dump(d, f)
    return d


def tenant(d):
    ref = f"b{uuid.uuid4().hex[:8]}"
    assert d.api("POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 2, "mailboxes_per_domain": 5,
                                             "aliases_per_mailbox": 100000}).status_code == 201
    domain = f"{uuid.uuid4().hex[:10]}.ha-bench.net"
    assert d.api("POST", "/domains/", json={"name": domain, "partner_ref": ref}).status_code == 201
    for local in ("alice", "bob"):
        assert d.api("POST", "/users/", json={"domain_name": domain, "email": f"{local}@{domain}",
                                              "password": PASSWORD}).status_code == 201
    r = d.api("PUT", f"/domains/{domain}/outbound", json={"outbound_daily_limit": 0, "outbound_monthly_limit": 0,
                                                          "warmup_profile": None, "spike_max_multiplier": 0})
    assert r.status_code == 200, r.text
    return domain


def inbox_count(d, user):
    m = imaplib.IMAP4_SSL("127.0.0.1", d.ports["IMAPS"], ssl_context=d.tls(), timeout=30)
    try:
        m.login(user, PASSWORD)
        return int(m.status("INBOX", "(MESSAGES)")[1][0].split()[2].rstrip(b")"))
    finally:
        m.logout()


def session(d, node, kind, sender, rcpt, n, tag):
    """n messages over one connection; the number accepted."""
    ok = 0
    if kind == "inbound":
        s = smtplib.SMTP("127.0.0.1", d.port(node, "SMTP"), timeout=120)
        s.ehlo("sender.example.net")
    else:
        s = smtplib.SMTP_SSL("127.0.0.1", d.port(node, "SUBMISSIONS"), context=d.tls(), timeout=120)
        s.login(sender, PASSWORD)
    with s:
        for i in range(n):
            try:
                s.sendmail(sender, [rcpt], f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {tag}-{i}\r\n\r\n"
                           + "A line of an ordinary message body.\r\n" * 60)
                ok += 1
            except smtplib.SMTPException:
                s.rset()
    return ok


def rate(d, domain, kind, nodes, total, conns):
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    sender = "someone@example.net" if kind == "inbound" else alice
    before = inbox_count(d, bob)
    jobs = [nodes[i % len(nodes)] for i in range(conns)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(conns) as ex:
        accepted = sum(ex.map(lambda j: session(d, j[1], kind, sender, bob, total // conns,
                                                f"{kind}-{j[0]}"), enumerate(jobs)))
    t_acc = time.monotonic() - t0
    assert wait_until(lambda: inbox_count(d, bob) >= before + accepted, timeout=900, step=0.5)
    t_del = time.monotonic() - t0
    return accepted, accepted / t_acc, accepted / t_del


def outage_end(events, killed):
    """The end of an outage: the first success started after the first
    failure that followed the kill (the old primary may still answer for
    the few milliseconds it takes to die); NaN while there is none."""
    fail = min((t for t, ok in events if t > killed and not ok), default=None)
    if fail is None:
        return float("nan")
    return min((t for t, ok in events if t > fail and ok), default=float("nan"))


def failover(d, domain):
    alice = f"alice@{domain}"
    old = d.primary()
    standby = next(m for m, (role, _) in d.members().items() if role == "Sync Standby")
    stop = threading.Event()
    writes, mail = [], []   # (started, ok); (node, started, code)

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            t = time.monotonic()
            try:
                code = d.api("POST", "/aliases/", json={"domain_name": domain, "destination": alice,
                                                        "source": f"f{uuid.uuid4().hex[:6]}{i}@{domain}"}).status_code
            except Exception:
                code = None
            writes.append((t, code == 201))

    def prober(node):
        while not stop.is_set():
            t = time.monotonic()
            mail.append((node, t, d.inbound(node, alice, "probe")))
            time.sleep(0.2)

    threads = [threading.Thread(target=writer), threading.Thread(target=prober, args=("mail",)),
               threading.Thread(target=prober, args=("mail2",))]
    for t in threads:
        t.start()
    time.sleep(3)
    killed = time.monotonic()
    run("podman", "kill", d.container(old))
    wait_until(lambda: d.primary(via=standby) == standby, timeout=120, step=0.2)
    leader = time.monotonic() - killed

    # until the API and both nodes have recovered (or 6 minutes)
    def ends():
        return [outage_end([(t, ok) for t, ok in writes], killed)] + [
            outage_end([(t, c == 250) for n, t, c in mail if n == node], killed) for node in ("mail", "mail2")]
    wait_until(lambda: not any(math.isnan(e) for e in ends()), timeout=360, step=1)
    stop.set()
    for t in threads:
        t.join()
    api, first_mail, first_mail2 = (e - killed for e in ends())
    per_node = {"mail": first_mail, "mail2": first_mail2}
    bounced = [c for _, _, c in mail if c and c >= 500]
    rejoin_t = time.monotonic()
    run("podman", "start", d.container(old))
    wait_until(lambda: d.members(standby).get(old, ("", ""))[0] == "Sync Standby", timeout=300, step=0.5)
    rejoin = time.monotonic() - rejoin_t
    return {"old": old, "new": standby, "leader": leader, "api": api, "inbound": per_node, "bounced": len(bounced),
            "rejoin_as_sync_standby": rejoin}


def member_ip(d, member):
    return run("podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
               d.container(member)).stdout.strip()


def staleness(d, domain, samples):
    """Seconds from an acknowledged API write to its visibility in the
    synchronous standby's mailserver view."""
    password = next(line.split("=", 1)[1] for line in d.env_file.read_text().splitlines()
                    if line.startswith("POSTGRES_PASSWORD="))
    replica = next(m for m, (role, _) in d.members().items() if role == "Sync Standby")
    conn = psycopg2.connect(host=member_ip(d, replica), port=5432, user="postgres", password=password,
                            dbname="emboux_mail")
    conn.autocommit = True
    out = []
    with conn.cursor() as cur:
        for _ in range(samples):
            source = f"s{uuid.uuid4().hex[:8]}@{domain}"
            r = d.api("POST", "/aliases/", json={"domain_name": domain, "source": source,
                                                 "destination": f"alice@{domain}"})
            acked = time.monotonic()
            assert r.status_code == 201, r.text
            while True:
                cur.execute("SELECT count(*) FROM mailserver.alias_destinations(%s)", (source,))
                if cur.fetchone()[0]:
                    break
            out.append(time.monotonic() - acked)
        cur.execute("SELECT now()")
    conn.close()
    return replica, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=320)
    ap.add_argument("--failovers", type=int, default=2)
    ap.add_argument("--parts", default="rates,staleness,failover", help="which measurements, comma separated")
    ap.add_argument("--reuse")
    ap.add_argument("--keep")
    args = ap.parse_args()
    d = start(args)
    try:
        domain = tenant(d)
        print(f"HA deployment {d.project}; members {d.members()}")
        parts = args.parts.split(",")
        for kind, conns in (("inbound", 16), ("submission", 4)) if "rates" in parts else ():
            for nodes in (["mail"], ["mail", "mail2"], ["mail"], ["mail", "mail2"]):
                n, acc, dlv = rate(d, domain, kind, nodes, args.messages, conns)
                print(f"{kind:10} {len(nodes)} node(s), {conns} connections: {n} messages, "
                      f"accepted {acc:6.1f}/s, delivered {dlv:6.1f}/s", flush=True)
        replica, lags = staleness(d, domain, 100) if "staleness" in parts else (None, [])
        lags.sort()
        if lags:
            print(f"replica staleness ({replica}, synchronous standby, 100 acknowledged API writes): "
                  f"p50 {statistics.median(lags) * 1000:.1f} ms, p99 {lags[98] * 1000:.1f} ms, "
                  f"max {lags[-1] * 1000:.1f} ms", flush=True)
        for _ in range(args.failovers if "failover" in parts else 0):
            r = failover(d, domain)
            print(f"failover {r['old']} -> {r['new']}: new leader {r['leader']:.1f} s, first API write "
                  f"{r['api']:.1f} s, first inbound accepted mail {r['inbound']['mail']:.1f} s / mail2 "
                  f"{r['inbound']['mail2']:.1f} s, bounced {r['bounced']}, old primary back as sync standby "
                  f"in {r['rejoin_as_sync_standby']:.1f} s", flush=True)
    finally:
        if not args.reuse and not args.keep:
            d.remove()


if __name__ == "__main__":
    main()
