"""The production deployment, docker/compose.yaml, built and started with
podman-compose under a private project name and free loopback ports, then
used from outside like a real installation (issue 13). The deployment and
the `hosted` tenant are session fixtures (conftest.py), shared with the
other modules of tests/deploy.
"""

import imaplib
import json
import smtplib
import ssl
import subprocess
import uuid

import pytest
import requests

from deploy_stack import BASE, PASSWORD, Deployment, plain_message, run, wait_until


def test_health_and_every_healthcheck(deployment):
    body = deployment.healthy().json()
    assert body["status"] == "ok" and body["database"]["ok"] and body["postfix"]["ok"] and body["dovecot"]["ok"]
    # OpenDKIM answers the milter handshake on its socket in the opendkim-run volume
    assert body["opendkim"]["ok"] and body["opendkim"]["reachable"], body["opendkim"]
    # podman runs no healthcheck timers without systemd: run each check once
    for s in ("postgres", "policyd", "redis", "rspamd", "limiter", "mail", "connector", "scheduler", "odoo"):
        r = wait_until(lambda s=s: run("podman", "healthcheck", "run", deployment.container(s), check=False)
                       .returncode == 0, timeout=120)
        assert r, f"healthcheck of {s} fails\n" + deployment.logs()
    state = run("podman", "inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", deployment.container("init"))
    assert state.stdout.split() == ["0", "exited"]
    # nothing but the mail ports and the API is published, and only where asked
    ports = run("podman", "ps", "--filter", f"label=io.podman.compose.project={deployment.project}",
                "--format", "{{.Names}} {{.Ports}}").stdout
    assert "5432" not in ports and "10040" not in ports, ports
    # Redis and Rspamd: unix sockets in volumes, nothing listening on the network (docs/inbound.md)
    for s in ("redis", "rspamd", "limiter"):
        tcp = deployment.exec(s, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true").stdout.splitlines()
        listening = [f[1] for f in (line.split() for line in tcp) if len(f) > 3 and f[3] == "0A"]
        assert all(a.startswith("0100007F:") for a in listening), (s, listening)   # 127.0.0.1 only


def test_failed_authentications_are_counted_in_the_limiter(deployment):
    """One count for all the connector's workers (throttle.py): each wrong
    token is counted in the limiter service's Redis (once per limit: a minute
    and an hour), not in a worker's memory; the connector does not mount
    Rspamd's Redis."""
    d = deployment
    redis = ("redis-cli", "-s", "/run/emboux-redis/redis.sock")

    def counted():
        keys = d.exec("limiter", *redis, "--scan", "--pattern", "LIMITS:*auth-failure*").stdout.split()
        return sum(int(d.exec("limiter", *redis, "LLEN", k).stdout) for k in keys)
    before = counted()
    for _ in range(3):
        r = requests.get(d.url + "/domains/", timeout=30, headers={"Authorization": "Bearer not-a-key"})
        assert r.status_code == 403, r.text
    assert counted() - before == 3 * 2
    assert d.api("GET", "/domains/").status_code == 200     # three failures slow nobody
    mounted = d.exec("connector", "sh", "-c", "ls /run; ls /run/emboux-limiter").stdout
    assert "redis.sock" in mounted and "emboux-redis" not in mounted, mounted


def test_mail_to_25_read_over_993_and_submit_over_465(deployment, hosted):
    d = deployment
    alice, bob = hosted["alice"], hosted["bob"]
    subject = f"inbound-{uuid.uuid4().hex[:8]}"
    with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=30) as s:
        s.ehlo("sender.example.net")
        assert not s.sendmail("someone@example.net", [alice],
                              f"From: someone@example.net\r\nTo: {alice}\r\nSubject: {subject}\r\n\r\nhello\r\n")
        # an anonymous sender on 25 relays nothing
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("someone@example.net", ["victim@example.org"], "Subject: relay\r\n\r\nx\r\n")
    assert wait_until(lambda: subject in d.subjects(alice), timeout=120), d.logs()
    # the connector's doveadm reads the mail container's dovecot.conf and
    # measures the store (billing's storage and the quota answer depend on it)
    used = d.api("GET", f"/users/{alice}/quota").json()
    assert used["storage_used_mb"] is not None and used["storage_used_mb"] > 0, used

    # implicit TLS, verified against the deployment's CA, for MAIL_HOSTNAME's certificate
    sent = f"submitted-{uuid.uuid4().hex[:8]}"
    with smtplib.SMTP_SSL("127.0.0.1", d.ports["SUBMISSIONS"], context=d.tls(), timeout=30) as s:
        s.login(alice, PASSWORD)
        assert not s.sendmail(alice, [bob], f"From: {alice}\r\nTo: {bob}\r\nSubject: {sent}\r\n\r\nhi\r\n")
    assert wait_until(lambda: sent in d.subjects(bob), timeout=120), d.logs()
    # /health counts Postfix's queue from the spool volume (counting: tests/unit/test_health_queue.py)
    q = d.healthy().json()["queue"]
    assert q["ok"] is True and q["active"] >= 0 and q["deferred"] >= 0, q
    with pytest.raises(imaplib.IMAP4.error):
        m = imaplib.IMAP4_SSL("127.0.0.1", d.ports["IMAPS"], ssl_context=d.tls(), timeout=30)
        m.login(alice, "wrong password")
    # a client that does not trust the deployment's CA refuses the certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("127.0.0.1", d.ports["IMAPS"], ssl_context=ssl.create_default_context(), timeout=30)


