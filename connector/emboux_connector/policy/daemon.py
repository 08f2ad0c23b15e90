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
"""

import argparse
import asyncio
import collections
import gc
import logging
import os
import signal
import socket
import sys
import time
import uuid

import asyncpg

from . import engine, forwarding, workers
from .engine import Message, Settings, dollar

log = logging.getLogger("emboux.policyd")

MAX_REQUEST = 64 * 1024
MAX_BATCH = 512
HINT_TTL = 5.0
CACHE_MAX = 200_000

SQL_DOMAIN = dollar(engine.HOSTED_DOMAIN_STATE_SQL)
SQL_MAILBOX = dollar(engine.MAILBOX_SQL)
SQL_SUPP = dollar(engine.SUPPRESSION_SQL)
SQL_LOCK = dollar(engine.COUNTERS_LOCK_SQL)
SQL_LOCK_SEEN = dollar(engine.LOCK_AND_SEEN_SQL)
SQL_APPLY = dollar(engine.APPLY_SQL)
SQL_GRANT = dollar(engine.GRANT_SQL)
SQL_LOCK_ROWS = dollar(engine.LOCK_ROWS_SQL)
SQL_CONFIRM = dollar(engine.CONFIRM_SQL)
SQL_SWEEP_LOCK = dollar(engine.SWEEP_LOCK_SQL)
SQL_SWEEP = dollar(engine.SWEEP_SQL)

LEASE_TTL = 30.0        # a lease expires in the DB this long after its last renewal
LEASE_USE = 20.0        # ... and we stop using it 10 s before that
LEASE_IDLE = 2.0        # unused this long: given back
# How often consumed units are confirmed in the DB: small batches often, so
# the DB's work (about 16 us per message) comes in slices of a few ms rather
# than bursts that take a core away from the daemon; a message waiting on
# unconfirmed units (near a cap) wakes the confirmation at once.
CONFIRM_EVERY = 0.02
SWEEP_EVERY = 5.0
RETRY_WAIT = 0.03       # a cap looks reached while others hold leases: ask them back, retry
RETRIES = 20
RECENT_MAX = 100_000
STARTUP_WAIT = 5.0      # before serving, for the mail DB

_MISSING = object()


class DbDown(Exception):
    pass


def _tally(acc, dom_id, units, nbytes):
    """acc[dom_id] += (units, bytes): quota per domain on its way to the DB."""
    t = acc.get(dom_id)
    if t is None:
        t = acc[dom_id] = [0, 0]
    t[0] += units
    t[1] += nbytes


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
            try:
                await asyncio.wait_for(asyncio.shield(self._refiller), 5)
            except Exception:
                pass
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
        self._return_all()

    def _return_all(self):
        for dom_id in list(self.leases):
            self._return_lease(dom_id)

    def _return_lease(self, dom_id):
        lease = self.leases.pop(dom_id, None)
        if lease is not None and (lease.units or lease.bytes):
            _tally(self.returns, dom_id, lease.units, lease.bytes)

    def _on_notify(self, conn, pid, channel, payload):
        kind, _, key = payload.partition(":")
        if payload == "*":
            self._invalidate_all()
        elif kind == "d":
            # settings or verification changed (a parent's too): drop them
            # all, leases too (they were granted under the old settings)
            self.domains.clear()
            self.hints.clear()
            self._return_all()
        elif kind == "r":
            # another daemon is short of quota for this domain: give ours back
            try:
                dom_id = int(key)
            except ValueError:
                return
            self._return_lease(dom_id)
            self.contended[dom_id] = time.monotonic() + 2.0
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
                if self.down_since is not None and time.monotonic() - self.down_since > LEASE_USE - 5:
                    # our leases may have expired meanwhile: the sweeper counted
                    # them as sent, so what we served from them is accounted for
                    self.confirm.clear()
                    self.served.clear()
                    self.returns.clear()
                self.down_since = None
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
                if self.down_since is None:
                    self.down_since = time.monotonic()
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
        if req.get("policy_context") == forwarding.CONTEXT:
            return self.forwarding.decide(req)
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
        for st in (acct, ldom if ldom is not acct else None):
            if st is not None:
                v = engine.domain_check(st)
                if v:
                    return v.action
        if box:                                 # submission disabled
            return engine.mailbox_check(login, box).action
        if rcpt and rcpt in self.suppressed:
            return engine.recipient_check(rcpt, self.suppressed[rcpt]).action
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
        if "\t" in key:
            key = key.replace("\t", " ")       # a field separator in CONFIRM_SQL
        return self.count_message(Message(key=key, state=acct, units=units, nbytes=nbytes))

    def count_message(self, msg):
        """Count an accepted message: "DUNNO" at once when it fits this
        process's lease, else a coroutine (the next batch) giving the action."""
        if msg.state.enforcement == "hard":
            if msg.key in self.recent:
                return "DUNNO"                  # a repeated request: counted once
            lease = self.leases.get(msg.state.id)
            if lease is not None and lease.fits(msg, time.monotonic()):
                self._consume(lease, msg)
                return "DUNNO"
        return self._count(msg)

    def _consume(self, lease, msg):
        lease.units -= msg.units
        lb = msg.nbytes if lease.track_bytes else 0
        lease.bytes -= lb
        lease.last_use = time.monotonic()
        self._record(msg, lb)
        if lease.low() and not lease.refilling:
            self._want_refill(lease, msg.state)

    # --- refilling leases ahead of need ------------------------------------------
    # A lease that runs dry makes every message of its domain wait for a grant
    # transaction, and leases granted together run dry together: the whole
    # daemon stalls for a round trip to a busy DB. So a lease below half of
    # its last grant is topped up in the background (all such leases in one
    # transaction) while it goes on serving. Same rule, same row locks as a
    # grant on the message path: the DB still decides, a cap is still exact.
    def _want_refill(self, lease, state):
        if self.contended.get(state.id, 0) > time.monotonic():
            return                  # another daemon is short: no hoarding
        lease.refilling = True
        self.refills[state.id] = (lease, state)
        if self._refiller is None:
            self._refiller = asyncio.ensure_future(self._refill_pending())

    async def _refill_pending(self):
        try:
            await asyncio.sleep(0)          # let this moment's refills join
            while self.refills:
                todo, self.refills = self.refills, {}
                await self._refill(todo)
        finally:
            self._refiller = None

    async def _refill(self, todo):
        ids = sorted(todo)
        grants = {}
        started = time.monotonic()
        try:
            if not self.healthy or self.pool is None:
                return
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    rows = await conn.fetch(SQL_LOCK, ids)
                    for r in rows:
                        lease, state = todo[r["domain_id"]]
                        ku, kb, refusal = engine.lease_grant(
                            state, dict(r), 1, 1 if lease.track_bytes else 0, self.settings)
                        if refusal is None:         # near a cap: the message path decides
                            grants[r["domain_id"]] = (ku, kb)
                    if grants:
                        g = sorted(grants)
                        await conn.execute(SQL_GRANT, g, [grants[i][0] for i in g], [grants[i][1] for i in g],
                                           self.holder, LEASE_TTL)
        except Exception as exc:
            grants = {}
            self.stats["db_errors"] += 1
            log.error("refilling leases failed: %s", exc)
        finally:
            for lease, _ in todo.values():
                lease.refilling = False
        for dom_id, (ku, kb) in grants.items():
            lease = todo[dom_id][0]
            if self.leases.get(dom_id) is lease:
                lease.add(ku, kb, started + LEASE_USE)
            else:                           # returned meanwhile (invalidated): give it back too
                _tally(self.returns, dom_id, ku, kb)

    def _record(self, msg, lb):
        dom_id = msg.state.id
        self.confirm.append(f"{msg.key}\t{dom_id}\t{msg.units}\t{msg.nbytes}")
        _tally(self.served, dom_id, msg.units, lb)
        self.recent[msg.key] = True
        if len(self.recent) > RECENT_MAX:
            self.recent.popitem(last=False)

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

    def _requeue(self, msg, fut):
        if fut.done():
            return
        lane = msg.state.id % self.lanes
        self.pending[lane].append((msg, fut))
        if not self.flushing[lane]:
            self.flushing[lane] = True
            asyncio.ensure_future(self._flush(lane))

    def _grant(self, msgs, rows, seen):
        """Lease quota for hard-enforcement messages under the row locks held:
        every message of the batch is served from quota granted in this
        transaction (what is left joins the process's lease after the commit).
        Returns ({domain id: [units, bytes, track_bytes] granted and left},
        set of id(message) to retry, {domain id: [messages served]})."""
        counters = {r["domain_id"]: dict(r) for r in rows}
        seen = set(seen)
        pool, retry, served = {}, set(), {}
        now = time.monotonic()
        for m in msgs:
            dom_id = m.state.id
            c = counters.get(dom_id)
            if c is None:
                m.result = engine.refuse("554 5.7.1", f"Domain {m.state.name} is not hosted here", "unknown")
                continue
            m.counters = c
            if m.key in seen or m.key in self.recent:
                m.result = engine.Verdict(True, "DUNNO", "already counted", kind="duplicate")
                continue
            p = pool.get(dom_id)
            if p is None:
                p = pool[dom_id] = [0, 0, engine.byte_cap(m.state, c) is not None, 0, 0]
            need_u = max(0, m.units - p[0])
            need_b = max(0, m.nbytes - p[1]) if p[2] else 0
            if need_u or need_b:
                contended = self.contended.get(dom_id, 0) > now
                ku, kb, refusal = engine.lease_grant(m.state, c, need_u, need_b, self.settings, contended)
                if refusal is not None:
                    # Anything reserved (other daemons' leases, or units served
                    # and not yet confirmed) may come back: ask, then retry.
                    if (c["reserved_units"] or c["reserved_bytes"]) and m.retries < RETRIES:
                        retry.add(id(m))
                    else:
                        m.result = refusal
                    continue
                p[0] += ku
                p[1] += kb
                p[3] += ku           # granted in this transaction
                p[4] += kb
            p[0] -= m.units
            if p[2]:
                p[1] -= m.nbytes
            seen.add(m.key)
            served.setdefault(dom_id, []).append(m)
            m.result = engine.OK
        return pool, retry, served

    async def _confirm_forever(self):
        last_sweep = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._confirm_wake.wait(), CONFIRM_EVERY)
            except asyncio.TimeoutError:
                pass
            self._confirm_wake.clear()
            if not self.healthy or self.pool is None:
                continue
            now = time.monotonic()
            for dom_id, lease in list(self.leases.items()):
                if lease.deadline <= now or lease.last_use + LEASE_IDLE <= now:
                    self._return_lease(dom_id)
            try:
                if self.confirm or self.returns:
                    await self._confirm_once()
                if now - last_sweep > SWEEP_EVERY:
                    last_sweep = now
                    async with self.pool.acquire() as conn:
                        async with conn.transaction():
                            await conn.execute(SQL_SWEEP_LOCK)
                            await conn.execute(SQL_SWEEP)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats["db_errors"] += 1
                log.error("confirming leased units failed (will retry): %s", exc)

    async def _confirm_once(self):
        confirm, self.confirm = self.confirm, []
        served, self.served = self.served, {}
        returns, self.returns = self.returns, {}
        try:
            leaving = {}                      # what leaves the leases: served or given back
            for part in (served, returns):
                for dom_id, (units, nbytes) in part.items():
                    _tally(leaving, dom_id, units, nbytes)
            ids = sorted(leaving)
            started = time.monotonic()
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute(SQL_LOCK_ROWS, ids)
                    await conn.execute(SQL_CONFIRM, "\n".join(confirm),
                                       ids, [leaving[i][0] for i in ids], [leaving[i][1] for i in ids],
                                       LEASE_TTL, self.holder)
            for dom_id in ids:                 # renewed in the DB
                lease = self.leases.get(dom_id)
                if lease is not None:
                    lease.deadline = max(lease.deadline, started + LEASE_USE)
        except BaseException:
            # keep them for the next round (order does not matter)
            self.confirm[:0] = confirm
            for back, part in ((self.served, served), (self.returns, returns)):
                for dom_id, (units, nbytes) in part.items():
                    _tally(back, dom_id, units, nbytes)
            raise

    async def _run_batch(self, batch):
        msgs = [m for m, _ in batch]
        try:
            if not self.healthy or self.pool is None:
                raise DbDown()
            ids = sorted({m.state.id for m in msgs})
            soft = [m for m in msgs if m.state.enforcement != "hard"]
            hard = [m for m in msgs if m.state.enforcement == "hard"]
            started = time.monotonic()
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    rows = await conn.fetch(SQL_LOCK_SEEN, ids, [m.key for m in msgs])
                    seen = (rows[0]["seen"] or []) if rows else []
                    if soft:
                        params = engine.decide_batch(soft, rows, seen, self.settings)
                        if params is not None:
                            await conn.execute(SQL_APPLY, *params)
                    pool, retry, served = self._grant(hard, rows, seen)
                    g = sorted(i for i, p in pool.items() if p[3] or p[4])
                    if g:
                        await conn.execute(SQL_GRANT, g, [pool[i][3] for i in g], [pool[i][4] for i in g],
                                           self.holder, LEASE_TTL)
                    for dom_id in sorted({m.state.id for m in hard if id(m) in retry}):
                        await conn.execute("SELECT pg_notify('emboux_policy', $1)", f"r:{dom_id}")
            if retry:
                self._confirm_wake.set()      # our own unconfirmed units may be what is reserved
            self.stats["batches"] += 1
            # committed: the granted quota is ours; what is left joins the lease
            for dom_id, p in pool.items():
                for m in served.get(dom_id, ()):
                    self._record(m, m.nbytes if p[2] else 0)
                if p[0] or p[1]:
                    lease = self.leases.get(dom_id)
                    if lease is None or not lease.valid(started):
                        self._return_lease(dom_id)
                        lease = self.leases[dom_id] = Lease(p[2])
                    lease.add(p[0], p[1], started + LEASE_USE, granted=(p[3], p[4]))
                    lease.last_use = time.monotonic()
            loop = asyncio.get_running_loop()
            for m, fut in batch:
                if id(m) in retry:
                    m.retries += 1
                    loop.call_later(RETRY_WAIT, self._requeue, m, fut)
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
            if id(m) in retry:
                continue
            v = m.result
            if (not v.allowed and v.kind in ("hourly", "daily", "warmup", "monthly", "transfer", "spike")
                    and self._exhausted(m)):
                # this domain cannot take even one more recipient: refuse at
                # RCPT until it might (an invalidation clears it sooner)
                self.hints[m.state.id] = (v, now + HINT_TTL)
            elif v.allowed and m.state.id in self.hints:
                del self.hints[m.state.id]
            if v.reason and v.allowed and v.kind != "duplicate":
                log.info("%s: %s", m.state.name, v.reason)
            if not fut.done():
                fut.set_result(v.action)


    def _exhausted(self, m):
        """True when the domain cannot take even one more recipient."""
        c = dict(m.counters)
        if m.state.enforcement == "hard":
            return engine.lease_grant(m.state, c, 1, 0, self.settings)[2] is not None
        return isinstance(engine.count_check(m.state, c, 1, 0, self.settings), engine.Verdict)


