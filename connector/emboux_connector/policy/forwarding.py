"""Forwarding is outbound mail: the policy for aliases whose destinations leave EmBoux.

Postfix asks only about recipients that fan out to addresses not hosted here
(pgsql-forwarding.cf returns the restriction class `emboux_forwarding`, on
port 25 and on submission); those requests carry
`policy_context=emboux_forwarding`. Plain mailbox delivery never reaches
the daemon at RCPT. Per message:

* RCPT: the recipient's final destinations (mailserver.forward_targets,
  one query). Outside destinations on the suppression list are skipped
  (transport_maps discards that copy, logged here and by Postfix); if no
  destination is left at all, the recipient is refused. Each domain that
  owns an alias on the way (the domain charged) must not be suspended,
  its outbound not suspended, and its caps must take the new outside
  destinations (`sent + reserved` read without a lock, as a pre-check):
  otherwise 5xx (4xx for the hourly throttle), so a fan-out beyond a cap
  is refused at RCPT, never dropped. Accepted: the answer is OK and the
  units wait in this process, keyed by smtpd's `instance`.
* END-OF-MESSAGE (port 25 asks for every message; no pending units is an
  immediate DUNNO, so local mail never waits on the DB): the units are
  counted exactly like a submission (leases, batches, engine.lease_grant /
  decide_batch), one message key per charged domain, bytes = message size.
  A refusal there (a race with other senders at the cap) refuses the
  message.

Both stages use the same policy service spec in main.cf, so smtpd sends
them over one connection, to the worker that holds the units.
"""

import collections
import logging
import time

from . import engine
from .cache import DbDown
from .engine import Message, dollar

log = logging.getLogger("emboux.policyd.forwarding")

CONTEXT = "emboux_forwarding"
PENDING_MAX = 100_000           # messages between RCPT and END-OF-MESSAGE (aborted ones age out)

SQL_TARGETS = dollar("SELECT owner_domain, destination, external FROM mailserver.forward_targets(%s)")
SQL_COUNTERS = dollar("""
SELECT domain_id, sent_today, sent_month, bytes_month, warmup_day, reserved_units, reserved_bytes,
       CASE WHEN hour_start = date_trunc('hour', now()) THEN sent_hour ELSE 0 END AS sent_hour
FROM outbound_counters WHERE domain_id = ANY(%s)
""")


class Pending:
    """One message's accepted outside destinations, per charged domain."""
    __slots__ = ("dests", "units", "states")

    def __init__(self):
        self.dests = set()          # counted once per message (cleanup drops duplicate recipients)
        self.units = {}             # domain id -> outside destinations accepted
        self.states = {}            # domain id -> DomainState


def domain_check(state):
    """Suspension rules for forwarded mail. Provider verification does not
    apply: a forwarded copy leaves with the platform's SRS sender through the
    default relay, not through the tenant's provider."""
    if state.status == "suspended":
        return f"554 5.7.1 Domain {state.name} is suspended; its aliases do not forward"
    if state.outbound_status == "suspended":
        why = f": {state.outbound_status_reason}" if state.outbound_status_reason else ""
        return f"554 5.7.1 Outbound mail for {state.name} is suspended{why}; its aliases do not forward"
    return None


