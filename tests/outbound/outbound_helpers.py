"""Helpers for tests/outbound. Outbound control end to end: real Postfix (submission), the real
emboux-policyd that ./dev up runs, the real connector and mail DB.

Helpers: `outbound` (a sending domain with two mailboxes and settings applied
through the API), `submit` (send over the submission port with smtplib and
collect what happened), `policyd` (start extra daemon processes on their own
ports) and `PolicyClient` (speak the policy protocol directly).
"""

import contextlib
import datetime as dt
import smtplib
import socket
import uuid

from stack_clients import (DomainOutbound, free_port, submission_session, wait_port,  # noqa: F401 (re-exported)
                           wait_until)


PASSWORD = "correct horse 1"


class Submitter:
    def __init__(self, env):
        self.host = env.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(env["SUBMISSION_PORT"])

    def connect(self, user=None, password=PASSWORD):
        return submission_session(self.host, self.port, user, password)

    def send(self, user, rcpts, n=1, sender=None, body="hello\r\n", password=PASSWORD):
        """Send n messages as `user`; a list of (accepted, code, text) per
        message. A refusal closes the connection (smtpd counts errors)."""
        rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
        sender = sender or user
        out, s = [], None
        for _ in range(n):
            if s is None:
                s = self.connect(user, password)
            subject = f"ob-{uuid.uuid4().hex[:12]}"
            msg = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
                   f"Message-ID: <{subject}@example.net>\r\n\r\n{body}")
            try:
                refused = s.sendmail(sender, rcpts, msg)
                out.append((True, 250, str(refused)))
                continue
            except smtplib.SMTPRecipientsRefused as e:
                code, text = next(iter(e.recipients.values()))
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
                code, text = e.smtp_code, e.smtp_error
            out.append((False, code, text.decode(errors="replace") if isinstance(text, bytes) else text))
            with contextlib.suppress(smtplib.SMTPException):
                s.quit()
            s = None
        if s is not None:
            s.quit()
        return out


class Outbound(DomainOutbound):
    """A tenant's sending domain with a sender and a local recipient."""

    def __init__(self, api, tenant):
        self.api, self.tenant = api, tenant
        self.domain = tenant.domain()
        self.alice = tenant.mailbox(self.domain, "alice")
        self.bob = tenant.mailbox(self.domain, "bob")


def accepted(results):
    return sum(1 for ok, _, _ in results if ok)


# --- the policy protocol, spoken directly ----------------------------------------
class PolicyClient:
    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def raw(self, data):
        self.sock.sendall(data)
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("policy server closed the connection")
            self.buf += chunk
        reply, self.buf = self.buf.split(b"\n\n", 1)
        assert reply.startswith(b"action="), reply
        return reply[len(b"action="):].decode()

    def ask(self, **attrs):
        attrs.setdefault("request", "smtpd_access_policy")
        return self.raw("".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n")

    def message(self, login, rcpt, queue_id=None, size=1000, sender=None):
        """RCPT then END-OF-MESSAGE, as smtpd asks: the END-OF-MESSAGE action."""
        queue_id = queue_id or uuid.uuid4().hex[:12].upper()
        common = dict(sasl_username=login, sender=sender or login, queue_id=queue_id,
                      instance=queue_id.lower(), client_address="127.0.0.1")
        first = self.ask(protocol_state="RCPT", recipient=rcpt, **common)
        if first != "DUNNO":
            return first
        return self.ask(protocol_state="END-OF-MESSAGE", recipient=rcpt, recipient_count=1,
                        size=size, **common)

    def close(self):
        self.sock.close()


def closable(cur, kind):
    """Inside `txn`: forget the closed periods of `kind` ('daily'/'monthly')
    for this transaction only and return the period the job's default closes
    then (yesterday / last month, UTC), as the body field's text."""
    cur.execute("DELETE FROM outbound_resets WHERE kind = %s", (kind,))
    today = dt.datetime.now(dt.UTC).date()
    if kind == "daily":
        return (today - dt.timedelta(days=1)).isoformat()
    return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
