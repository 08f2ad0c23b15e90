"""emboux-policyd: the Postfix policy delegation server (asyncio + asyncpg).

Wired into the submission service at RCPT and END-OF-MESSAGE. Per request:

* RCPT: domain / mailbox / recipient rules from memory (settings cached,
  invalidated at once by LISTEN emboux_policy), plus a short-lived hint that
  the domain's cap is exhausted. No DB round trip when the cache is warm.
* END-OF-MESSAGE: the same rules, then counting. Every END-OF-MESSAGE waiting
  at a moment joins one batch: one transaction locks the counters rows, decides
  each message in order (engine.decide_batch) and counts the accepted ones;
  the answers go out after the commit. The DB row lock is the only source of
  truth, so processes and hosts share caps exactly; the batch (group commit)
  keeps the cost per decision far below one round trip.
* Mail DB unreachable (or the LISTEN connection lost, so the cache may be
  stale): every request gets a temporary refusal (POLICYD_DB_DOWN_ACTION);
  the daemon reconnects by itself.

Usage: emboux-policyd [--listen HOST:PORT] [--workers N] (env POLICYD_DSN or
MAILDB_DSN, POLICYD_HOST, POLICYD_PORT, POLICYD_WORKERS, HOURLY_FRACTION,
WARMUP_START, SPIKE_MIN). Several workers share the port: see workers.py.

Where each concern lives: protocol.py (the policy protocol, one smtpd
connection), cache.py (rows cached, NOTIFY invalidation, the DB connections),
leases.py (quota leased per domain, refilled, confirmed, given back),
batching.py (decisions; END-OF-MESSAGE counted in batches), engine.py (the
rules, shared with the connector), forwarding.py (port 25 forwards). This
module assembles them (Policy) and runs the process.
"""

import argparse
import asyncio
import collections
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import uuid

from .. import settings
from . import forwarding, workers
from .batching import DecisionMixin
from .cache import CacheMixin
from .engine import Settings
from .leases import LeaseMixin
from .protocol import PolicyProtocol

log = logging.getLogger("emboux.policyd")

STARTUP_WAIT = 5.0      # before serving, for the mail DB


class Policy(CacheMixin, LeaseMixin, DecisionMixin):
    """One process's policy service: its state is here, its behaviour in
    the mixins (cache.py, leases.py, batching.py)."""

    def __init__(self, dsn, settings=None, pool_size=4):
        self.dsn = dsn
        self.settings = settings or Settings.from_env()
        self.pool_size = pool_size
        self.pool = None
        self.healthy = False
        self.domains = {}         # name -> DomainState | None (not hosted)
        self.mailboxes = {}       # email -> submission_disabled | None (no such mailbox)
        self.suppressed = {}      # email -> tuple(reasons): the whole list, in memory
        self.supp_stale = set()   # emails whose suppression row changed: re-read
        self.hints = {}           # domain id -> (Verdict, expiry): cap exhausted
        self.inflight = {}        # single-flight loads
        # END-OF-MESSAGE waiting for the next batch, in lanes by domain: the
        # lanes' batches lock disjoint rows, so they run (and group-commit)
        # in parallel; within a lane one batch at a time.
        self.lanes = pool_size
        self.pending = [[] for _ in range(self.lanes)]
        self.flushing = [False] * self.lanes
        # Leases (hard enforcement): quota reserved in the DB, served from here.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.leases = {}          # domain id -> Lease
        self.confirm = []         # "key\tdomain id\tunits\tbytes" served, not yet confirmed (CONFIRM_SQL)
        self.served = {}          # domain id -> [units, lease bytes] of those
        self.returns = {}         # domain id -> [units, bytes] to give back
        self.recent = collections.OrderedDict()   # keys served here (repeats answered at once)
        self.contended = {}       # domain id -> until: lease exactly what is needed
        self.refills = {}         # domain id -> (Lease, DomainState) below its low-water mark
        self._refiller = None
        self._confirm_wake = asyncio.Event()
        self.down_since = None
        self._flusher = None
        self._listener_task = None
        self._stop = asyncio.Event()
        self.stats = {"requests": 0, "batches": 0, "db_errors": 0}
        self.forwarding = forwarding.Forwarding(self)   # port 25 aliases that leave (forwarding.py)

    # --- DB plumbing -----------------------------------------------------------
    async def start(self):
        self._listener_task = asyncio.create_task(self._listen_forever())
        self._flusher = asyncio.create_task(self._confirm_forever())

    async def close(self):
        if self._refiller is not None:      # a grant in flight joins its lease first
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._refiller), 5)
        # give back every lease and confirm what was served
        for dom_id in list(self.leases):
            self._return_lease(dom_id)
        if self.healthy:
            try:
                await asyncio.wait_for(self._confirm_once(), 5)
            except Exception as exc:
                log.error("could not return leases: %s", exc)
        self._stop.set()
        if self._flusher:
            self._flusher.cancel()
        if self._listener_task:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener_task
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 5)
            except Exception:
                self.pool.terminate()