class Forwarding:
    def __init__(self, policy):
        self.policy = policy
        self.pending = collections.OrderedDict()    # smtpd instance -> Pending

    def decide(self, req):
        state = req.get("protocol_state", "").upper()
        if state == "END-OF-MESSAGE":
            msg = self.pending.pop(req.get("instance", ""), None)
            if msg is None:
                return "DUNNO"              # nothing forwarded: local mail never waits here
            return self._count(req, msg)
        if state != "RCPT" or req.get("request") != "smtpd_access_policy":
            return "DUNNO"
        if not self.policy.healthy:
            return self.policy.settings.db_down_action
        return self._rcpt(req)

    async def _rcpt(self, req):
        p = self.policy
        rcpt = req.get("recipient", "").strip().lower()
        instance = req.get("instance", "")
        try:
            rows = await p._fetch(SQL_TARGETS, rcpt)
            external = [r for r in rows if r["external"]]
            if not external:
                # changed since Postfix looked: nothing leaves. OK, never DUNNO:
                # in the restriction class DUNNO falls through to the 451 that
                # stands for a dead daemon.
                return "OK"
            has_local = any(not r["external"] for r in rows)
            msg = self.pending.get(instance) or Pending()
            wanted, skipped = await self._wanted(msg, external)
            if skipped:
                log.info("forwarding %s (instance %s): not sent to %s: on the suppression list",
                         rcpt, instance, ", ".join(skipped))
                if not wanted and not has_local and len(skipped) == len(external):
                    return (f"550 5.1.1 Every destination of {rcpt} is on the suppression list; "
                            f"not forwarded")
            states = await self._sending_states(wanted)
            if isinstance(states, str):
                return states
            if not wanted:
                return "OK"
            ids = sorted({st.id for st in states.values()})
            counters = {c["domain_id"]: dict(c) for c in await p._fetch(SQL_COUNTERS, ids)}
        except DbDown:
            return p.settings.db_down_action
        for name, dests in wanted.items():
            st = states[name]
            refusal = self._cap_check(st, counters.get(st.id), msg.units.get(st.id, 0) + len(dests))
            if refusal:
                return (f"{refusal[0]} Forwarding {rcpt} to {len(dests)} outside address(es) refused: "
                        f"{refusal[1]}")
        for name, dests in wanted.items():
            st = states[name]
            msg.units[st.id] = msg.units.get(st.id, 0) + len(dests)
            msg.states[st.id] = st
            msg.dests.update(dests)
        self.pending[instance] = msg
        self.pending.move_to_end(instance)
        while len(self.pending) > PENDING_MAX:
            self.pending.popitem(last=False)
        return "OK"

    async def _wanted(self, msg, external):
        """({owner domain: [destinations]}, [suppressed destinations]) of the
        external targets not yet counted for this message."""
        p = self.policy
        wanted, skipped = {}, []
        for r in external:
            dest = r["destination"]
            if dest in msg.dests:
                continue                # already counted for this message
            if dest in p.supp_stale:
                await p.load_suppression(dest)
            if dest in p.suppressed:
                skipped.append(dest)
                continue
            wanted.setdefault(r["owner_domain"], []).append(dest)
        return wanted, skipped

    async def _sending_states(self, wanted):
        """{domain name: its state} of the domains the forward is sent as, or
        the refusal (a string) when one of them may not send now."""
        p = self.policy
        states = {}
        for name in wanted:
            st = p.domains.get(name, _MISSING)
            if st is _MISSING:
                st = await p.load_domain(name)
            if st is None:
                return f"451 4.3.0 Forwarding domain {name} is not available, try again later"
            refusal = domain_check(st)
            if refusal:
                return refusal
            states[name] = st
        return states

    def _cap_check(self, st, c, units):
        """(code, text) when `units` more recipients do not fit the domain's
        caps, else None. Our own unused lease is not spent."""
        p = self.policy
        hint = p.hints.get(st.id)
        if hint is not None and hint[1] > time.monotonic():
            v = hint[0]
            return v.action.split(" ", 2)[0] + " " + v.action.split(" ", 2)[1], v.reason
        if c is None:
            return "451 4.3.0", f"no counters for {st.name} yet, try again later"
        lease = p.leases.get(st.id)
        if lease is not None:
            c["reserved_units"] = max(0, c["reserved_units"] - lease.units)
        soft = st.enforcement == "soft"
        for kind, used, cap, code, text in engine.unit_caps(st, c, p.settings):
            if used + units > cap and (kind == "hourly" or not soft):
                return code, text
        return None

    async def _count(self, req, msg):
        p = self.policy
        qid = req.get("queue_id", "")
        instance = req.get("instance", "")
        try:
            nbytes = max(0, int(req.get("size") or 0))
        except ValueError:
            nbytes = 0
        for dom_id, units in msg.units.items():
            key = f"{qid}:{instance}:fwd:{dom_id}".replace("\t", " ")
            out = p.count_message(Message(key=key, state=msg.states[dom_id], units=units, nbytes=nbytes))
            if not isinstance(out, str):
                out = await out
            if out != "DUNNO":
                log.info("forwarded message %s refused at END-OF-MESSAGE: %s", qid, out)
                return out
        return "DUNNO"


_MISSING = object()

