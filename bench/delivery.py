#!/usr/bin/env python3
"""Benchmark (not a test): delivery throughput SMTP -> Postfix -> LMTP -> Dovecot.

    var/venv/bin/python bench/delivery.py [--messages 2000] [--connections 4] [--mailboxes 10] [--size 4096]
                                          [--filtering both|on|off]

Against the running dev stack (./dev up): creates a throw-away tenant, domain
and mailboxes through the REST API, sends the messages over --connections
parallel SMTP sessions to the inbound port (each session reused for many
messages), then waits until Dovecot holds every one of them. Prints:
  * SMTP accept rate (messages/s the MX takes, queue-file written),
  * end-to-end delivery rate (first MAIL FROM until the last message is in
    Dovecot's store, counted with doveadm),
and removes the tenant's domain (and its store) afterwards.

--filtering both (the default) runs the same load twice in one run: with
Rspamd as port 25's milter (as the stack runs) and without it (the bench
empties main.cf's emboux_spam_milter and reloads Postfix for that pass, then
puts it back: run it on a stack nobody else is testing). `on`/`off`: one pass.
"""
import argparse
import smtplib
import subprocess
import threading
import time
import uuid

import requests

from devenv import dev_env


def postfix_milter(env, value):
    """Set main.cf's emboux_spam_milter of the dev stack and reload Postfix."""
    conf = env["POSTFIX_CONFIG_DIR"]
    subprocess.run(["postconf", "-c", conf, "-e", f"emboux_spam_milter = {value}"], check=True)
    subprocess.run(["postfix", "-c", conf, "reload"], check=True, capture_output=True)
    time.sleep(2)   # smtpd processes recycle onto the new value


def current_milter(env):
    out = subprocess.run(["postconf", "-c", env["POSTFIX_CONFIG_DIR"], "-h", "emboux_spam_milter"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def delivered(env, users):
    total = 0
    for u in users:
        # INBOX and Junk: with filtering on, what Rspamd scored lands in Junk
        out = subprocess.run(["doveadm", "-c", env["DOVECOT_CONFIG"], "-f", "tab", "mailbox", "status",
                              "-u", u, "messages", "INBOX", "Junk"], capture_output=True, text=True)
        lines = out.stdout.splitlines()
        if out.returncode == 0:
            total += sum(int(line.split("\t")[-1]) for line in lines[1:] if line.strip())
    return total


def one_pass(env, users, args, offset=0):
    """Send args.messages over args.connections sessions; (accept s, all s,
    delivered in this pass, errors)."""
    body = ("x" * 75 + "\r\n") * max(1, args.size // 77)
    per_conn = [args.messages // args.connections + (1 if i < args.messages % args.connections else 0)
                for i in range(args.connections)]
    errors = []

    def worker(n, k):
        try:
            with smtplib.SMTP(env.get("SMTP_HOST") or "127.0.0.1", int(env["SMTP_PORT"]), timeout=60) as c:
                c.ehlo("bench.example.net")
                for j in range(n):
                    rcpt = users[(k + j) % len(users)]
                    refused = c.sendmail("bench@example.net", [rcpt],
                                         f"From: bench@example.net\r\nTo: {rcpt}\r\n"
                                         f"Subject: bench {k}-{j}\r\n"
                                         f"Message-ID: <{uuid.uuid4().hex}@example.net>\r\n\r\n{body}")
                    if refused:
                        errors.append(refused)
        except Exception as e:  # report, don't hide
            errors.append(repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n, k)) for k, n in enumerate(per_conn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_accept = time.monotonic() - t0
    deadline = time.monotonic() + 300
    got = 0
    while time.monotonic() < deadline and len(errors) < args.connections:
        got = delivered(env, users) - offset
        if got >= args.messages:
            break
        time.sleep(0.2)
    return t_accept, time.monotonic() - t0, got, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--mailboxes", type=int, default=10)
    ap.add_argument("--size", type=int, default=4096, help="body bytes per message")
    ap.add_argument("--filtering", choices=["both", "on", "off"], default="both",
                    help="with Rspamd (on), without (off), or both passes in one run")
    args = ap.parse_args()
    env = dev_env()
    base = env["EMBOUX_API_URL"].rstrip("/")
    s = requests.Session()
    master = {"Authorization": f"Bearer {env['EMBOUX_API_KEY']}"}
    ref = "bench" + uuid.uuid4().hex[:8]
    r = s.post(f"{base}/api-keys/", headers=master, json={
        "partner_ref": ref, "domains_allowed": 1, "mailboxes_per_domain": args.mailboxes,
        "aliases_per_mailbox": 1})
    r.raise_for_status()
    token = r.json()["token"]
    client = {"Authorization": f"Bearer {token}"}
    domain = f"{ref}.bench.test"
    # created by the master for the partner: vouched at once (a client's domain
    # receives nothing until its ownership is proven)
    s.post(f"{base}/domains/", headers=master, json={"name": domain, "partner_ref": ref}).raise_for_status()
    users = []
    for i in range(args.mailboxes):
        email = f"u{i}@{domain}"
        s.post(f"{base}/users/", headers=client, json={"domain_name": domain, "email": email,
                                                       "password": "bench password 1"}).raise_for_status()
        users.append(email)

    passes = {"both": ["on", "off"], "on": ["on"], "off": ["off"]}[args.filtering]
    milter = current_milter(env)
    results = {}
    try:
        for i, mode in enumerate(passes):
            if mode == "off":
                postfix_milter(env, "")
            results[mode] = one_pass(env, users, args, offset=i * args.messages)
            if mode == "off":
                postfix_milter(env, milter)
        print(f"{args.messages} messages of ~{args.size} B, {args.connections} SMTP connections, "
              f"{args.mailboxes} mailboxes, per pass")
        for mode, (t_accept, t_all, got, errors) in results.items():
            print(f"  filtering {mode:3}: SMTP accepted {args.messages / t_accept:7.1f} msg/s "
                  f"({t_accept / args.messages * 1000 * args.connections:.1f} ms per message per connection); "
                  f"in Dovecot {got / t_all:7.1f} msg/s ({got}/{args.messages} delivered)"
                  + (f"; errors: {len(errors)}: {errors[:3]}" if errors else ""))
        if len(results) == 2:
            on, off = results["on"], results["off"]
            print(f"  filtering costs {100 * (1 - (on[2] / on[1]) / (off[2] / off[1])):.0f}% of the "
                  f"end-to-end throughput")
    finally:
        if current_milter(env) != milter:
            postfix_milter(env, milter)
        s.delete(f"{base}/domains/{domain}", headers=client)
        s.delete(f"{base}/api-keys/{token}", headers=master)


if __name__ == "__main__":
    main()
