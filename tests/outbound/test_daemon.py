"""emboux-policyd spoken to directly: several processes sharing one cap,
retries counted once, a mail DB that goes away and comes back, garbage."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from outbound_helpers import PolicyClient, free_port, wait_until
import contextlib


def _domain_id(sql, name):
    return sql("SELECT id FROM domains WHERE name = %s", (name,))[0]["id"]


def test_two_daemons_32_connections_each_exactly_n(outbound, policyd, sql):
    """Cap N shared by two daemon processes: exactly N accepted, never N+1."""
    n, per_conn = 150, 4                       # 64 x 4 = 256 attempts
    outbound.set(outbound_daily_limit=0, outbound_monthly_limit=n, warmup_profile=None,
                 spike_max_multiplier=0)
    ports = [policyd(), policyd()]
    results, lock = [], threading.Lock()
    start = threading.Barrier(64)

    def worker(port):
        c = PolicyClient(port)
        start.wait()
        mine = [c.message(outbound.alice, outbound.bob) for _ in range(per_conn)]
        c.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(p,)) for p in ports for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 64 * per_conn
    ok = [r for r in results if r == "DUNNO"]
    refused = [r for r in results if r != "DUNNO"]
    assert len(ok) == n, (len(ok), set(refused))
    assert all(r.startswith("554 5.7.1 Monthly sending limit reached") for r in refused), set(refused)
    outbound.settle(outbound_sent_today=n, outbound_sent_month=n)
    # and nothing stays reserved once the daemons are idle
    dom = _domain_id(sql, outbound.domain)
    assert wait_until(lambda: sql("SELECT reserved_units FROM outbound_counters WHERE domain_id = %s",
                                  (dom,))[0]["reserved_units"] == 0)


def test_a_repeated_request_is_counted_once(outbound, policyd, sql):
    outbound.set(outbound_daily_limit=3, warmup_profile=None)
    a, b = PolicyClient(policyd()), PolicyClient(policyd())
    # smtpd retries a request whose answer it lost, maybe on another daemon
    for c in (a, b, a):
        assert c.message(outbound.alice, outbound.bob, queue_id="4XyZ1Q2w3E") == "DUNNO"
    outbound.settle(outbound_sent_today=1)
    assert a.message(outbound.alice, outbound.bob) == "DUNNO"
    assert b.message(outbound.alice, outbound.bob) == "DUNNO"
    assert b.message(outbound.alice, outbound.bob).startswith("554 5.7.1 Daily sending limit")
    # refused: not counted, and a retry of the refused message is refused again
    outbound.settle(outbound_sent_today=3)


def test_a_lease_is_topped_up_before_it_runs_dry(outbound, policyd, sql):
    """The daemon reserves quota in chunks (256 units here) and serves from
    memory; below half of its last chunk it reserves the next one in the
    background, so no message waits for the DB while quota is left."""
    outbound.set(outbound_daily_limit=100_000, outbound_monthly_limit=1_000_000, warmup_profile=None,
                 spike_max_multiplier=0, transfer_monthly_mb=0)
    dom = _domain_id(sql, outbound.domain)
    c = PolicyClient(policyd())

    def reserved_plus_sent():
        row = sql("SELECT reserved_units + sent_today AS n FROM outbound_counters WHERE domain_id = %s", (dom,))
        return row[0]["n"]

    for _ in range(128):                        # 256 granted, 128 left: not below half yet
        assert c.message(outbound.alice, outbound.bob) == "DUNNO"
    outbound.settle(outbound_sent_today=128)
    assert reserved_plus_sent() == 256
    assert c.message(outbound.alice, outbound.bob) == "DUNNO"   # 127 left: the next chunk is taken
    outbound.settle(outbound_sent_today=129)
    assert wait_until(lambda: reserved_plus_sent() == 512, timeout=5), reserved_plus_sent()
    c.close()


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut and restore."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.port = free_port()
        self.conns = []
        self.lsock = None
        self.restore()

    def restore(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.lsock = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while True:
            try:
                c, _ = ls.accept()
                u = socket.create_connection(self.target)
            except OSError:
                return
            self.conns += [c, u]
            for x, y in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self):
        self.lsock.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns = []


def test_db_down_temporary_refusal_then_recovery(outbound, policyd, devenv):
    u = urlsplit(devenv["MAILDB_DSN"])
    proxy = Proxy(u.hostname, u.port or 5432)
    dsn = urlunsplit(u._replace(netloc=f"{u.username}:{u.password}@127.0.0.1:{proxy.port}"))
    c = PolicyClient(policyd(dsn=dsn))
    assert c.message(outbound.alice, outbound.bob) == "DUNNO"
    before = outbound.settle(outbound_sent_today=1)["outbound_sent_today"]

    proxy.cut()
    # Within moments every answer is a temporary refusal. Until the daemon
    # notices, it may still serve a message from its lease (quota the DB
    # reserved for it beforehand): such an accept is confirmed once it is back.
    answers = []
    assert wait_until(lambda: answers.append(c.message(outbound.alice, outbound.bob))
                      or answers[-1].startswith("451 4.3.0"), timeout=5)
    served_from_lease = answers.count("DUNNO")
    assert served_from_lease + 1 == len(answers), answers
    for _ in range(5):
        assert c.message(outbound.alice, outbound.bob).startswith("451 4.3.0")
        assert c.ask(protocol_state="END-OF-MESSAGE", sasl_username=outbound.alice, sender=outbound.alice,
                     queue_id="DOWN1", recipient_count=1, size=10).startswith("451 4.3.0")
    time.sleep(1)                                           # a few reconnect attempts fail meanwhile
    assert c.message(outbound.alice, outbound.bob).startswith("451 4.3.0")
    assert outbound.get()["outbound_sent_today"] == before  # nothing counted while down

    proxy.restore()
    assert wait_until(lambda: c.message(outbound.alice, outbound.bob) == "DUNNO", timeout=15)
    outbound.settle(outbound_sent_today=before + served_from_lease + 1)
    c.close()
    proxy.cut()


def test_db_down_action_is_configurable(outbound, policyd, devenv):
    port = policyd(dsn="postgresql://nobody:x@127.0.0.1:1/none", ready=False,
                   POLICYD_DB_DOWN_ACTION="450 4.7.0 Try later please")
    c = PolicyClient(port)
    assert c.message(outbound.alice, outbound.bob) == "450 4.7.0 Try later please"


def test_malformed_requests_never_crash_it(outbound, devenv):
    port = int(devenv["POLICYD_PORT"])
    c = PolicyClient(port)
    assert c.raw(b"garbage without equals\n\n").startswith("451")
    assert c.raw(b"\x00\xff\xfe=\xff\n\n").startswith("451")
    assert c.ask(protocol_state="RCPT") .startswith("554 5.7.0")            # no login
    assert c.ask(protocol_state="END-OF-MESSAGE", sasl_username="nobody@nowhere.invalid",
                 sender="x@", recipient_count="many", size="-5").startswith("554")
    assert c.ask(request="something_else", protocol_state="RCPT").startswith("451")
    assert c.ask(protocol_state="CONNECT") == "DUNNO"
    # several requests in one packet are answered in order
    one = b"request=smtpd_access_policy\nprotocol_state=DATA\n\n"
    c.sock.sendall(one * 3)
    got = b""
    while got.count(b"\n\n") < 3:
        got += c.sock.recv(4096)
    assert got == b"action=DUNNO\n\n" * 3
    c.close()
    # an endless request is cut off, the daemon goes on
    s = socket.create_connection(("127.0.0.1", port))
    with contextlib.suppress(OSError):
        s.sendall(b"x=" + b"a" * 200_000)
    s.close()
    c = PolicyClient(port)
    assert c.message(outbound.alice, outbound.bob) == "DUNNO"
    c.close()


def _children(pid):
    kids = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return sorted(kids)


def _sockets(pid):
    fds = pathlib.Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


def _gone(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_workers_share_the_port_and_a_dead_one_is_replaced(outbound, policyd, devenv):
    port = policyd(POLICYD_WORKERS="2")
    parent = policyd.procs[-1]
    workers = _children(parent.pid)
    assert len(workers) == 2, workers
    before = {w: _sockets(w) for w in workers}
    clients = [PolicyClient(port) for _ in range(40)]
    assert all(c.message(outbound.alice, outbound.bob) == "DUNNO" for c in clients)
    # the kernel spread the connections over both workers
    assert all(_sockets(w) > before[w] for w in workers), (before, {w: _sockets(w) for w in workers})
    outbound.settle(outbound_sent_today=40)
    for c in clients:
        c.close()

    # a worker that dies is replaced; the port keeps answering meanwhile
    os.kill(workers[0], signal.SIGKILL)
    assert wait_until(lambda: len(_children(parent.pid)) == 2 and workers[0] not in _children(parent.pid))
    assert wait_until(lambda: PolicyClient(port).message(outbound.alice, outbound.bob) == "DUNNO")

    # a second daemon may not share the port, not even by SO_REUSEPORT
    exe = pathlib.Path(sys.executable).parent / "emboux-policyd"
    other = subprocess.run([str(exe), "--listen", f"127.0.0.1:{port}", "--workers", "2",
                            "--dsn", devenv["MAILDB_DSN"]], capture_output=True, text=True, timeout=30)
    assert other.returncode != 0 and "cannot listen" in other.stderr, other

    # SIGTERM to the parent stops every worker
    workers = _children(parent.pid)
    parent.terminate()
    assert parent.wait(15) == 0
    assert wait_until(lambda: all(_gone(w) for w in workers), timeout=10)