class Lease:
    """Quota reserved in the DB for this process and one domain."""
    __slots__ = ("units", "bytes", "track_bytes", "deadline", "last_use", "low_units", "low_bytes",
                 "refilling")

    def __init__(self, track_bytes):
        self.units = 0
        self.bytes = 0
        self.track_bytes = track_bytes
        self.deadline = 0.0
        self.last_use = time.monotonic()
        self.low_units = self.low_bytes = 0     # refill below these: half of the last grant
        self.refilling = False

    def add(self, units, nbytes, deadline, granted=None):
        self.units += units
        self.bytes += nbytes
        self.deadline = max(self.deadline, deadline)
        gu, gb = granted or (units, nbytes)
        if gu or gb:
            self.low_units, self.low_bytes = gu // 2, gb // 2

    def low(self):
        return self.units < self.low_units or (self.track_bytes and self.bytes < self.low_bytes)

    def valid(self, now):
        return self.deadline > now

    def fits(self, msg, now):
        return (self.deadline > now and self.units >= msg.units
                and (not self.track_bytes or self.bytes >= msg.nbytes))


# The attributes a decision reads; smtpd sends about thirty, one per line.
ATTRIBUTES = ("request", "protocol_state", "sasl_username", "sender", "recipient",
              "recipient_count", "size", "queue_id", "instance")
