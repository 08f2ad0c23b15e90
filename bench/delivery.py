#!/usr/bin/env python3
"""Benchmark (not a test): delivery throughput SMTP -> Postfix -> LMTP -> Dovecot.

    var/venv/bin/python bench/delivery.py [--messages 2000] [--connections 4] [--mailboxes 10] [--size 4096]

Against the running dev stack (./dev up): creates a throw-away tenant, domain
and mailboxes through the REST API, sends the messages over --connections
parallel SMTP sessions to the inbound port (each session reused for many
messages), then waits until Dovecot holds every one of them. Prints:
  * SMTP accept rate (messages/s the MX takes, queue-file written),
  * end-to-end delivery rate (first MAIL FROM until the last message is in
    Dovecot's store, counted with doveadm),
and removes the tenant's domain (and its store) afterwards.
"""
import argparse
import smtplib
import subprocess
import threading
import time
import uuid

import requests

from devenv import dev_env


def delivered(env, users):
    total = 0
    for u in users:
        out = subprocess.run(["doveadm", "-c", env["DOVECOT_CONFIG"], "-f", "tab", "mailbox", "status",
                              "-u", u, "messages", "INBOX"], capture_output=True, text=True)
        lines = out.stdout.splitlines()
        if out.returncode == 0 and len(lines) > 1:
            total += int(lines[1].split("\t")[-1])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--mailboxes", type=int, default=10)
    ap.add_argument("--size", type=int, default=4096, help="body bytes per message")
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
    s.post(f"{base}/domains/", headers=client, json={"name": domain}).raise_for_status()
    users = []
    for i in range(args.mailboxes):
        email = f"u{i}@{domain}"
        s.post(f"{base}/users/", headers=client, json={"domain_name": domain, "email": email,
                                                       "password": "bench password 1"}).raise_for_status()
        users.append(email)

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
                                         f"Subject: bench {k}-{j}\r\n\r\n{body}")
                    if refused:
                        errors.append(refused)
        except Exception as e:  # report, don't hide
            errors.append(repr(e))

    try:
        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n, k)) for k, n in enumerate(per_conn)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_accept = time.monotonic() - t0
        deadline = time.monotonic() + 600
        got = 0
        while time.monotonic() < deadline:
            got = delivered(env, users)
            if got >= args.messages:
                break
            time.sleep(0.2)
        t_all = time.monotonic() - t0
        print(f"{args.messages} messages of ~{args.size} B, {args.connections} SMTP connections, "
              f"{args.mailboxes} mailboxes")
        print(f"  SMTP accepted : {t_accept:7.2f} s  {args.messages / t_accept:7.1f} msg/s  "
              f"({t_accept / args.messages * 1000 * args.connections:.1f} ms per message per connection)")
        print(f"  in Dovecot    : {t_all:7.2f} s  {got / t_all:7.1f} msg/s  (SMTP -> queue -> LMTP -> store; "
              f"{got}/{args.messages} delivered)")
        if errors:
            print(f"  errors: {len(errors)}: {errors[:3]}")
    finally:
        s.delete(f"{base}/domains/{domain}", headers=client)
        s.delete(f"{base}/api-keys/{token}", headers=master)


if __name__ == "__main__":
    main()