async def serve(dsn, sock, settings=None, ready=None):
    """Answer on the listening socket `sock` until SIGTERM / SIGINT."""
    policy = Policy(dsn, settings)
    await policy.start()
    # Connections wait in the socket's backlog (smtpd waits up to 100 s) until
    # the mail DB is reached: a starting worker answers, not refuses. If the
    # DB stays away, serve anyway: temporary refusals until it is back.
    for _ in range(int(STARTUP_WAIT / 0.02)):
        if policy.healthy:
            break
        await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: PolicyProtocol(policy), sock=sock)
    log.info("emboux-policyd listening on %s:%s", *sock.getsockname()[:2])
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready:
        ready()
    await stop.wait()
    log.info("stopping")
    server.close()
    # let batches in flight finish
    for _ in range(50):
        if not any(policy.pending) and not any(policy.flushing):
            break
        await asyncio.sleep(0.05)
    await policy.close()


def tune_runtime():
    """uvloop when installed (about twice the throughput), and the cyclic GC
    kept off the start-up heap: a full collection over a large heap stalls
    every connection at once, which is what a p99 sees."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def main(argv=None):
    p = argparse.ArgumentParser(prog="emboux-policyd", description=__doc__.split("\n")[0])
    p.add_argument("--listen", help="HOST:PORT (default $POLICYD_HOST:$POLICYD_PORT, 127.0.0.1:10040)")
    p.add_argument("--dsn", help="mail DB (default $POLICYD_DSN, else $MAILDB_DSN)")
    p.add_argument("--log-level", default=settings.get("POLICYD_LOG_LEVEL"))
    p.add_argument("--workers", type=int, default=None,
                   help="processes sharing the port (default $POLICYD_WORKERS, else one per two CPUs, 1 to 4)")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s emboux-policyd[%(process)d] %(levelname)s %(message)s")
    if args.listen:
        host, _, port = args.listen.rpartition(":")
    else:
        host, port = settings.get("POLICYD_HOST"), settings.get("POLICYD_PORT")
    dsn = args.dsn or settings.get("POLICYD_DSN") or settings.get("MAILDB_DSN")
    if not dsn:
        sys.exit("emboux-policyd: set POLICYD_DSN or MAILDB_DSN")
    n = args.workers if args.workers is not None else workers.default_workers()
    try:
        socks = workers.listening_sockets(host or "127.0.0.1", int(port), max(1, n))
    except OSError as exc:
        sys.exit(f"emboux-policyd: cannot listen on {host}:{port}: {exc.strerror}")
    rules = Settings.from_env()
    tune_runtime()

    def run(sock):
        asyncio.run(serve(dsn, sock, rules))

    if len(socks) == 1:
        run(socks[0])
        return 0
    return workers.supervise(socks, run)


if __name__ == "__main__":
    sys.exit(main())
