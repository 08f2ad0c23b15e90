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
import contextlib
import os
import pathlib
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from email.utils import formatdate

import psycopg2
import requests

import proc_cpu
from devenv import ROOT, dev_env

sys.path.insert(0, str(ROOT / "tests"))
from stack_clients import free_port, insecure_tls, wait_port  # noqa: E402 (shared with the tests)

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


# --- the reference: bare Postfix + Dovecot ----------------------------------------------
REF_MAIN = """compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = ref.mailpath.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = hash:{root}/etc/domains
virtual_mailbox_maps = hash:{root}/etc/mailboxes
virtual_alias_maps = hash:{root}/etc/aliases
smtpd_sender_login_maps = hash:{root}/etc/logins
virtual_transport = lmtp:unix:private/dovecot-lmtp
lmtp_destination_recipient_limit = 50
smtpd_helo_required = yes
enable_long_queue_ids = yes
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_unlisted_recipient
message_size_limit = 52428800
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtp_tls_security_level = may
relayhost = [127.0.0.1]:{sink}
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/dovecot-auth
smtpd_sasl_auth_enable = no
smtpd_client_event_limit_exceptions = 127.0.0.1
"""
REF_SUBMISSION = """{port} inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=reject_non_fqdn_recipient
"""
REF_MASTER_TAIL = """pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
REF_DOVECOT = """instance_name = mailpath-ref-{tag}
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
hostname = ref.mailpath.test
default_internal_user = dovecot
default_login_user = dovenull
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
passdb {{
  driver = passwd-file
  args = {root}/etc/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/etc/passwd
}}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {uid}
first_valid_uid = {uid}
last_valid_uid = {uid}
mailbox_list_index = yes
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {root}/spool/private/dovecot-lmtp {{
    user = postfix
    group = postfix
    mode = 0600
  }}
}}
service auth {{
  unix_listener {root}/spool/private/dovecot-auth {{
    user = postfix
    group = postfix
    mode = 0600
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@ref.mailpath.test
}}
"""


class Reference:
    """Bare Postfix + Dovecot in a temporary directory, serving the tenant's
    domain and mailboxes from static maps (same hashes as EmBoux's DB)."""

    def __init__(self, env, tenant, dkim_milter):
        self.env, self.tenant, self.dkim_milter = env, tenant, dkim_milter
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="mailpath-ref-", dir="/tmp"))
        self.smtp_port, self.submission_port, self.submission_dkim_port = free_port(), free_port(), free_port()
        self.smtp_milter_port = free_port()
        # EmBoux's port-25 milters (Rspamd), as its Postfix names them
        self.inbound_milters = subprocess.run(
            ["postconf", "-c", env["POSTFIX_CONFIG_DIR"], "-xh", "smtpd_milters"],
            capture_output=True, text=True).stdout.strip()
        self.vmail = self.root / "vmail"
        self.started = []

    def _run(self, *cmd):
        # output to a file: a daemon's children keep a pipe open for ever
        with open(self.root / "setup.log", "a+") as log:
            out = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
            log.seek(0)
            out.stdout, out.stderr = log.read()[-2000:], ""
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stdout}{out.stderr}")

    def start(self):
        r, t = self.root, self.tenant
        os.chmod(r, 0o755)
        for d in ("etc", "spool", "data", "dovecot-run", "dovecot-state", "vmail"):
            (r / d).mkdir()
        (r / "spool" / "private").mkdir()
        shutil.chown(r / "spool" / "private", "postfix", "root")
        os.chmod(r / "spool" / "private", 0o700)
        shutil.chown(r / "data", "postfix", "postfix")
        os.chown(self.vmail, VMAIL_UID, VMAIL_UID)
        etc = r / "etc"
        cert, key = self.env["MAIL_TLS_CERT"], str(pathlib.Path(self.env["MAIL_TLS_CERT"]).with_name("key.pem"))
        (etc / "main.cf").write_text(REF_MAIN.format(root=r, cert=cert, key=key, sink=self.env["OUTBOUND_SINK_PORT"]))
        master = f"{self.smtp_port} inet n - n - - smtpd\n"
        # ablation: the reference's port 25 plus EmBoux's inbound milters
        master += (f"{self.smtp_milter_port} inet n - n - - smtpd\n"
                   f"  -o smtpd_milters={self.inbound_milters.replace(' ', '')}\n")
        master += REF_SUBMISSION.format(port=self.submission_port)
        # ablation: the reference's submission plus EmBoux's OpenDKIM as its milter
        master += REF_SUBMISSION.format(port=self.submission_dkim_port)
        master += (f"  -o milter_macro_daemon_name=ORIGINATING\n"
                   f"  -o smtpd_milters={self.dkim_milter}\n")
        (etc / "master.cf").write_text(master + REF_MASTER_TAIL)
        (etc / "domains").write_text(f"{t.domain} OK\n")
        everyone = t.users + [t.sender]
        (etc / "mailboxes").write_text("".join(f"{u} OK\n" for u in everyone))
        (etc / "aliases").write_text("".join(f"{u} {u}\n" for u in everyone))
        (etc / "logins").write_text("".join(f"{u} {u}\n" for u in everyone))
        for m in ("domains", "mailboxes", "aliases", "logins"):
            self._run("postmap", "-c", str(etc), f"hash:{etc / m}")
        (etc / "passwd").write_text("".join(
            f"{u}:{t.hashes[u]}:{VMAIL_UID}:{VMAIL_UID}::{self.vmail}/{u.split('@')[1]}/{u.split('@')[0]}::\n"
            for u in everyone))
        (etc / "dovecot.conf").write_text(REF_DOVECOT.format(root=r, uid=VMAIL_UID, tag=r.name[-6:]))
        self._run("dovecot", "-c", str(etc / "dovecot.conf"))
        self.started.append("dovecot")
        for _ in range(100):
            if (r / "spool" / "private" / "dovecot-lmtp").exists():
                break
            time.sleep(0.05)
        self._run("postfix", "-c", str(etc), "start")
        self.started.append("postfix")
        for p in (self.smtp_port, self.submission_port, self.submission_dkim_port, self.smtp_milter_port):
            if not wait_port(p, 15):
                raise RuntimeError(f"reference Postfix not listening on {p} (see {r}/postfix.log)")

    def masters(self):
        return {k: v for k, v in (("Postfix", pid_file(self.root / "spool" / "pid" / "master.pid")),
                                  ("Dovecot", pid_file(self.root / "dovecot-run" / "master.pid"))) if v}

    def stop(self):
        etc = self.root / "etc"
        if "postfix" in self.started:
            subprocess.run(["postfix", "-c", str(etc), "stop"], capture_output=True)
        if "dovecot" in self.started:
            pid = (self.root / "dovecot-run" / "master.pid").read_text().strip()
            subprocess.run(["doveadm", "-c", str(etc / "dovecot.conf"), "stop"], capture_output=True)
            for _ in range(150):
                if not pathlib.Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)


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

    threads = [threading.Thread(target=worker, args=(k, n)) for k, n in enumerate(per)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_accept = time.monotonic() - t0
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

    threads = [threading.Thread(target=worker, args=(k, n)) for k, n in enumerate(per)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    return n_messages / dt, pct(lat, 0.5), pct(lat, 0.99), pct(auth, 0.5), errors


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
def pid_file(path):
    with contextlib.suppress(OSError, ValueError):
        return int(pathlib.Path(path).read_text().split()[0])
    return None


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
