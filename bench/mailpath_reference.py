"""The reference of bench/mailpath.py: the same Postfix and Dovecot as
EmBoux's, as private instances in a temporary directory on other ports, with
static hash maps and a passwd-file (the same password hashes), no EmBoux
lookup, no policy service, no milter, no quota: the physical limit of this
machine for this software."""
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from devenv import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from stack_clients import free_port, wait_port  # noqa: E402 (shared with the tests)

VMAIL_UID = 5000


def pid_file(path):
    with contextlib.suppress(OSError, ValueError):
        return int(pathlib.Path(path).read_text().split()[0])
    return None



# --- the reference: bare Postfix + Dovecot ----------------------------------------------
REF_MAIN = """compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = ref.mailpath.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = hash:{root}/etc/domains
virtual_mailbox_maps = hash:{root}/etc/mailboxes
virtual_alias_maps = hash:{root}/etc/aliases
smtpd_sender_login_maps = hash:{root}/etc/logins
virtual_transport = lmtp:unix:private/dovecot-lmtp
lmtp_destination_recipient_limit = 50
smtpd_helo_required = yes
enable_long_queue_ids = yes
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_unlisted_recipient
message_size_limit = 52428800
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtp_tls_security_level = may
relayhost = [127.0.0.1]:{sink}
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/dovecot-auth
smtpd_sasl_auth_enable = no
smtpd_client_event_limit_exceptions = 127.0.0.1
"""
REF_SUBMISSION = """{port} inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=reject_non_fqdn_recipient
"""
REF_MASTER_TAIL = """pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
REF_DOVECOT = """instance_name = mailpath-ref-{tag}
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
hostname = ref.mailpath.test
default_internal_user = dovecot
default_login_user = dovenull
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
passdb {{
  driver = passwd-file
  args = {root}/etc/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/etc/passwd
}}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {uid}
first_valid_uid = {uid}
last_valid_uid = {uid}
mailbox_list_index = yes
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {root}/spool/private/dovecot-lmtp {{
    user = postfix
    group = postfix
    mode = 0600
  }}
}}
service auth {{
  unix_listener {root}/spool/private/dovecot-auth {{
    user = postfix
    group = postfix
    mode = 0600
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@ref.mailpath.test
}}
"""


class Reference:
    """Bare Postfix + Dovecot in a temporary directory, serving the tenant's
    domain and mailboxes from static maps (same hashes as EmBoux's DB)."""

    def __init__(self, env, tenant, dkim_milter):
        self.env, self.tenant, self.dkim_milter = env, tenant, dkim_milter
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="mailpath-ref-", dir="/tmp"))
        self.smtp_port, self.submission_port, self.submission_dkim_port = free_port(), free_port(), free_port()
        self.smtp_milter_port = free_port()
        # EmBoux's port-25 milters (Rspamd), as its Postfix names them
        self.inbound_milters = subprocess.run(
            ["postconf", "-c", env["POSTFIX_CONFIG_DIR"], "-xh", "smtpd_milters"],
            capture_output=True, text=True).stdout.strip()
        self.vmail = self.root / "vmail"
        self.started = []

    def _run(self, *cmd):
        # output to a file: a daemon's children keep a pipe open for ever
        with open(self.root / "setup.log", "a+") as log:
            out = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
            log.seek(0)
            out.stdout, out.stderr = log.read()[-2000:], ""
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stdout}{out.stderr}")

    def start(self):
        r, t = self.root, self.tenant
        os.chmod(r, 0o755)
        for d in ("etc", "spool", "data", "dovecot-run", "dovecot-state", "vmail"):
            (r / d).mkdir()
        (r / "spool" / "private").mkdir()
        shutil.chown(r / "spool" / "private", "postfix", "root")
        os.chmod(r / "spool" / "private", 0o700)
        shutil.chown(r / "data", "postfix", "postfix")
        os.chown(self.vmail, VMAIL_UID, VMAIL_UID)
        etc = r / "etc"
        cert, key = self.env["MAIL_TLS_CERT"], str(pathlib.Path(self.env["MAIL_TLS_CERT"]).with_name("key.pem"))
        (etc / "main.cf").write_text(REF_MAIN.format(root=r, cert=cert, key=key, sink=self.env["OUTBOUND_SINK_PORT"]))
        master = f"{self.smtp_port} inet n - n - - smtpd\n"
        # ablation: the reference's port 25 plus EmBoux's inbound milters
        master += (f"{self.smtp_milter_port} inet n - n - - smtpd\n"
                   f"  -o smtpd_milters={self.inbound_milters.replace(' ', '')}\n")
        master += REF_SUBMISSION.format(port=self.submission_port)
        # ablation: the reference's submission plus EmBoux's OpenDKIM as its milter
        master += REF_SUBMISSION.format(port=self.submission_dkim_port)
        master += (f"  -o milter_macro_daemon_name=ORIGINATING\n"
                   f"  -o smtpd_milters={self.dkim_milter}\n")
        (etc / "master.cf").write_text(master + REF_MASTER_TAIL)
        (etc / "domains").write_text(f"{t.domain} OK\n")
        everyone = t.users + [t.sender]
        (etc / "mailboxes").write_text("".join(f"{u} OK\n" for u in everyone))
        (etc / "aliases").write_text("".join(f"{u} {u}\n" for u in everyone))
        (etc / "logins").write_text("".join(f"{u} {u}\n" for u in everyone))
        for m in ("domains", "mailboxes", "aliases", "logins"):
            self._run("postmap", "-c", str(etc), f"hash:{etc / m}")
        (etc / "passwd").write_text("".join(
            f"{u}:{t.hashes[u]}:{VMAIL_UID}:{VMAIL_UID}::{self.vmail}/{u.split('@')[1]}/{u.split('@')[0]}::\n"
            for u in everyone))
        (etc / "dovecot.conf").write_text(REF_DOVECOT.format(root=r, uid=VMAIL_UID, tag=r.name[-6:]))
        self._run("dovecot", "-c", str(etc / "dovecot.conf"))
        self.started.append("dovecot")
        for _ in range(100):
            if (r / "spool" / "private" / "dovecot-lmtp").exists():
                break
            time.sleep(0.05)
        self._run("postfix", "-c", str(etc), "start")
        self.started.append("postfix")
        for p in (self.smtp_port, self.submission_port, self.submission_dkim_port, self.smtp_milter_port):
            if not wait_port(p, 15):
                raise RuntimeError(f"reference Postfix not listening on {p} (see {r}/postfix.log)")

    def masters(self):
        return {k: v for k, v in (("Postfix", pid_file(self.root / "spool" / "pid" / "master.pid")),
                                  ("Dovecot", pid_file(self.root / "dovecot-run" / "master.pid"))) if v}

    def stop(self):
        etc = self.root / "etc"
        if "postfix" in self.started:
            subprocess.run(["postfix", "-c", str(etc), "stop"], capture_output=True)
        if "dovecot" in self.started:
            pid = (self.root / "dovecot-run" / "master.pid").read_text().strip()
            subprocess.run(["doveadm", "-c", str(etc / "dovecot.conf"), "stop"], capture_output=True)
            for _ in range(150):
                if not pathlib.Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)
