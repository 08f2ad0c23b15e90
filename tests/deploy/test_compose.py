"""The production deployment, docker/compose.yaml, built and started with
podman-compose under a private project name and free loopback ports, then
used from outside like a real installation (issue 13).

Set-up (scripts/dev/stack-deploy.sh, `./dev deploy-setup`): podman,
podman-compose and the local base image localhost/debian:bookworm (no image
registry is reachable here). The images are built with `podman build`
(cached between runs); the first build on a fresh machine takes a few
minutes (README, "Production"). Everything the test started is removed at
the end, volumes included.
"""

import imaplib
import json
import os
import pathlib
import secrets
import smtplib
import ssl
import subprocess
import time
import uuid

import pytest
import requests

from stack_clients import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
BASE = os.environ.get("DEPLOY_BASE_IMAGE", "localhost/debian:bookworm")
IMAGES = {"localhost/emboux-postgres:latest": "docker/Dockerfile.postgres",
          "localhost/emboux-connector:latest": "docker/Dockerfile.connector",
          "localhost/emboux-mail:latest": "docker/Dockerfile"}
SERVICES = ("postgres", "init", "policyd", "mail", "connector", "scheduler")
HOSTNAME = "mail.deploy.test"
PASSWORD = "deploy horse 1"


def run(*cmd, check=True, timeout=900, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def wait_until(fn, timeout=300, step=1.0):
    """Poll fn until truthy (a generous ceiling, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = fn()
        except Exception:  # not up yet
            got = None
        if got or time.monotonic() > deadline:
            return got
        time.sleep(step)


class Deployment:
    def __init__(self, tmp):
        self.project = f"embtest{uuid.uuid4().hex[:8]}"
        self.ports = {k: free_port() for k in ("SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "API")}
        self.api_key = secrets.token_hex(24)
        self.env_file = tmp / "mail.env"
        example = (ROOT / "docker" / "mail.env.example").read_text()
        values = {"POSTGRES_PASSWORD": secrets.token_hex(12), "MAILDB_PASSWORD": secrets.token_hex(12),
                  "EMBOUX_API_KEY": self.api_key, "MAIL_HOSTNAME": HOSTNAME,
                  "POSTFIX_DB_PASSWORD": secrets.token_hex(12), "DOVECOT_DB_PASSWORD": secrets.token_hex(12),
                  "OPENDKIM_DB_PASSWORD": secrets.token_hex(12), "SRS_DOMAIN": HOSTNAME,
                  "TLS_EXTRA_NAMES": "DNS:localhost,IP:127.0.0.1"}
        lines = []
        for line in example.splitlines():
            key = line.split("=", 1)[0]
            lines.append(f"{key}={values[key]}" if "=" in line and not line.startswith("#") and key in values
                         else line)
        self.env_file.write_text("\n".join(lines) + "\n")
        assert "change-me" not in "\n".join(ln for ln in lines if not ln.startswith("#"))
        self.env = dict(os.environ, EMBOUX_ENV_FILE=str(self.env_file), EMBOUX_BIND="127.0.0.1",
                        BASE_IMAGE=BASE, **{f"EMBOUX_PORT_{k}": str(v) for k, v in self.ports.items()})
        self.url = f"http://127.0.0.1:{self.ports['API']}"
        self.ca = tmp / "ca.pem"

    def compose(self, *args, check=True, timeout=600):
        return run("podman-compose", "-p", self.project, "-f", str(COMPOSE), *args,
                   env=self.env, cwd=ROOT, check=check, timeout=timeout)

    def container(self, service):
        return f"{self.project}_{service}_1"

    def exec(self, service, *cmd, check=True):
        return run("podman", "exec", self.container(service), *cmd, check=check, timeout=120)

    def psql(self, query):
        return self.exec("postgres", "runuser", "-u", "postgres", "--", "psql", "-h", "/var/run/postgresql",
                         "-p", "5432", "-qAt", "-d", "emboux_mail", "-c", query).stdout.strip()

    def api(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=30,
                                headers={"Authorization": f"Bearer {self.api_key}"}, **kw)

    def healthy(self):
        r = requests.get(self.url + "/health", timeout=10)
        return r.status_code == 200 and r

    def logs(self):
        out = []
        for s in SERVICES:
            r = run("podman", "logs", "--tail", "30", self.container(s), check=False)
            out.append(f"== {s}\n{r.stdout[-2500:]}{r.stderr[-2500:]}")
        return "\n".join(out)

    def tls(self):
        return ssl.create_default_context(cafile=str(self.ca))

    def imaps(self, user):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.ports["IMAPS"], ssl_context=self.tls(), timeout=30)
        m.login(user, PASSWORD)
        return m

    def subjects(self, user):
        m = self.imaps(user)
        try:
            m.select("INBOX")
            out = []
            for num in m.search(None, "ALL")[1][0].split():
                raw = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].decode()
                out.append(raw.split(":", 1)[1].strip())
            return out
        finally:
            m.logout()


def build_images():
    """podman build of the three images (layers cached between runs). The
    machine's CA bundle is lent to pip for the build (a TLS-intercepting
    egress proxy), see docker/Dockerfile.connector."""
    ca = "/etc/ssl/certs/ca-certificates.crt"
    for tag, dockerfile in IMAGES.items():
        extra = ["-v", f"{ca}:/run/build-ca.crt:ro", "--build-arg", "PIP_CERT=/run/build-ca.crt"] \
            if "connector" in tag and os.path.exists(ca) else []
        run("podman", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE}", *extra,
            "-f", dockerfile, "-t", tag, ".", cwd=ROOT, timeout=1800)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the deployment test needs root (podman, apt-get)")
    run("bash", str(ROOT / "dev"), "deploy-setup", cwd=ROOT, timeout=1800)
    started = time.monotonic()
    build_images()
    built = time.monotonic()
    d = Deployment(tmp_path_factory.mktemp("deploy"))
    try:
        d.compose("up", "-d", "--no-build")
        ok = wait_until(d.healthy, timeout=600, step=2)
        assert ok, "the deployment did not become healthy\n" + d.logs()
        d.ca.write_text(d.exec("mail", "cat", "/etc/emboux-mail/tls/ca.pem").stdout)
        print(f"\ndeployment: images {built - started:.0f} s, up and healthy {time.monotonic() - built:.0f} s")
        yield d
    finally:
        d.compose("down", "-v", check=False, timeout=300)
        run("podman", "network", "rm", "-f", f"{d.project}_default", check=False)
        for v in ("pgdata", "vmail", "spool", "dovecot-run", "mail-etc", "tls"):
            run("podman", "volume", "rm", "-f", f"{d.project}_{v}", check=False)


@pytest.fixture(scope="module")
def hosted(deployment):
    """A tenant, its master-created (vouched) domain and two mailboxes, made
    through the deployment's API."""
    d = deployment
    ref = f"p{uuid.uuid4().hex[:8]}"
    r = d.api("POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 2, "mailboxes_per_domain": 5})
    assert r.status_code == 201, r.text
    domain = f"{uuid.uuid4().hex[:10]}.deploy-test.net"
    r = d.api("POST", "/domains/", json={"name": domain, "partner_ref": ref})
    assert r.status_code == 201, r.text
    boxes = []
    for local in ("alice", "bob"):
        r = d.api("POST", "/users/", json={"domain_name": domain, "email": f"{local}@{domain}",
                                           "password": PASSWORD})
        assert r.status_code == 201, r.text
        boxes.append(f"{local}@{domain}")
    return {"domain": domain, "alice": boxes[0], "bob": boxes[1], "partner_ref": ref}


def test_health_and_every_healthcheck(deployment):
    body = deployment.healthy().json()
    assert body["status"] == "ok" and body["database"]["ok"] and body["postfix"]["ok"] and body["dovecot"]["ok"]
    # podman runs no healthcheck timers without systemd: run each check once
    for s in ("postgres", "policyd", "mail", "connector", "scheduler"):
        r = wait_until(lambda s=s: run("podman", "healthcheck", "run", deployment.container(s), check=False)
                       .returncode == 0, timeout=120)
        assert r, f"healthcheck of {s} fails\n" + deployment.logs()
    state = run("podman", "inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", deployment.container("init"))
    assert state.stdout.split() == ["0", "exited"]
    # nothing but the mail ports and the API is published, and only where asked
    ports = run("podman", "ps", "--filter", f"label=io.podman.compose.project={deployment.project}",
                "--format", "{{.Names}} {{.Ports}}").stdout
    assert "5432" not in ports and "10040" not in ports, ports


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
    assert set(jobs) == {"reset-daily", "reset-monthly", "purge-retention", "poll-verification", "clean-dkim"}, jobs
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
    assert wait_until(d.healthy, timeout=600, step=2), "not healthy after the restart\n" + d.logs()
    assert wait_until(lambda: all(sorted(d.subjects(u)) == before[u] for u in (alice, bob)), timeout=120), \
        d.logs()
    assert d.psql("SELECT (SELECT count(*) FROM domains) || '/' || (SELECT count(*) FROM mailboxes) "
                  "|| '/' || (SELECT count(*) FROM api_keys)") == records
    r = d.api("GET", f"/users/{alice}/quota")
    assert r.status_code == 200, r.text
    # and it still works: a new message arrives
    subject = f"after-restart-{uuid.uuid4().hex[:8]}"
    with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=30) as s:
        assert not s.sendmail("someone@example.net", [bob], f"Subject: {subject}\r\n\r\nx\r\n")
    assert wait_until(lambda: subject in d.subjects(bob), timeout=120), d.logs()


