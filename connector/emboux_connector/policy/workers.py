"""emboux-policyd's worker processes.

One asyncio loop is one core: the policy protocol costs a read and a write
per request, and that is what a busy daemon spends its time on. Several
workers (`--workers`, `POLICYD_WORKERS`) share one port with SO_REUSEPORT,
the kernel spreading smtpd's connections among them. Nothing else is shared
between them: each has its own cache and leases, and the mail DB keeps caps
exact between them exactly as between daemons on different hosts.

The parent only supervises: it claims the port, forks the workers, replaces
one that dies, and on SIGTERM / SIGINT stops them all. A worker whose parent
dies (even by SIGKILL) is told to stop by the kernel (PR_SET_PDEATHSIG).
"""

import ctypes
import logging
import os
import signal
import socket
import time

from .. import settings
import contextlib

log = logging.getLogger("emboux.policyd")

PR_SET_PDEATHSIG = 1


def default_workers():
    """POLICYD_WORKERS, else one per two CPUs, at least 1, at most 4. The
    daemon shares its host with PostgreSQL and Postfix: on 2 cores one worker
    gave p99 3.7-4.2 ms at 32 connections, two gave 40 % more throughput but
    p99 5.1-7.0 ms, the cores oversubscribed (docs/outbound.md, benchmark)."""
    configured = settings.number("POLICYD_WORKERS")
    return max(1, min(4, (os.cpu_count() or 1) // 2) if configured is None else configured)


def listening_sockets(host, port, n, backlog=1024):
    """n sockets bound to host:port. Refuses a port someone already holds,
    even with SO_REUSEPORT (say, a stale daemon): ours would silently share
    its traffic with it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))          # fails (EADDRINUSE) when the port is taken
    finally:
        probe.close()
    socks = []
    for _ in range(n):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if n > 1:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, port))
        s.listen(backlog)
        s.setblocking(False)
        socks.append(s)
    return socks


def _stop_with_parent():
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker_main(sock, socks, run_worker):
    """In the forked child: run the worker on its socket, then exit (never return)."""
    code = 1
    try:
        _stop_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for other in socks:
            if other is not sock:
                other.close()
        run_worker(sock)
        code = 0
    except BaseException:
        log.exception("worker failed")
    finally:
        logging.shutdown()
        os._exit(code)


def supervise(socks, run_worker):
    """Run run_worker(sock) in one forked process per socket until SIGTERM or
    SIGINT; a worker that exits on its own is replaced."""
    children = {}          # pid -> (socket, started)
    stopping = False

    def spawn(sock):
        pid = os.fork()
        if pid == 0:
            _worker_main(sock, socks, run_worker)
        children[pid] = (sock, time.monotonic())

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for sock in socks:
        spawn(sock)
    log.info("%d workers started", len(socks))
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        sock, started = children.pop(pid, (None, 0.0))
        if sock is None or stopping:
            continue
        log.error("worker %d ended (status %d); starting another", pid, status)
        if time.monotonic() - started < 1.0:
            time.sleep(1.0)             # a worker failing at once must not spin
        if not stopping:
            spawn(sock)
    return 0
