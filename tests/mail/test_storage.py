"""Quota enforced by Dovecot (and reported by the API), retention purge, health."""

import imaplib
import os
import subprocess
import sys
import time

PASSWORD = "correct horse 1"   # the default of tests/conftest.py Tenant.mailbox


def test_quota_refused_at_rcpt_temporarily_and_reported(mail, tenant):
    domain = tenant.domain()
    small = tenant.mailbox(domain, "small", quota_mb=1)
    roomy = tenant.mailbox(domain, "roomy")            # 0 = unlimited

    # SIZE announced and too big for the mailbox: a temporary refusal at RCPT
    code, text = mail.rcpt(small, size=3 * 1024 * 1024)
    assert code == 452 and text.startswith(b"4.2.2"), (code, text)
    assert mail.rcpt(roomy, size=3 * 1024 * 1024)[0] == 250
    assert mail.rcpt(small, size=10_000)[0] == 250

    # fill most of it; then a message that no longer fits is refused
    subject = mail.send(small, body=("x" * 76 + "\r\n") * 9000)      # ~700 KB
    mail.wait_for(small, PASSWORD, subject)
    code, text = mail.rcpt(small, size=500_000)
    assert code == 452, (code, text)

    r = tenant.get(f"/users/{small}/quota")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["quota_mb"] == 1
    assert 0.6 < body["storage_used_mb"] < 1.0, body

    # raising the quota through the API applies to the next transaction
    r = tenant.put(f"/users/{small}/quota", json={"quota_mb": 10})
    assert r.status_code == 200, r.text
    assert mail.rcpt(small, size=500_000)[0] == 250


def _queued_for(devenv, rcpt):
    """Postfix queue entries (postqueue -j) with a recipient rcpt."""
    import json
    out = subprocess.run(["postqueue", "-c", devenv["POSTFIX_CONFIG_DIR"], "-j"],
                         capture_output=True, text=True, check=True).stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [e for e in entries if any(r["address"] == rcpt for r in e["recipients"])]


def test_full_mailbox_behind_an_alias_is_a_temporary_failure(mail, tenant, devenv):
    """No SIZE check possible for an alias at RCPT: LMTP refuses temporarily,
    the message waits in Postfix's queue and is delivered once it fits."""
    domain = tenant.domain()
    small = tenant.mailbox(domain, "small", quota_mb=1)
    alias = f"contact@{domain}"
    assert tenant.post("/aliases/", json={"domain_name": domain, "source": alias,
                                          "destination": small}).status_code == 201
    mail.wait_for(small, PASSWORD, mail.send(small, body=("x" * 76 + "\r\n") * 9000))   # ~700 KB
    big = mail.send(alias, body=("y" * 76 + "\r\n") * 7000)                          # ~550 KB
    deadline = time.monotonic() + 15
    while True:
        queued = _queued_for(devenv, small)
        reasons = [r.get("delay_reason", "") for e in queued for r in e["recipients"]]
        if any("4.2.2" in x for x in reasons):
            break
        assert time.monotonic() < deadline, f"not deferred with 4.2.2: {queued}"
        time.sleep(0.2)
    assert big not in mail.subjects(small, PASSWORD)
    # room again: the retry delivers it (flush instead of waiting for the backoff)
    assert tenant.put(f"/users/{small}/quota", json={"quota_mb": 10}).status_code == 200
    for e in queued:
        subprocess.run(["postqueue", "-c", devenv["POSTFIX_CONFIG_DIR"], "-i", e["queue_id"]], check=True)
    mail.wait_for(small, PASSWORD, big, timeout=30)


