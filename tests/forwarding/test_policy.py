"""emboux-policyd's forwarding answers, spoken directly: a daemon of our own
(started here on a free port) whose mail DB is unreachable."""

import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from stack_clients import free_port, wait_port

CTX = "emboux_forwarding"


def ask(sock, **attrs):
    attrs.setdefault("request", "smtpd_access_policy")
    sock.sendall("".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n")
    buf = b""
    while b"\n\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "the policy daemon closed the connection"
        buf += chunk
    return buf.split(b"\n\n")[0].decode().removeprefix("action=")


@pytest.fixture
def dead_db_policyd(tmp_path):
    port = free_port()
    exe = pathlib.Path(sys.executable).parent / "emboux-policyd"
    env = dict(os.environ, POLICYD_DSN="postgresql://nobody:x@127.0.0.1:1/none")
    with open(tmp_path / "policyd.log", "wb") as log:  # the child keeps its own copy
        p = subprocess.Popen([str(exe), "--listen", f"127.0.0.1:{port}", "--workers", "1"], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_port(port), (tmp_path / "policyd.log").read_text()
        yield port
    finally:
        p.terminate()
        p.wait(10)


def test_without_its_db_the_daemon_defers_forwarding_but_not_local_mail(dead_db_policyd):
    s = socket.create_connection(("127.0.0.1", dead_db_policyd), timeout=10)
    try:
        common = dict(policy_context=CTX, sender="stranger@example.com", instance=f"i{time.time_ns()}",
                      client_address="192.0.2.1")
        rcpt = ask(s, protocol_state="RCPT", recipient="fw@tenant.example", **common)
        assert rcpt.startswith("451 4.3.0"), rcpt
        # a message that forwarded nothing is never held at END-OF-MESSAGE
        assert ask(s, protocol_state="END-OF-MESSAGE", recipient_count=1, queue_id="Q1", **common) == "DUNNO"
        # submission requests keep their own answer
        assert ask(s, protocol_state="RCPT", recipient="x@example.org", sasl_username="a@b.example",
                   sender="a@b.example").startswith("451 4.3.0")
    finally:
        s.close()


def test_a_recipient_that_no_longer_forwards_is_accepted_not_deferred(devenv, fwd):
    """Postfix asked because the recipient forwarded outside when it looked;
    if that changed meanwhile, the answer is OK (DUNNO would meet the 451
    that stands for a dead daemon)."""
    s = socket.create_connection(("127.0.0.1", int(devenv["POLICYD_PORT"])), timeout=10)
    try:
        common = dict(policy_context=CTX, sender="stranger@example.com", instance=f"i{time.time_ns()}")
        assert ask(s, protocol_state="RCPT", recipient=fwd.alice, **common) == "OK"
        assert ask(s, protocol_state="END-OF-MESSAGE", recipient_count=1, queue_id="Q2", **common) == "DUNNO"
        assert fwd.sent_today(0) == 0
    finally:
        s.close()


def test_the_policy_context_is_read_from_the_request():
    from emboux_connector.policy.protocol import parse_request
    req = parse_request(b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b.example\n"
                        b"ccert_subject=policy_context=emboux_forwarding\npolicy_context=emboux_forwarding\n"
                        b"server_port=25")
    assert req["policy_context"] == CTX and req["recipient"] == "a@b.example"
    assert "policy_context" not in parse_request(b"request=smtpd_access_policy\nx_policy_context=emboux_forwarding")
    assert parse_request(b"policy_context=")["policy_context"] == ""
