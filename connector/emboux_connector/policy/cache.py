"""The policy daemon's memory of the mail DB: domain, mailbox and
suppression rows cached per process, dropped the moment the DB says they
changed (LISTEN emboux_policy, fed by triggers), and the connection that
listens. While that connection is down the cache may be stale, so the daemon
is unhealthy: every request gets a temporary refusal until it is back."""

import asyncio
import logging
import time

import asyncpg

from . import engine
from .engine import dollar
from .leases import LEASE_USE

log = logging.getLogger("emboux.policyd")

CACHE_MAX = 200_000

SQL_DOMAIN = dollar(engine.HOSTED_DOMAIN_STATE_SQL)
SQL_MAILBOX = dollar(engine.MAILBOX_SQL)
SQL_SUPP = dollar(engine.SUPPRESSION_SQL)


class DbDown(Exception):
    pass


class CacheMixin:
    """Policy's caches (domains, mailboxes, suppressed, supp_stale, hints) and
    its DB connections (the LISTEN connection and the pool)."""

    def _invalidate_all(self):
        self.domains.clear()
        self.mailboxes.clear()
        self.hints.clear()
        self._return_all()

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
                conn.add_termination_listener(lambda c, lost=lost: lost.set())
                await conn.add_listener("emboux_policy", self._on_notify)
                await self._on_connected(conn)
                delay = 0.2
                await self._keepalive(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.error("mail DB connection lost: %s", exc)
            finally:
                self._on_disconnected(conn)
            if self.pool is not None:
                # connections of the pool may point at the dead server
                self.pool.terminate()
                self.pool = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _on_connected(self, conn):
        """Listening: load the suppression list, open the pool, start from an
        empty cache, and serve."""
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
        log.info("connected to the mail DB; %d suppressed addresses", len(self.suppressed))

    @staticmethod
    async def _keepalive(conn, lost):
        """Until the connection is lost: a silently dead link must not keep a stale cache."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), 2)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=2)

    def _on_disconnected(self, conn):
        was = self.healthy
        self.healthy = False
        if self.down_since is None:
            self.down_since = time.monotonic()
        self._invalidate_all()
        if conn is not None:
            conn.terminate()
        if was:
            log.warning("answering temporary refusals until the mail DB is back")

    async def _fetch(self, sql, *args):
        if not self.healthy or self.pool is None:
            raise DbDown()
        try:
            return await self.pool.fetch(sql, *args)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
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
