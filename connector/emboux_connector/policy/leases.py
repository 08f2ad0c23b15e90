"""Leases (hard enforcement): quota reserved in the DB for this process
and one domain, served from memory, topped up in the background, confirmed
in small batches and given back when idle, invalidated or contended. The DB
row lock still decides: a cap is exact across processes and hosts."""

import asyncio
import contextlib
import logging
import time

from . import engine
from .engine import dollar

log = logging.getLogger("emboux.policyd")

SQL_LOCK = dollar(engine.COUNTERS_LOCK_SQL)
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
RECENT_MAX = 100_000
RETRY_WAIT = 0.03       # a cap looks reached while others hold leases: ask them back, retry
RETRIES = 20


def _tally(acc, dom_id, units, nbytes):
    """acc[dom_id] += (units, bytes): quota per domain on its way to the DB."""
    t = acc.get(dom_id)
    if t is None:
        t = acc[dom_id] = [0, 0]
    t[0] += units
    t[1] += nbytes


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


class Grant:
    """Quota of one domain in one batch's transaction: what is left of it
    after serving the batch's messages (units, bytes) and what the
    transaction granted (granted_units, granted_bytes)."""
    __slots__ = ("units", "bytes", "track_bytes", "granted_units", "granted_bytes")

    def __init__(self, track_bytes):
        self.units = self.bytes = self.granted_units = self.granted_bytes = 0
        self.track_bytes = track_bytes


class LeaseMixin:
    """Policy's leases and what it owes the DB (confirm, served, returns)."""

    def _return_all(self):
        for dom_id in list(self.leases):
            self._return_lease(dom_id)

    def _return_lease(self, dom_id):
        lease = self.leases.pop(dom_id, None)
        if lease is not None and (lease.units or lease.bytes):
            _tally(self.returns, dom_id, lease.units, lease.bytes)

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
            async with self.pool.acquire() as conn, conn.transaction():
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

    def _grant(self, msgs, rows, seen):
        """Lease quota for hard-enforcement messages under the row locks held:
        every message of the batch is served from quota granted in this
        transaction (what is left joins the process's lease after the commit).
        Returns ({domain id: Grant}, set of id(message) to retry,
        {domain id: [messages served]})."""
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
            g = pool.get(dom_id)
            if g is None:
                g = pool[dom_id] = Grant(engine.byte_cap(m.state, c) is not None)
            if not self._grant_for(m, g, c, self.contended.get(dom_id, 0) > now):
                # Anything reserved (other daemons' leases, or units served
                # and not yet confirmed) may come back: ask, then retry.
                if (c["reserved_units"] or c["reserved_bytes"]) and m.retries < RETRIES:
                    retry.add(id(m))
                continue
            seen.add(m.key)
            served.setdefault(dom_id, []).append(m)
            m.result = engine.OK
        return pool, retry, served

    def _grant_for(self, m, g, c, contended):
        """Serve message m from the domain's Grant g, granting what it lacks
        under counters c. False when the DB refuses (m.result is the refusal)."""
        need_u = max(0, m.units - g.units)
        need_b = max(0, m.nbytes - g.bytes) if g.track_bytes else 0
        if need_u or need_b:
            ku, kb, refusal = engine.lease_grant(m.state, c, need_u, need_b, self.settings, contended)
            if refusal is not None:
                m.result = refusal
                return False
            g.units += ku
            g.bytes += kb
            g.granted_units += ku           # granted in this transaction
            g.granted_bytes += kb
        g.units -= m.units
        if g.track_bytes:
            g.bytes -= m.nbytes
        return True

    def _keep_grants(self, pool, served, started):
        """After the batch's commit: the granted quota is ours; what is left
        joins the process's lease."""
        for dom_id, g in pool.items():
            for m in served.get(dom_id, ()):
                self._record(m, m.nbytes if g.track_bytes else 0)
            if g.units or g.bytes:
                lease = self.leases.get(dom_id)
                if lease is None or not lease.valid(started):
                    self._return_lease(dom_id)
                    lease = self.leases[dom_id] = Lease(g.track_bytes)
                lease.add(g.units, g.bytes, started + LEASE_USE, granted=(g.granted_units, g.granted_bytes))
                lease.last_use = time.monotonic()

    async def _confirm_forever(self):
        last_sweep = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._confirm_wake.wait(), CONFIRM_EVERY)
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
                    async with self.pool.acquire() as conn, conn.transaction():
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
            async with self.pool.acquire() as conn, conn.transaction():
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