def test_the_scheduler_ran_the_daily_reset_and_a_repeat_changes_nothing(deployment):
    d = deployment
    jobs = d.healthy().json()["scheduler"]["jobs"]
    assert set(jobs) == {"reset-daily", "reset-monthly", "purge-retention", "poll-verification",
                         "clean-dkim", "pull-json"}, jobs
    assert all(j["last_success_at"] and not j["last_error"] for j in jobs.values()), jobs
    today = d.psql("SELECT (now() AT TIME ZONE 'UTC')::date")
    yesterday = d.psql("SELECT (now() AT TIME ZONE 'UTC')::date - 1")
    assert jobs["reset-daily"]["period"] == today
    assert d.psql("SELECT string_agg(period::text, ',') FROM outbound_resets WHERE kind = 'daily'") == yesterday
    again = d.exec("scheduler", "/opt/emboux/connector-entrypoint.sh", "emboux-connector", "reset-daily")
    assert json.loads(again.stdout)["already_done"] is True
    assert d.psql("SELECT count(*) FROM outbound_resets WHERE kind = 'daily'") == "1"


def test_restarting_every_container_loses_no_message_and_no_record(deployment, hosted):
    d = deployment
    alice, bob = hosted["alice"], hosted["bob"]
    before = {u: sorted(d.subjects(u)) for u in (alice, bob)}
    assert before[alice] and before[bob]
    records = d.psql("SELECT (SELECT count(*) FROM domains) || '/' || (SELECT count(*) FROM mailboxes) "
                     "|| '/' || (SELECT count(*) FROM api_keys)")
    d.compose("restart", timeout=600)
    assert wait_until(d.ready, timeout=600, step=2), "not healthy after the restart\n" + d.logs()
    assert wait_until(lambda: all(sorted(d.subjects(u)) == before[u] for u in (alice, bob)), timeout=120), \
        d.logs()
    assert d.psql("SELECT (SELECT count(*) FROM domains) || '/' || (SELECT count(*) FROM mailboxes) "
                  "|| '/' || (SELECT count(*) FROM api_keys)") == records
    r = d.api("GET", f"/users/{alice}/quota")
    assert r.status_code == 200, r.text
    # and it still works: a new message arrives
    subject = f"after-restart-{uuid.uuid4().hex[:8]}"
    with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=30) as s:
        assert not s.sendmail("someone@example.net", [bob], plain_message("someone@example.net", bob, subject))
    assert wait_until(lambda: subject in d.subjects(bob), timeout=120), d.logs()


def test_a_second_up_changes_nothing(deployment):
    d = deployment
    ids = lambda: run("podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={d.project}",  # noqa: E731
                      "--format", "{{.Names}} {{.ID}}").stdout.split("\n")
    before = sorted(ids())
    d.compose("up", "-d", "--no-build")
    assert sorted(ids()) == before
    assert wait_until(d.ready, timeout=300, step=2), d.logs()