def test_a_second_up_changes_nothing(deployment):
    d = deployment
    ids = lambda: run("podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={d.project}",  # noqa: E731
                      "--format", "{{.Names}} {{.ID}}").stdout.split("\n")
    before = sorted(ids())
    d.compose("up", "-d", "--no-build")
    assert sorted(ids()) == before
    assert wait_until(d.healthy, timeout=300, step=2), d.logs()


@pytest.mark.parametrize("image,cmd,missing", [
    ("localhost/emboux-connector:latest", ["/opt/emboux/init.sh"], "POSTGRES_PASSWORD"),
    ("localhost/emboux-connector:latest", ["/opt/emboux/init.sh"], "DOVECOT_DB_PASSWORD"),
    ("localhost/emboux-connector:latest", ["gunicorn"], "MAILDB_PASSWORD"),
    ("localhost/emboux-connector:latest", ["gunicorn"], "EMBOUX_API_KEY"),
    ("localhost/emboux-mail:latest", [], "MAIL_HOSTNAME"),
    ("localhost/emboux-mail:latest", [], "TLS_CERT"),
    ("localhost/emboux-postgres:latest", [], "POSTGRES_PASSWORD"),
])
def test_a_missing_setting_stops_the_service_naming_it(deployment, tmp_path, image, cmd, missing):
    """Bad input: the env file without one variable; the service exits at
    once (before touching anything) with the variable's name in its log."""
    lines = [line for line in deployment.env_file.read_text().splitlines()
             if not line.startswith(f"{missing}=")]
    bad = tmp_path / "bad.env"
    bad.write_text("\n".join(lines) + "\n")
    r = run("podman", "run", "--rm", "--network", "none", "--env-file", str(bad), image, *cmd,
            check=False, timeout=120)
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"{missing} is not set" in r.stdout + r.stderr, r.stdout + r.stderr


def test_backup_and_restore_as_the_readme_says(deployment, hosted, tmp_path):
    """README "Backup and restore": pg_dump of the mail DB and a tar of the
    mail store; a deleted mailbox (row and mail) comes back with both."""
    d = deployment
    bob = hosted["bob"]
    subject = f"backed-up-{uuid.uuid4().hex[:8]}"
    with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=30) as s:
        assert not s.sendmail("someone@example.net", [bob], f"Subject: {subject}\r\n\r\nx\r\n")
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
    assert wait_until(d.healthy, timeout=600, step=2), "not healthy after the restore\n" + d.logs()
    assert d.api("GET", f"/users/{bob}/quota").status_code == 200
    assert wait_until(lambda: sorted(d.subjects(bob)) == kept, timeout=120), d.logs()
