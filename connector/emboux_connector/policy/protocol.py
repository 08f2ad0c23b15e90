"""The Postfix policy delegation protocol: one smtpd connection
(PolicyProtocol), its requests parsed (parse_request) and answered strictly
in order; the decision itself is Policy.decide (daemon.py)."""

import asyncio
import logging

log = logging.getLogger("emboux.policyd")

MAX_REQUEST = 64 * 1024

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
