"""The production deployment under test: docker/compose.yaml started with
podman-compose under a private project name and free loopback ports
(fixtures in conftest.py; every module of tests/deploy shares the one
deployment of the session)."""

import email.utils
import imaplib
import os
import pathlib
import secrets
import ssl
import subprocess
import time
import uuid

import requests

from stack_clients import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
BASE = os.environ.get("DEPLOY_BASE_IMAGE", "localhost/debian:bookworm")
IMAGES = {"localhost/emboux-postgres:latest": "docker/Dockerfile.postgres",
          "localhost/emboux-connector:latest": "docker/Dockerfile.connector",
          "localhost/emboux-mail:latest": "docker/Dockerfile",
          "localhost/emboux-odoo:latest": "docker/Dockerfile.odoo",
          "localhost/emboux-webmail:latest": "docker/Dockerfile.webmail",
          "localhost/emboux-rspamd:latest": "docker/Dockerfile.rspamd"}
SERVICES = ("postgres", "init", "policyd", "redis", "rspamd", "limiter", "mail", "connector", "scheduler", "odoo",
            "webmail")
HOSTNAME = "mail.deploy.test"
PASSWORD = "deploy horse 1"


def plain_message(frm, to, subject, body="x"):
    """A well-formed message (From, To, Date, Message-ID): Rspamd scores a
    bare one (no From, no Date, no Message-ID) into Junk."""
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {email.utils.formatdate()}\r\n"
            f"Message-ID: {email.utils.make_msgid(domain=frm.split('@')[1])}\r\n\r\n{body}\r\n")


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
        self.ports = {k: free_port() for k in ("SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "API", "ODOO",
                                               "WEBMAIL", "MANAGESIEVE")}
        self.odoo_password = secrets.token_hex(12)
        self.api_key = secrets.token_hex(24)
        self.env_file = tmp / "mail.env"
        example = (ROOT / "docker" / "mail.env.example").read_text()
        values = {"POSTGRES_PASSWORD": secrets.token_hex(12), "MAILDB_PASSWORD": secrets.token_hex(12),
                  "EMBOUX_API_KEY": self.api_key, "MAIL_HOSTNAME": HOSTNAME,
                  "POSTFIX_DB_PASSWORD": secrets.token_hex(12), "DOVECOT_DB_PASSWORD": secrets.token_hex(12),
                  "OPENDKIM_DB_PASSWORD": secrets.token_hex(12), "SRS_DOMAIN": HOSTNAME,
                  "TLS_EXTRA_NAMES": "DNS:localhost,IP:127.0.0.1",
                  "ODOO_DB_PASSWORD": secrets.token_hex(12), "ODOO_ADMIN_PASSWORD": self.odoo_password,
                  "ODOO_MASTER_PASSWORD": secrets.token_hex(12)}
        lines = []
        for line in example.splitlines():
            key = line.split("=", 1)[0]
            lines.append(f"{key}={values[key]}" if "=" in line and not line.startswith("#") and key in values
                         else line)
        self.env_file.write_text("\n".join(lines) + "\n")
        assert "change-me" not in "\n".join(ln for ln in lines if not ln.startswith("#"))
        # EMBOUX_WEBMAIL_USE_HTTPS=false: the test's browser talks plain http to
        # the published port (in production a TLS reverse proxy sits in front)
        self.env = dict(os.environ, EMBOUX_ENV_FILE=str(self.env_file), EMBOUX_BIND="127.0.0.1",
                        EMBOUX_WEBMAIL_USE_HTTPS="false",
                        BASE_IMAGE=BASE, **{f"EMBOUX_PORT_{k}": str(v) for k, v in self.ports.items()})
        self.url = f"http://127.0.0.1:{self.ports['API']}"
        self.odoo_url = f"http://127.0.0.1:{self.ports['ODOO']}"
        self.webmail_url = f"http://127.0.0.1:{self.ports['WEBMAIL']}"
        self.ca = tmp / "ca.pem"

    def compose(self, *args, check=True, timeout=600):
        return run("podman-compose", "-p", self.project, "-f", str(COMPOSE), *args,
                   env=self.env, cwd=ROOT, check=check, timeout=timeout)

    def remove(self):
        """Everything the project started: containers, network, every named volume."""
        self.compose("down", "-v", check=False, timeout=300)
        run("podman", "network", "rm", "-f", f"{self.project}_default", check=False)
        names = run("podman", "volume", "ls", "--format", "{{.Name}}", check=False).stdout.split()
        for v in names:
            if v.startswith(f"{self.project}_"):
                run("podman", "volume", "rm", "-f", v, check=False)

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

    def odoo_ready(self):
        return requests.get(self.odoo_url + "/web/health", timeout=10).status_code == 200

    def filter_ready(self):
        """Rspamd's healthcheck passes: its milter and controller answer (it
        loads its rules for a minute or two after a start; meanwhile port 25
        defers)."""
        return run("podman", "healthcheck", "run", self.container("rspamd"), check=False).returncode == 0

    def ready(self):
        """The API healthy, Odoo answering and the filter up: after a restart
        or a restore."""
        return self.healthy() and self.odoo_ready() and self.filter_ready()

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
    """podman build of the images (layers cached between runs). The
    machine's CA bundle is lent to pip for the build (a TLS-intercepting
    egress proxy), see docker/Dockerfile.connector; this machine's clock is
    ahead of the Debian mirror, so sid's Release file counts as expired
    (APT_CHECK_VALID_UNTIL, docker/Dockerfile.odoo)."""
    ca = "/etc/ssl/certs/ca-certificates.crt"
    for tag, dockerfile in IMAGES.items():
        extra = ["-v", f"{ca}:/run/build-ca.crt:ro", "--build-arg", "PIP_CERT=/run/build-ca.crt"] \
            if ("connector" in tag or "odoo" in tag) and os.path.exists(ca) else []
        if "odoo" in tag:
            extra += ["--build-arg", "APT_CHECK_VALID_UNTIL=false"]
        run("podman", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE}", *extra,
            "-f", dockerfile, "-t", tag, ".", cwd=ROOT, timeout=1800)