def test_retention_purge_expunges_old_mail_through_dovecot(mail, api, tenant):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    keep = tenant.domain()
    carol = tenant.mailbox(keep, "carol")
    fresh = mail.send(alice)
    mail.wait_for(alice, PASSWORD, fresh)

    old_date = imaplib.Time2Internaldate(time.time() - 40 * 86400)
    for user in (alice, carol):
        m = mail.imap(user, PASSWORD)
        for box, subj in (("INBOX", "old-inbox"), ("Sent", "old-sent")):
            msg = f"From: x@example.net\r\nSubject: {subj}\r\n\r\nold\r\n".encode()
            typ, _ = m.append(box, None, old_date, msg)
            assert typ == "OK"
        m.logout()

    assert api.put(f"/domains/{domain}/retention", json={"retention_days": 30}).status_code == 200
    # keep: retention 0 = forever

    r = api.post("/retention/purge")                 # what Odoo's daily cron calls
    assert r.status_code == 200, r.text
    result = r.json()
    assert not result["errors"], result
    assert result["expunged"] >= 2

    assert mail.subjects(alice, PASSWORD) == [fresh]
    assert mail.subjects(alice, PASSWORD, "Sent") == []
    assert "old-inbox" in mail.subjects(carol, PASSWORD)
    assert "old-sent" in mail.subjects(carol, PASSWORD, "Sent")


def test_retention_purge_command(mail, api, tenant, devenv):
    domain = tenant.domain()
    alice = tenant.mailbox(domain, "alice")
    m = mail.imap(alice, PASSWORD)
    m.append("INBOX", None, imaplib.Time2Internaldate(time.time() - 8 * 86400),
             b"From: x@example.net\r\nSubject: week-old\r\n\r\nold\r\n")
    m.append("INBOX", None, imaplib.Time2Internaldate(time.time() - 2 * 86400),
             b"From: x@example.net\r\nSubject: two-days-old\r\n\r\nold\r\n")
    m.logout()
    assert api.put(f"/domains/{domain}/retention", json={"retention_days": 7}).status_code == 200
    env = {**os.environ, **devenv}
    cli = os.path.join(os.path.dirname(sys.executable), "emboux-connector")
    out = subprocess.run([cli, "purge-retention"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert mail.subjects(alice, PASSWORD) == ["two-days-old"]


def test_health_reports_each_component(api):
    r = api.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    for part in ("database", "postfix", "dovecot"):
        assert body[part]["ok"] is True, body


def test_health_probes_notice_a_dead_server(mailserver_module, monkeypatch):
    assert mailserver_module.check_postfix()[0]
    assert mailserver_module.check_dovecot()[0]
    monkeypatch.setenv("SMTP_PORT", "1")
    monkeypatch.setenv("IMAP_PORT", "1")
    assert mailserver_module.check_postfix()[0] is False
    assert mailserver_module.check_dovecot()[0] is False
    checks = mailserver_module.health_checks()
    assert not checks["postfix"]["ok"] and not checks["dovecot"]["ok"]


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])       # nothing listens there once closed


def test_health_is_503_while_postfix_or_dovecot_is_down(devenv, monkeypatch):
    """The real /health code, in-process, pointed at a dead Postfix or Dovecot
    (the shared stack's servers are not stopped: others test against them)."""
    for key in ("MAILDB_DSN", "EMBOUX_API_KEY", "SMTP_HOST", "SMTP_PORT", "IMAP_HOST", "IMAP_PORT",
                "DOVECOT_CONFIG", "VMAIL_DIR"):
        if devenv.get(key):
            monkeypatch.setenv(key, devenv[key])
    from emboux_connector.app import create_app
    client = create_app(reconcile=False).test_client()

    r = client.get("/health")
    assert r.status_code == 200, r.get_json()

    monkeypatch.setenv("SMTP_PORT", _closed_port())
    r = client.get("/health")
    body = r.get_json()
    assert r.status_code == 503, body
    assert body["postfix"]["ok"] is False and body["dovecot"]["ok"] is True, body
    assert body["database"]["ok"] is True, body

    monkeypatch.setenv("SMTP_PORT", devenv["SMTP_PORT"])
    monkeypatch.setenv("IMAP_PORT", _closed_port())
    r = client.get("/health")
    body = r.get_json()
    assert r.status_code == 503, body
    assert body["dovecot"]["ok"] is False and body["postfix"]["ok"] is True, body