_NEEDLES = tuple((name, b"\n" + name.encode() + b"=", len(name) + 2) for name in ATTRIBUTES)
# ... and policy_context (forwarding.py), which smtpd sends near the end of
# a request: searched from the end, a quarter of a forward search's cost.
_CONTEXT = b"\npolicy_context="


def parse_request(block):
    """{name: value} of the attributes we read (lines we do not read are not
    even split: one C-level search per attribute is half the cost of parsing
    all thirty). A request without them is answered as malformed."""
    block = b"\n" + block + b"\n"
    req = {}
    for name, needle, skip in _NEEDLES:
        i = block.find(needle)
        if i >= 0:
            i += skip
            req[name] = block[i:block.index(b"\n", i)].decode("utf-8", "replace")
    i = block.rfind(_CONTEXT)
    if i >= 0:
        i += 16
        req["policy_context"] = block[i:block.index(b"\n", i)].decode("utf-8", "replace")
    return req


_DUNNO = b"action=DUNNO\n\n"


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
        if not self.buf and not self.busy and data.find(b"\n\n") == len(data) - 2 and b"\r" not in data:
            self._answer(data[:-2])            # the usual case: one whole request
            return
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
            if not self._answer(self.queue.pop(0)):
                return

    def _answer(self, block):
        """Answer one request; False when the answer comes later (_done)."""
        try:
            out = self.policy.decide(parse_request(block))
        except Exception:
            log.exception("policy request failed")
            out = "451 4.3.0 Policy error"
        if isinstance(out, str):
            self.transport.write(_DUNNO if out == "DUNNO" else f"action={out}\n\n".encode())
            return True
        self.busy = True
        task = asyncio.ensure_future(out)
        task.add_done_callback(self._done)
        return False

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
    p.add_argument("--log-level", default=os.environ.get("POLICYD_LOG_LEVEL", "INFO"))
    p.add_argument("--workers", type=int, default=None,
                   help="processes sharing the port (default $POLICYD_WORKERS, else one per two CPUs, 1 to 4)")
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
    n = args.workers if args.workers is not None else workers.default_workers()
    try:
        socks = workers.listening_sockets(host or "127.0.0.1", int(port), max(1, n))
    except OSError as exc:
        sys.exit(f"emboux-policyd: cannot listen on {host}:{port}: {exc.strerror}")
    settings = Settings.from_env()
    tune_runtime()

    def run(sock):
        asyncio.run(serve(dsn, sock, settings))

    if len(socks) == 1:
        run(socks[0])
        return 0
    return workers.supervise(socks, run)


if __name__ == "__main__":
    sys.exit(main())