@pytest.mark.parametrize("image,cmd,missing", [
    ("localhost/emboux-connector:latest", ["/opt/emboux/init.sh"], "POSTGRES_PASSWORD"),
    ("localhost/emboux-connector:latest", ["/opt/emboux/init.sh"], "DOVECOT_DB_PASSWORD"),
    ("localhost/emboux-connector:latest", ["gunicorn"], "MAILDB_PASSWORD"),
    ("localhost/emboux-connector:latest", ["gunicorn"], "EMBOUX_API_KEY"),
    ("localhost/emboux-mail:latest", [], "MAIL_HOSTNAME"),
    ("localhost/emboux-mail:latest", [], "TLS_CERT"),
    ("localhost/emboux-postgres:latest", [], "POSTGRES_PASSWORD"),
    ("localhost/emboux-connector:latest", ["/opt/emboux/init.sh"], "ODOO_DB_PASSWORD"),
    ("localhost/emboux-odoo:latest", [], "ODOO_ADMIN_PASSWORD"),
])
def test_a_missing_setting_stops_the_service_naming_it(images, tmp_path, image, cmd, missing):
    """Bad input: the env file without one variable; the service exits at
    once (before touching anything) with the variable's name in its log."""
    lines = [line for line in Deployment(tmp_path).env_file.read_text().splitlines()
             if not line.startswith(f"{missing}=")]
    bad = tmp_path / "bad.env"
    bad.write_text("\n".join(lines) + "\n")
    r = run("podman", "run", "--rm", "--network", "none", "--env-file", str(bad), image, *cmd,
            check=False, timeout=120)
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"{missing} is not set" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("image,cmd,setting,said", [
    ("localhost/emboux-mail:latest", [], "SMTP_PORT=25x", "SMTP_PORT must be a number"),
    ("localhost/emboux-mail:latest", [], "MAIL_HOSTNAME=mail host", "MAIL_HOSTNAME must be a fully qualified"),
    ("localhost/emboux-mail:latest", [], "DOVECOT_DB_PASSWORD=change-me", "DOVECOT_DB_PASSWORD is still"),
    ("localhost/emboux-connector:latest", ["gunicorn"], "EMBOUX_API_KEY=short", "EMBOUX_API_KEY is shorter"),
    ("localhost/emboux-connector:latest", ["/opt/emboux/init.sh"], "MAILDB_PASSWORD=change-me",
     "MAILDB_PASSWORD is still"),
    ("localhost/emboux-postgres:latest", [], "POSTGRES_PASSWORD=change-me", "POSTGRES_PASSWORD is still"),
    ("localhost/emboux-odoo:latest", [], "ODOO_WORKERS=two", "ODOO_WORKERS must be a number"),
    ("localhost/emboux-rspamd:latest", [], "RSPAMD_DNS_SERVERS=10.0.0.53;rm", "RSPAMD_DNS_SERVERS: not a host"),
    ("localhost/emboux-rspamd:latest", [], "RSPAMD_CONNECTOR_URL=connector:8600", "RSPAMD_CONNECTOR_URL must be"),
])
def test_a_malformed_setting_stops_the_service_naming_it(images, tmp_path, image, cmd, setting, said):
    """Bad input: one variable malformed (or left at the example's change-me);
    the service exits before touching anything, naming it."""
    key = setting.split("=", 1)[0]
    lines = [line for line in Deployment(tmp_path).env_file.read_text().splitlines() if not line.startswith(f"{key}=")]
    bad = tmp_path / "bad.env"
    bad.write_text("\n".join(lines + [setting]) + "\n")
    r = run("podman", "run", "--rm", "--network", "none", "--env-file", str(bad), image, *cmd,
            check=False, timeout=120)
    assert r.returncode == 64, r.stdout + r.stderr
    assert said in r.stdout + r.stderr, r.stdout + r.stderr


