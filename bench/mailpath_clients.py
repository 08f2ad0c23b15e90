"""The load side of bench/mailpath.py: the throw-away tenant on EmBoux, the
messages, and the SMTP clients that time inbound delivery, per-command
latency and submission against any target (the reference or EmBoux)."""
import contextlib
import os
import random
import smtplib
import sys
import threading
import time
import uuid
from email.utils import formatdate

import psycopg2
import requests

from devenv import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from stack_clients import insecure_tls  # noqa: E402 (shared with the tests)

PASSWORD = "bench password 1"
EHLO = "bench.example.net"
SENDER = "bench@example.net"
N_MAILBOXES = 10
VMAIL_UID = 5000


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] * 1000 if v else float("nan")


# --- the tenant on EmBoux ------------------------------------------------------------
class Tenant:
    """A throw-away tenant, domain and mailboxes through the REST API; outbound
    limits lifted (and warm-up finished) in the DB so the policy daemon lets
    every bench message through while still evaluating every rule."""

    def __init__(self, env):
        self.env = env
        self.base = env["EMBOUX_API_URL"].rstrip("/")
        self.s = requests.Session()
        self.master = {"Authorization": f"Bearer {env['EMBOUX_API_KEY']}"}
        self.ref = "mp" + uuid.uuid4().hex[:8]
        self.domain = f"{self.ref}.mailpath.test"
        self.token = None

    def call(self, method, path, **kw):
        """One API call; retried while the connector restarts (other engineers restart it)."""
        for attempt in range(60):
            try:
                return self.s.request(method, f"{self.base}{path}", **kw)
            except requests.ConnectionError:
                if attempt == 59:
                    raise
                time.sleep(1)

    def create(self):
        r = self.call("POST", "/api-keys/", headers=self.master, json={
            "partner_ref": self.ref, "domains_allowed": 1, "mailboxes_per_domain": N_MAILBOXES + 1,
            "aliases_per_mailbox": 1})
        r.raise_for_status()
        self.token = r.json()["token"]
        self.call("POST", "/domains/", headers=self.master,
                    json={"name": self.domain, "partner_ref": self.ref}).raise_for_status()
        client = {"Authorization": f"Bearer {self.token}"}
        self.users = [f"u{i}@{self.domain}" for i in range(N_MAILBOXES)]
        self.sender = f"sender@{self.domain}"
        for email in self.users + [self.sender]:
            self.call("POST", "/users/", headers=client, json={
                "domain_name": self.domain, "email": email, "password": PASSWORD}).raise_for_status()
        # the first DKIM key (verification itself fails: nobody publishes DNS here)
        self.call("POST", f"/domains/{self.domain}/verify", headers=self.master)
        dk = self.call("GET", f"/domains/{self.domain}/dkim", headers=self.master).json()
        self.dkim = bool(dk.get("signing"))
        with psycopg2.connect(self.env["MAILDB_DSN"]) as conn, conn.cursor() as cur:
            cur.execute("""UPDATE domains SET outbound_daily_limit = 100000000, outbound_monthly_limit = 1000000000,
                                  transfer_monthly_mb = 0 WHERE name = %s RETURNING id""", (self.domain,))
            dom_id = cur.fetchone()[0]
            cur.execute("UPDATE outbound_counters SET warmup_day = 400 WHERE domain_id = %s", (dom_id,))
            cur.execute("""INSERT INTO outbound_history (domain_id, day, sent)
                           SELECT %s, current_date - g, 1000000 FROM generate_series(1, 7) g
                           ON CONFLICT DO NOTHING""", (dom_id,))
            cur.execute("SELECT email, password_hash FROM mailboxes WHERE domain_id = %s", (dom_id,))
            self.hashes = dict(cur.fetchall())

    def remove(self):
        if self.token:
            self.call("DELETE", f"/domains/{self.domain}", headers=self.master)
            self.call("DELETE", f"/api-keys/{self.token}", headers=self.master)


# --- the measurements ---------------------------------------------------------------------
class Target:
    def __init__(self, name, smtp_port, submission_port, vmail, masters=None):
        self.name, self.smtp_port, self.submission_port, self.vmail = name, smtp_port, submission_port, vmail
        self.masters = masters or {}  # {"Postfix": pid, ...}: whose CPU is counted (proc_cpu.py)

    def delivered(self, users):
        n = 0
        for u in users:
            local, dom = u.split("@")
            for sub in ("new", "cur", ".Junk/new", ".Junk/cur"):  # scored mail is filed in Junk
                with contextlib.suppress(FileNotFoundError):
                    n += len(os.listdir(self.vmail / dom / local / "Maildir" / sub))
        return n


# The body: plain English-like text (lines of words), not one repeated
# character: Rspamd's BITCOIN_ADDR rule reports every run of 14+ letters of
# the bech32 alphabet (x is one) to Lua, so lines of "xxx..." cost it twice
# the CPU of ordinary text (100 KB: 33 against 17 ms a scan).
WORDS = ("the of and to in is that for it as was with be by on not this are or from at which but have an "
         "they you were there would their we been has when who will more no if out so said what up its about "
         "into than them can only other new some could time these two may then do first any my now such like "
         "our over even most made after also did many before must through back years where much your way well "
         "down should because each just those people how too little state good very make world still own see "
         "work long get here between both life being under never day same another know while last might us "
         "great old year off come since against go came right used take three meeting invoice project")


