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

Usage: emboux-policyd [--listen HOST:PORT] (env POLICYD_DSN or MAILDB_DSN,
POLICYD_HOST, POLICYD_PORT, HOURLY_FRACTION, WARMUP_START, SPIKE_MIN).
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
import uuid

import asyncpg

from . import engine
from .engine import Message, Settings, dollar

log = logging.getLogger("emboux.policyd")

MAX_REQUEST = 64 * 1024
MAX_BATCH = 512
HINT_TTL = 5.0
CACHE_MAX = 200_000

SQL_DOMAIN = dollar(engine.DOMAIN_STATE_SQL)
SQL_MAILBOX = dollar(engine.MAILBOX_SQL)
SQL_SUPP = dollar(engine.SUPPRESSION_SQL)
SQL_LOCK = dollar(engine.COUNTERS_LOCK_SQL)
SQL_LOCK_SEEN = dollar(engine.LOCK_AND_SEEN_SQL)
SQL_APPLY = dollar(engine.APPLY_SQL)

_MISSING = object()


class DbDown(Exception):
    pass


def _domain_of(addr):
    if not addr or "@" not in addr:
        return ""
    return addr.rsplit("@", 1)[1].strip().rstrip(".").lower()


class Policy:
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
        self._listener_task = None
        self._stop = asyncio.Event()
        self.stats = {"requests": 0, "batches": 0, "db_errors": 0}

    # --- DB plumbing -----------------------------------------------------------
    async def start(self):
        self._listener_task = asyncio.create_task(self._listen_forever())

    async def close(self):
        self._stop.set()
        if self._listener_task:
            self._listener_task.cancel()
            try:
                await self._listener_task
            except (asyncio.CancelledError, Exception):
                pass
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 5)
            except Exception:
                self.pool.terminate()

    def _invalidate_all(self):
        self.domains.clear()
        self.mailboxes.clear()
        self.hints.clear()

    def _on_notify(self, conn, pid, channel, payload):
        kind, _, key = payload.partition(":")
        if payload == "*":
            self._invalidate_all()
        elif kind == "d":
            # settings or verification changed (a parent's too): drop them all
            self.domains.clear()
            self.hints.clear()
        elif kind == "m":
            self.mailboxes.pop(key, None)
        elif kind == "s":
            self.suppressed.pop(key, None)
            self.supp_stale.add(key)

    async def _listen_forever(self):
        delay = 0.2
        while not self._stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=3, command_timeout=5,
                                             server_settings={"application_name": "emboux-policyd"})
                lost = asyncio.Event()
                conn.add_termination_listener(lambda c: lost.set())
                await conn.add_listener("emboux_policy", self._on_notify)
                rows = await conn.fetch(engine.ALL_SUPPRESSION_SQL)
                supp = {}
                for r in rows:
                    supp.setdefault(r["email"], []).append(r["reason"])
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.pool_size + 2, timeout=3,
                        command_timeout=5, max_inactive_connection_lifetime=60,
                        server_settings={"application_name": "emboux-policyd"})
                self.suppressed = {k: tuple(sorted(v)) for k, v in supp.items()}
                self.supp_stale.clear()
                self._invalidate_all()
                self.healthy = True
                delay = 0.2
                log.info("connected to the mail DB; %d suppressed addresses", len(self.suppressed))
                # keepalive: a silently dead link must not keep a stale cache
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), 2)
                    except asyncio.TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.error("mail DB connection lost: %s", exc)
            finally:
                was = self.healthy
                self.healthy = False
                self._invalidate_all()
                if conn is not None:
                    conn.terminate()
                if was:
                    log.warning("answering temporary refusals until the mail DB is back")
            if self.pool is not None:
                # connections of the pool may point at the dead server
                self.pool.terminate()
                self.pool = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _fetch(self, sql, *args):
        if not self.healthy or self.pool is None:
            raise DbDown()
        try:
            return await self.pool.fetch(sql, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            self.stats["db_errors"] += 1
            raise DbDown() from exc

    async def _single(self, key, loader):
        fut = self.inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(loader())
            self.inflight[key] = fut
            fut.add_done_callback(lambda f: self.inflight.pop(key, None))
        return await asyncio.shield(fut)

    async def load_domain(self, name):
        async def load():
            rows = await self._fetch(SQL_DOMAIN, name)
            state = engine.DomainState.from_row(rows[0]) if rows else None
            if len(self.domains) > CACHE_MAX:
                self.domains.clear()
            self.domains[name] = state
            return state
        return await self._single(("d", name), load)

    async def load_mailbox(self, email):
        async def load():
            rows = await self._fetch(SQL_MAILBOX, email)
            val = rows[0]["submission_disabled"] if rows else None
            if len(self.mailboxes) > CACHE_MAX:
                self.mailboxes.clear()
            self.mailboxes[email] = val
            return val
        return await self._single(("m", email), load)

    async def load_suppression(self, email):
        async def load():
            rows = await self._fetch(SQL_SUPP, email)
            reasons = tuple(r["reason"] for r in rows)
            self.supp_stale.discard(email)
            if reasons:
                self.suppressed[email] = reasons
            else:
                self.suppressed.pop(email, None)
            return reasons
        return await self._single(("s", email), load)

    # --- decisions -----------------------------------------------------------------
    def decide(self, req):
        """The action for one request: a string, or a coroutine when the cache
        is cold or the message must be counted."""
        self.stats["requests"] += 1
        if not self.healthy:
            return self.settings.db_down_action
        state = req.get("protocol_state", "").upper()
        if req.get("request") != "smtpd_access_policy":
            return "451 4.3.0 Malformed policy request"
        if state not in ("RCPT", "END-OF-MESSAGE"):
            return "DUNNO"
        login = req.get("sasl_username", "").strip().lower()
        if not login:
            return "554 5.7.0 Authentication required"
        sender_domain = _domain_of(req.get("sender", ""))
        login_domain = _domain_of(login)
        rcpt = req.get("recipient", "").strip().lower()
        # everything from memory?
        dom = self.domains.get(sender_domain, _MISSING) if sender_domain else None
        ldom = self.domains.get(login_domain, _MISSING)
        box = self.mailboxes.get(login, _MISSING)
        if (dom is _MISSING or ldom is _MISSING or box is _MISSING
                or (rcpt and rcpt in self.supp_stale)):
            return self._decide_slow(req, state, login, sender_domain, login_domain, rcpt)
        return self._decide_with(req, state, login, dom, ldom, box, rcpt)

    async def _decide_slow(self, req, state, login, sender_domain, login_domain, rcpt):
        try:
            dom = await self.load_domain(sender_domain) if sender_domain else None
            ldom = await self.load_domain(login_domain)
            box = await self.load_mailbox(login)
            if rcpt and rcpt in self.supp_stale:
                await self.load_suppression(rcpt)
        except DbDown:
            return self.settings.db_down_action
        out = self._decide_with(req, state, login, dom, ldom, box, rcpt)
        if asyncio.iscoroutine(out):
            out = await out
        return out

    def _decide_with(self, req, state, login, dom, ldom, box, rcpt):
        # The counted domain: the sender's when we host it, else the login's.
        acct = dom or ldom
        if acct is None or box is None:
            return "554 5.7.1 Sender not hosted here"
        for st in {acct.name: acct, (ldom.name if ldom else ""): ldom}.values():
            if st is not None:
                v = engine.domain_check(st)
                if v:
                    return v.action
        v = engine.mailbox_check(login, box)
        if v:
            return v.action
        if rcpt:
            v = engine.recipient_check(rcpt, self.suppressed.get(rcpt, ()))
            if v:
                return v.action
        if state == "RCPT":
            hint = self.hints.get(acct.id)
            if hint is not None:
                if hint[1] > time.monotonic():
                    return hint[0].action
                del self.hints[acct.id]
            return "DUNNO"
        # END-OF-MESSAGE: count
        try:
            units = max(1, int(req.get("recipient_count") or 1))
        except ValueError:
            units = 1
        try:
            nbytes = max(0, int(req.get("size") or 0))
        except ValueError:
            nbytes = 0
        qid = req.get("queue_id", "")
        key = (f"{qid}:{req.get('instance', '')}:{login}" if qid else uuid.uuid4().hex)
        return self._count(Message(key=key, state=acct, units=units, nbytes=nbytes))

    async def _count(self, msg):
        fut = asyncio.get_running_loop().create_future()
        lane = msg.state.id % self.lanes
        self.pending[lane].append((msg, fut))
        if not self.flushing[lane]:
            self.flushing[lane] = True
            asyncio.ensure_future(self._flush(lane))
        return await fut

    async def _flush(self, lane):
        try:
            await asyncio.sleep(0)          # let the requests of this moment join
            while self.pending[lane]:
                batch = self.pending[lane][:MAX_BATCH]
                del self.pending[lane][:MAX_BATCH]
                await self._run_batch(batch)
        finally:
            self.flushing[lane] = False

    async def _run_batch(self, batch):
        msgs = [m for m, _ in batch]
        try:
            if not self.healthy or self.pool is None:
                raise DbDown()
            ids = sorted({m.state.id for m in msgs})
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    rows = await conn.fetch(SQL_LOCK_SEEN, ids, [m.key for m in msgs])
                    seen = (rows[0]["seen"] or []) if rows else []
                    params = engine.decide_batch(msgs, rows, seen, self.settings)
                    if params is not None:
                        await conn.execute(SQL_APPLY, *params)
            self.stats["batches"] += 1
        except Exception as exc:
            if not isinstance(exc, DbDown):
                self.stats["db_errors"] += 1
                log.error("counting batch failed: %s", exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(self.settings.db_down_action)
            return
        now = time.monotonic()
        for m, fut in batch:
            v = m.result
            if (not v.allowed and v.kind in ("hourly", "daily", "warmup", "monthly", "transfer", "spike")
                    and not isinstance(engine.count_check(m.state, dict(m.counters), 1, 0, self.settings),
                                       tuple)):
                # this domain cannot take even one more recipient: refuse at
                # RCPT until it might (an invalidation clears it sooner)
                self.hints[m.state.id] = (v, now + HINT_TTL)
            elif v.allowed and m.state.id in self.hints:
                del self.hints[m.state.id]
            if v.reason and v.allowed and v.kind != "duplicate":
                log.info("%s: %s", m.state.name, v.reason)
            if not fut.done():
                fut.set_result(v.action)


def parse_request(block):
    req = {}
    for line in block.split(b"\n"):
        if not line:
            continue
        k, sep, v = line.partition(b"=")
        if not sep:
            return None
        req[k.decode("utf-8", "replace").strip()] = v.decode("utf-8", "replace")
    return req


class PolicyProtocol(asyncio.Protocol):
    """One smtpd connection: requests are answered strictly in order."""

    def __init__(self, policy):
        self.policy = policy
        self.buf = b""
        self.queue = []
        self.busy = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.transport = None

    def data_received(self, data):
        self.buf += data.replace(b"\r\n", b"\n")
        while True:
            i = self.buf.find(b"\n\n")
            if i < 0:
                break
            block, self.buf = self.buf[:i], self.buf[i + 2:]
            self.queue.append(block)
        if len(self.buf) > MAX_REQUEST:
            self.transport.close()
            return
        if not self.busy:
            self._drain()

    def _drain(self):
        while self.queue and self.transport is not None:
            block = self.queue.pop(0)
            try:
                req = parse_request(block)
                out = self.policy.decide(req) if req is not None else "451 4.3.0 Malformed policy request"
            except Exception:
                log.exception("policy request failed")
                out = "451 4.3.0 Policy error"
            if isinstance(out, str):
                self.transport.write(f"action={out}\n\n".encode())
                continue
            self.busy = True
            task = asyncio.ensure_future(out)
            task.add_done_callback(self._done)
            return

    def _done(self, task):
        self.busy = False
        try:
            out = task.result()
        except Exception:
            log.exception("policy request failed")
            out = self.policy.settings.db_down_action
        if self.transport is not None:
            self.transport.write(f"action={out}\n\n".encode())
        self._drain()


async def serve(dsn, host, port, settings=None, ready=None):
    policy = Policy(dsn, settings)
    await policy.start()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: PolicyProtocol(policy), host, port,
                                      reuse_address=True, backlog=1024)
    log.info("emboux-policyd listening on %s:%s", host, port)
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


def main(argv=None):
    p = argparse.ArgumentParser(prog="emboux-policyd", description=__doc__.split("\n")[0])
    p.add_argument("--listen", help="HOST:PORT (default $POLICYD_HOST:$POLICYD_PORT, 127.0.0.1:10040)")
    p.add_argument("--dsn", help="mail DB (default $POLICYD_DSN, else $MAILDB_DSN)")
    p.add_argument("--log-level", default=os.environ.get("POLICYD_LOG_LEVEL", "INFO"))
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s emboux-policyd[%(process)d] %(levelname)s %(message)s")
    if args.listen:
        host, _, port = args.listen.rpartition(":")
    else:
        host, port = os.environ.get("POLICYD_HOST", "127.0.0.1"), os.environ.get("POLICYD_PORT", "10040")
    dsn = args.dsn or os.environ.get("POLICYD_DSN") or os.environ.get("MAILDB_DSN")
    if not dsn:
        sys.exit("emboux-policyd: set POLICYD_DSN or MAILDB_DSN")
    try:
        import uvloop  # optional: about twice the throughput
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(dsn, host or "127.0.0.1", int(port), Settings.from_env()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
