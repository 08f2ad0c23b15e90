"""Helpers of tests/forwarding (fixtures in conftest.py): an anonymous sender
on port 25, the outbound SMTP sink, a tenant's domain with aliases."""

import contextlib
import smtplib
import uuid

from stack_clients import DomainOutbound, Sink, wait_until  # noqa: F401 (Sink, wait_until: re-exported)

PASSWORD = "correct horse 1"


class Port25:
    """An anonymous sender on the MX port."""

    def __init__(self, env):
        self.host = env.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(env["SMTP_PORT"])

    def send(self, sender, rcpts, marker=None, sender_in_from=None):
        """{rcpt: (code, text)} for each RCPT, and the DATA answer (or None
        when no recipient was accepted)."""
        marker = marker or uuid.uuid4().hex
        s = smtplib.SMTP(self.host, self.port, timeout=60)
        try:
            s.ehlo("client.example.com")
            code, text = s.mail(sender)
            assert code == 250, (code, text)
            answers = {r: s.rcpt(r) for r in rcpts}
            data = None
            if any(c == 250 for c, _ in answers.values()):
                data = s.data(f"From: {sender_in_from or sender or 'mailer-daemon@example.net'}\r\n"
                              f"Subject: {marker}\r\nMessage-ID: <{marker}@example.com>\r\n\r\n"
                              f"forward me {marker}\r\n")
            return {r: (c, t.decode(errors="replace")) for r, (c, t) in answers.items()}, data
        finally:
            with contextlib.suppress(smtplib.SMTPException):
                s.quit()


class Forwarder(DomainOutbound):
    """A tenant's domain (created with the master token: operator-vouched, so
    it receives mail at once) with a mailbox and helpers for aliases."""

    def __init__(self, api, tenant):
        self.api, self.tenant = api, tenant
        self.domain = f"d{uuid.uuid4().hex[:10]}.emboux-test.net"
        r = api.post("/domains/", json={"name": self.domain, "partner_ref": tenant.partner_ref})
        assert r.status_code == 201, r.text
        self.alice = f"alice@{self.domain}"
        r = tenant.post("/users/", json={"domain_name": self.domain, "email": self.alice, "password": PASSWORD})
        assert r.status_code == 201, r.text
        # caps that only these tests reach
        self.set(warmup_profile=None, spike_max_multiplier=0)

    def alias(self, local, destinations):
        source = f"{local}@{self.domain}"
        r = self.tenant.post("/aliases/", json={"domain_name": self.domain, "source": source,
                                                "destination": ",".join(destinations)})
        assert r.status_code == 201, r.text
        return source

    def sent_today(self, expected):
        """outbound_sent_today once it shows `expected` (the daemon confirms
        what it served from its lease within moments), else what it is."""
        state = wait_until(lambda: (lambda s: s if s["outbound_sent_today"] == expected else None)(self.get()),
                           timeout=5)
        return (state or self.get())["outbound_sent_today"]


def outside(tag):
    """A fresh address outside EmBoux."""
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.org"
