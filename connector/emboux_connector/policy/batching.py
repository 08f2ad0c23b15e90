"""Decisions: a request answered from memory when it can be (RCPT, and
END-OF-MESSAGE within this process's lease), else a coroutine; messages that
must be counted in the DB wait for their lane's next batch, and one
transaction decides and counts the whole batch (group commit)."""

import asyncio
import logging
import time
import uuid

from . import engine, forwarding
from .cache import DbDown
from .engine import Message, dollar
from .leases import LEASE_TTL, RETRY_WAIT, SQL_GRANT

log = logging.getLogger("emboux.policyd")

MAX_BATCH = 512
HINT_TTL = 5.0

SQL_LOCK_SEEN = dollar(engine.LOCK_AND_SEEN_SQL)
SQL_APPLY = dollar(engine.APPLY_SQL)

_MISSING = object()
# main.cf's emboux_autoreply_policy (policy_context=): set by Postfix's
# configuration, never by the SMTP client.
AUTOREPLY_CONTEXT = "emboux_autoreply"


def _domain_of(addr):
    if not addr or "@" not in addr:
        return ""
    return addr.rsplit("@", 1)[1].strip().rstrip(".").lower()


def _message(req, login, acct):
    """The END-OF-MESSAGE request as the Message to count against domain acct."""
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
    return Message(key=key, state=acct, units=units, nbytes=nbytes)


class DecisionMixin:
    """Policy.decide and the batches of END-OF-MESSAGE counted in the DB."""

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
        if req.get("policy_context") == AUTOREPLY_CONTEXT:
            # Postfix's loopback auto-reply service (Sieve's vacation replies,
            # docs/inbound.md): no login; the envelope sender is the mailbox
            # whose reply it is, judged and counted as if it had logged in.
            login = req.get("sender", "").strip().lower()
            if not login:
                return "554 5.7.1 An auto-reply needs the mailbox as its sender"
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
        return self.count_message(_message(req, login, acct))     # END-OF-MESSAGE: count

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

    async def _run_batch(self, batch):
        msgs = [m for m, _ in batch]
        try:
            if not self.healthy or self.pool is None:
                raise DbDown()
            started = time.monotonic()
            pool, retry, served = await self._decide_and_count(msgs)
            if retry:
                self._confirm_wake.set()      # our own unconfirmed units may be what is reserved
            self.stats["batches"] += 1
            self._keep_grants(pool, served, started)
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
        self._answer_batch(batch, retry)

    async def _decide_and_count(self, msgs):
        """One transaction under the counters' row locks: soft-enforcement
        messages decided and counted (engine.decide_batch), hard ones served
        from quota granted here (leases.py); the holders of leases that a
        message waits for are asked to give them back."""
        ids = sorted({m.state.id for m in msgs})
        soft = [m for m in msgs if m.state.enforcement != "hard"]
        hard = [m for m in msgs if m.state.enforcement == "hard"]
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(SQL_LOCK_SEEN, ids, [m.key for m in msgs])
            seen = (rows[0]["seen"] or []) if rows else []
            if soft:
                params = engine.decide_batch(soft, rows, seen, self.settings)
                if params is not None:
                    await conn.execute(SQL_APPLY, *params)
            pool, retry, served = self._grant(hard, rows, seen)
            g = sorted(i for i, p in pool.items() if p.granted_units or p.granted_bytes)
            if g:
                await conn.execute(SQL_GRANT, g, [pool[i].granted_units for i in g],
                                   [pool[i].granted_bytes for i in g], self.holder, LEASE_TTL)
            for dom_id in sorted({m.state.id for m in hard if id(m) in retry}):
                await conn.execute("SELECT pg_notify('emboux_policy', $1)", f"r:{dom_id}")
        return pool, retry, served

    def _answer_batch(self, batch, retry):
        """Committed: answer every message not retried, and keep or clear the
        domain's RCPT hint."""
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
