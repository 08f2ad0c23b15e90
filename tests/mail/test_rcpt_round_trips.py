"""Port 25's RCPT costs one proxymap round trip (issue 15, docs/mail-server.md "One RCPT"):
counted, not timed. strace follows the smtpd that serves a held connection and counts the
lookups it sends to proxymap for each RCPT: one, the decision (pgsql-recipient.cf), for a
mailbox, an alias, an unknown user and an address only a catch-all lists. Before migration
0031 reject_unlisted_recipient added the alias map and, for an unknown user, the catch-all
and the mailbox map twice: two to five round trips.
"""

import os
import re
import select
import shutil
import smtplib
import subprocess

import pytest

LOOKUP = re.compile(r'^write\(\d+, "request\\0lookup\\0table\\0([^\\]*)\\0', re.M)


def _smtpd_pid(conn, port):
    """The pid of the smtpd on the other end of conn (ss -p)."""
    local_port = conn.sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnpH", f"sport = :{port}", "and", f"dport = :{local_port}"],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"pid=(\d+)", out)
    assert found, f"no process holds the server side of port {local_port}: {out!r}"
    return int(found.group(1))


def _rcpt(conn, address):
    conn.rset()
    assert conn.mail("someone@example.net")[0] == 250
    return conn.docmd(f"RCPT TO:<{address}>")


def _lookups_per_rcpt(conn, port, address, tmp_path, times=5):
    """The proxymap tables smtpd asked while answering `times` RCPTs of address (MAIL, RSET
    and NOOP ask none)."""
    log = tmp_path / "strace.log"
    tracer = subprocess.Popen(["strace", "-p", str(_smtpd_pid(conn, port)), "-e", "trace=write",
                               "-s", "300", "-o", str(log)],
                              stderr=subprocess.PIPE, text=True)
    try:
        # strace says "Process N attached" on stderr once it follows the process
        ready, _, _ = select.select([tracer.stderr], [], [], 30)
        assert ready and "attached" in tracer.stderr.readline(), "strace did not attach"
        replies = [_rcpt(conn, address) for _ in range(times)]
        # every syscall smtpd made for those RCPTs returned before this reply was written
        assert conn.noop()[0] == 250
    finally:
        tracer.terminate()
        tracer.wait(timeout=30)
    return replies, LOOKUP.findall(log.read_text())


@pytest.fixture
def traced():
    if os.geteuid() != 0:
        pytest.skip("strace of Postfix's smtpd needs root")
    for tool in ("strace", "ss"):
        assert shutil.which(tool), f"{tool} missing (scripts/dev/stack-mail.sh installs it)"


def test_one_proxymap_round_trip_per_rcpt(traced, mail, tenant, tmp_path):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice", quota_mb=0)      # no quota: no quota-status either
    r = tenant.post("/aliases/", json={"domain_name": domain, "source": f"team@{domain}", "destination": alice})
    assert r.status_code == 201, r.text
    caught = tenant.domain()
    r = tenant.post("/aliases/", json={"domain_name": caught, "source": f"@{caught}", "destination": alice})
    assert r.status_code == 201, r.text
    cases = ((alice, 250), (f"team@{domain}", 250), (f"nobody@{domain}", 550), (f"nobody@{caught}", 250))
    for port in (mail.smtp_port, int(mail.env.get("SMTP_UNFILTERED_PORT") or 2527)):
        conn = mail.mx() if port == mail.smtp_port else _connect(mail, port)
        try:
            for address, code in cases:
                assert _rcpt(conn, address)[0] == code, address      # warm: the first RCPT opens tables
                replies, tables = _lookups_per_rcpt(conn, port, address, tmp_path)
                assert [c for c, _ in replies] == [code] * 5, (address, replies)
                assert len(tables) == 5 and all(t.endswith("/pgsql-recipient.cf") for t in tables), \
                    (port, address, tables)
        finally:
            conn.quit()


def _connect(mail, port):
    conn = smtplib.SMTP(mail.smtp_host, port, timeout=30)
    conn.ehlo("tester.example.net")
    return conn