def body_text(size, seed=15):
    rnd, lines, n, words = random.Random(seed), [], 0, WORDS.split()
    while n < size:
        line = " ".join(rnd.choice(words) for _ in range(12))
        lines.append(line[0].upper() + line[1:] + ".")
        n += len(lines[-1]) + 2
    return "\r\n".join(lines) + "\r\n"


BODIES = {}


def message(rcpt, size, tag):
    if size not in BODIES:
        BODIES[size] = body_text(size)
    return (f"From: {SENDER}\r\nTo: {rcpt}\r\nSubject: mailpath {tag}\r\n"
            f"Date: {formatdate()}\r\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@example.net>\r\n\r\n{BODIES[size]}")


def run_connections(worker, per):
    """worker(k, n) for each connection k (n messages) in its own thread; the
    seconds until the last one ended."""
    threads = [threading.Thread(target=worker, args=(k, n)) for k, n in enumerate(per)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0


def inbound(target, users, conns, size, n_messages):
    """(accept msg/s, delivery msg/s, errors)"""
    per = [n_messages // conns + (1 if i < n_messages % conns else 0) for i in range(conns)]
    errors, accepted = [], []
    before = target.delivered(users)

    def worker(k, n):
        try:
            with smtplib.SMTP("127.0.0.1", target.smtp_port, timeout=120) as c:
                c.ehlo(EHLO)
                for j in range(n):
                    rcpt = users[(k + j) % len(users)]
                    try:
                        c.sendmail(SENDER, [rcpt], message(rcpt, size, f"{k}-{j}"))
                        accepted.append(1)
                    except smtplib.SMTPResponseException as e:  # refused (a 4xx from a restarting milter)
                        errors.append(f"{e.smtp_code} {e.smtp_error[:60]!r}")
                        c.rset()
        except Exception as e:  # report, don't hide
            errors.append(repr(e))

    t0 = time.monotonic()
    t_accept = run_connections(worker, per)
    deadline = time.monotonic() + 300
    got = 0
    while time.monotonic() < deadline:
        got = target.delivered(users) - before
        if got >= len(accepted):
            break
        time.sleep(0.02)
    t_all = time.monotonic() - t0
    return n_messages / t_accept, got / t_all, errors


def command_latency(target, users, n, strict=True):
    """p50/p99 of MAIL, RCPT, DATA (4 KB) on one warm inbound connection
    (strict=False: a refusal is timed and counted, not fatal; "refused")."""
    times = {"MAIL": [], "RCPT": [], "DATA": [], "refused": 0}
    with smtplib.SMTP("127.0.0.1", target.smtp_port, timeout=60) as c:
        c.ehlo(EHLO)
        for i in range(n + 20):
            rcpt = users[i % len(users)]
            msg = message(rcpt, 4096, f"lat{i}").encode()
            t = time.perf_counter()
            code, _ = c.mail(SENDER)
            t1 = time.perf_counter()
            code2, _ = c.rcpt(rcpt)
            t2 = time.perf_counter()
            code3, _ = c.data(msg)
            t3 = time.perf_counter()
            if (code, code2, code3) != (250, 250, 250):
                if strict:
                    raise RuntimeError(f"{target.name}: MAIL/RCPT/DATA answered {code}/{code2}/{code3}")
                times["refused"] += 1
            if i >= 20:  # the first ones warm smtpd, proxymap and the DB sessions
                times["MAIL"].append(t1 - t)
                times["RCPT"].append(t2 - t1)
                times["DATA"].append(t3 - t2)
    refused = times.pop("refused")
    return dict({k: (pct(v, 0.5), pct(v, 0.99)) for k, v in times.items()}, refused=refused)


def submission(port, user, conns, n_messages, rcpt="someone@example.org"):
    """(accept msg/s, per-message p50 ms, p99 ms, AUTH p50 ms, errors): STARTTLS and
    AUTH once per connection, then n_messages / conns messages each."""
    per = [n_messages // conns + (1 if i < n_messages % conns else 0) for i in range(conns)]
    lat, auth, errors = [], [], []

    def worker(k, n):
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
                c.ehlo(EHLO)
                c.starttls(context=insecure_tls())
                c.ehlo(EHLO)
                t = time.perf_counter()
                c.login(user, PASSWORD)
                auth.append(time.perf_counter() - t)
                for j in range(n):
                    msg = (f"From: {user}\r\nTo: {rcpt}\r\nSubject: submission {k}-{j}\r\n"
                           f"Message-ID: <s{k}.{j}.{uuid.uuid4().hex}@example.net>\r\n\r\n"
                           + body_text(4000, seed=17))
                    t = time.perf_counter()
                    refused = c.sendmail(user, [rcpt], msg)
                    lat.append(time.perf_counter() - t)
                    if refused:
                        errors.append(refused)
        except Exception as e:
            errors.append(repr(e))

    dt = run_connections(worker, per)
    return n_messages / dt, pct(lat, 0.5), pct(lat, 0.99), pct(auth, 0.5), errors