def test_a_bad_env_file_stops_the_deployment_before_anything_is_created(images, tmp_path):
    """A second deployment whose env file has one malformed mail setting:
    init (every service depends on it) refuses it before creating a role or
    a database, the mail service refuses it too, and nothing serves."""
    bad = Deployment(tmp_path)
    text = bad.env_file.read_text()
    bad.env_file.write_text(text.replace("\nSMTP_PORT=25\n", "\nSMTP_PORT=25x\n"))
    assert "SMTP_PORT=25x" in bad.env_file.read_text()
    try:
        bad.compose("up", "-d", "--no-build")
        state = lambda s: run("podman", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",  # noqa: E731
                              bad.container(s), check=False).stdout.split()
        # exit code 64 (EX_USAGE) and not running ("exited", or "stopped" once podman applied the restart policy)
        refused = lambda s: state(s)[1:] == ["64"] and state(s)[0] != "running"  # noqa: E731
        assert wait_until(lambda: refused("init") and refused("mail"), timeout=300), \
            (state("init"), state("mail"), bad.logs())
        for s in ("init", "mail"):
            log = run("podman", "logs", bad.container(s), check=False)
            assert "SMTP_PORT must be a number (got '25x')" in log.stdout + log.stderr, s
        assert wait_until(lambda: run("podman", "exec", bad.container("postgres"), "pg_isready", "-q", "-h",
                                      "/var/run/postgresql", check=False).returncode == 0, timeout=120)
        dbs = bad.exec("postgres", "runuser", "-u", "postgres", "--", "psql", "-h", "/var/run/postgresql", "-qAt",
                       "-d", "postgres", "-c", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database "
                       "WHERE datname NOT IN ('postgres', 'template0', 'template1')").stdout.strip()
        assert dbs == "", dbs
    finally:
        bad.remove()


def test_backup_and_restore_as_the_readme_says(deployment, hosted, tmp_path):
    """README "Backup and restore": pg_dump of the mail DB and a tar of the
    mail store; a deleted mailbox (row and mail) comes back with both."""
    d = deployment
    bob = hosted["bob"]
    subject = f"backed-up-{uuid.uuid4().hex[:8]}"
    with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=30) as s:
        assert not s.sendmail("someone@example.net", [bob], plain_message("someone@example.net", bob, subject))
    assert wait_until(lambda: subject in d.subjects(bob), timeout=120), d.logs()
    kept = sorted(d.subjects(bob))
    dump, store = tmp_path / "emboux_mail.dump", tmp_path / "vmail.tgz"
    with open(dump, "wb") as f:
        subprocess.run(["podman", "exec", d.container("postgres"), "runuser", "-u", "postgres", "--",
                        "pg_dump", "-h", "/var/run/postgresql", "-Fc", "emboux_mail"], stdout=f, check=True)
    with open(store, "wb") as f:
        subprocess.run(["podman", "run", "--rm", "-v", f"{d.project}_vmail:/v:ro", BASE,
                        "tar", "-C", "/v", "-czf", "-", "."], stdout=f, check=True)
    assert d.api("DELETE", f"/users/{bob}").status_code == 204
    with pytest.raises(imaplib.IMAP4.error):
        d.imaps(bob)

    d.compose("stop", timeout=300)
    run("podman", "start", d.container("postgres"))
    assert wait_until(lambda: run("podman", "exec", d.container("postgres"), "pg_isready", "-q", "-h",
                                  "/var/run/postgresql", check=False).returncode == 0, timeout=120)
    with open(dump, "rb") as f:
        r = subprocess.run(["podman", "exec", "-i", d.container("postgres"), "runuser", "-u", "postgres", "--",
                            "pg_restore", "-h", "/var/run/postgresql", "--clean", "--if-exists",
                            "-d", "emboux_mail"], stdin=f, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(store, "rb") as f:
        subprocess.run(["podman", "run", "--rm", "-i", "-v", f"{d.project}_vmail:/v", BASE,
                        "tar", "-C", "/v", "-xzf", "-"], stdin=f, check=True)
    d.compose("up", "-d", "--no-build")
    assert wait_until(d.ready, timeout=600, step=2), "not healthy after the restore\n" + d.logs()
    assert d.api("GET", f"/users/{bob}/quota").status_code == 200
    assert wait_until(lambda: sorted(d.subjects(bob)) == kept, timeout=120), d.logs()
