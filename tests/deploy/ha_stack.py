"""The high-availability overlay under test: docker/compose.yaml +
docker/compose.ha.yaml started with podman-compose under its own project
name and free loopback ports (tests/deploy/test_ha.py; bench/ha.py).
Only the services the HA scenario needs are started (no Odoo, webmail,
scheduler or reports), so it stays lean beside the single-node tests."""

import json
import secrets
import smtplib

from deploy_stack import COMPOSE, PASSWORD, ROOT, Deployment, run
from stack_clients import free_port

HA_COMPOSE = ROOT / "docker" / "compose.ha.yaml"
HA_IMAGE = "localhost/emboux-patroni:latest"
HA_SERVICES = ("etcd1", "etcd2", "etcd3", "pg1", "pg2", "postgres", "init", "policyd", "policyd2", "redis", "rspamd",
               "limiter", "mail", "mail2", "connector")
NODE2 = ("SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "MANAGESIEVE")


def build_ha_image(base):
    run("podman", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}",
        "-f", "docker/Dockerfile.patroni", "-t", HA_IMAGE, ".", cwd=ROOT, timeout=1800)


class HADeployment(Deployment):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.project = self.project.replace("embtest", "embha")
        with self.env_file.open("a") as f:
            f.write(f"REPLICATION_PASSWORD={secrets.token_hex(12)}\n")
        self.node2 = {k: free_port() for k in NODE2}
        self.env.update({f"EMBOUX_NODE2_PORT_{k}": str(v) for k, v in self.node2.items()},
                        EMBOUX_NODE2_BIND="127.0.0.1")

    def compose(self, *args, check=True, timeout=600):
        return run("podman-compose", "-p", self.project, "-f", str(COMPOSE), "-f", str(HA_COMPOSE), *args,
                   env=self.env, cwd=ROOT, check=check, timeout=timeout)

    def up(self):
        self.compose("up", "-d", "--no-build", *HA_SERVICES)

    def logs(self):
        out = []
        for s in HA_SERVICES:
            r = run("podman", "logs", "--tail", "25", self.container(s), check=False)
            out.append(f"== {s}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return "\n".join(out)

    def members(self, via=None):
        """Patroni's view of the cluster, {name: role} (Leader, Sync Standby,
        Replica), asked of a running member."""
        for m in ([via] if via else ["pg1", "pg2"]):
            r = self.exec(m, "patronictl", "-c", "/run/patroni/patroni.yml", "list", "-f", "json", check=False)
            if r.returncode == 0:
                return {x["Member"]: (x["Role"], x["State"]) for x in json.loads(r.stdout)}
        return {}

    def primary(self, via=None):
        leaders = [m for m, (role, state) in self.members(via).items() if role == "Leader" and state == "running"]
        return leaders[0] if len(leaders) == 1 else None

    def psql(self, query, member=None):
        member = member or self.primary()
        return self.exec(member, "runuser", "-u", "postgres", "--", "psql", "-h", "/run/postgresql", "-qAt",
                         "-d", "emboux_mail", "-c", query).stdout.strip()

    def port(self, node, kind):
        return self.ports[kind] if node == "mail" else self.node2[kind]

    def submit(self, node, user, rcpt, subject):
        """One message over implicit-TLS submission of `node`: (accepted, code)."""
        try:
            with smtplib.SMTP_SSL("127.0.0.1", self.port(node, "SUBMISSIONS"), context=self.tls(),
                                  timeout=120) as s:
                s.login(user, PASSWORD)
                s.sendmail(user, [rcpt], f"From: {user}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhi\r\n")
                return True, 250
        except smtplib.SMTPRecipientsRefused as e:
            return False, next(iter(e.recipients.values()))[0]
        except smtplib.SMTPResponseException as e:
            return False, e.smtp_code

    def inbound(self, node, rcpt, subject):
        """One message to port 25 of `node`: the SMTP code of its end (250, 4xx, 5xx)."""
        try:
            with smtplib.SMTP("127.0.0.1", self.port(node, "SMTP"), timeout=60) as s:
                s.ehlo("sender.example.net")
                s.sendmail("someone@example.net", [rcpt],
                           f"From: someone@example.net\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhello\r\n")
                return 250
        except smtplib.SMTPRecipientsRefused as e:
            return next(iter(e.recipients.values()))[0]
        except smtplib.SMTPResponseException as e:
            return e.smtp_code
        except (OSError, smtplib.SMTPException):
            return None     # no answer at all: the sender keeps its copy and retries
