"""The connector's side of the mail server (Postfix + Dovecot, see docs/mail-server.md).

Plain functions, no Flask: the blueprints and the CLI call them.

Settings (environment variables; ./dev up writes them into var/dev.env, which
gunicorn and the CLI get exported into their environment):

    SMTP_HOST           Postfix inbound (MX) address              default 127.0.0.1
    SMTP_PORT           Postfix inbound (MX) port                 default 25
    IMAP_HOST           Dovecot IMAP address                      default 127.0.0.1
    IMAP_PORT           Dovecot IMAP port                         default 143
    DOVECOT_CONFIG      dovecot.conf that doveadm must use (-c)   default /etc/dovecot/dovecot.conf
    DOVEADM             the doveadm executable                    default doveadm
    VMAIL_DIR           root of the mail store: VMAIL_DIR/<domain>/<local part>
                        (Dovecot's mail_home)                     default /var/vmail
    MAIL_CHECK_TIMEOUT  seconds for a health probe / doveadm call default 3 (doveadm: 10x)
    MAILDB_DSN          the mail DB (only used when no connection is passed in)

Privileges: doveadm talks to Dovecot's auth-userdb socket and opens the users'
mail as the mail uid, so the process calling storage_used/purge_retention/
remove_*_store must be root (as the dev stack runs everything) or be given
access to those sockets and the mail store.

Functions:
    check_postfix() -> (ok: bool, detail: str)
    check_dovecot() -> (ok: bool, detail: str)
    health_checks() -> {"postfix": {"ok", "detail"}, "dovecot": {"ok", "detail"}}
    quota_usage(email) -> dict | None
    storage_used_mb(email) -> float | None
    storage_by_domain() -> {domain: bytes}
    purge_retention(conn_or_rows) -> dict
    remove_mailbox_store(email, conn=None) -> bool
    remove_domain_store(domain, conn=None) -> bool
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
import contextlib

from . import settings

log = logging.getLogger(__name__)

# user@domain as the API stores it: lower case, IDNA domain. Anything that
# could walk out of the mail store (/, .., NUL) is refused before any path
# is built from it.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_LOCAL_RE = re.compile(r"^[a-z0-9!#$%&'*+=?^_`{|}~.-]{1,64}$")
EX_NOUSER = 67   # doveadm's exit code for an unknown user


class MailServerError(RuntimeError):
    """doveadm (or the mail store) failed for another reason than an unknown user."""


# --- settings -------------------------------------------------------------------
def _env(name: str) -> str:
    return str(settings.get(name))


def _timeout() -> float:
    return float(settings.lenient("MAIL_CHECK_TIMEOUT"))


def vmail_dir() -> str:
    return os.path.realpath(_env("VMAIL_DIR"))


# --- health -----------------------------------------------------------------------
def _banner(host: str, port: int, expect: bytes, bye: bytes) -> tuple[bool, str]:
    """Connect, read the greeting line, say goodbye."""
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=_timeout()) as s:
            s.settimeout(_timeout())
            line = b""
            while not line.endswith(b"\n") and len(line) < 1024:
                chunk = s.recv(1024)
                if not chunk:
                    break
                line += chunk
            with contextlib.suppress(OSError):
                s.sendall(bye)
    except OSError as e:
        return False, f"{host}:{port} unreachable: {e.strerror or e}"
    ms = (time.monotonic() - t0) * 1000
    first = line.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if not line.startswith(expect):
        return False, f"{host}:{port} unexpected greeting: {first[:80]!r}"
    return True, f"{host}:{port} ok ({ms:.0f} ms)"


def check_postfix(cfg=None) -> tuple[bool, str]:
    """Postfix's inbound smtpd answers with a 220 greeting."""
    host = _env("SMTP_HOST")
    port = int(_env("SMTP_PORT"))
    return _banner(host, port, b"220", b"QUIT\r\n")


def check_dovecot(cfg=None) -> tuple[bool, str]:
    """Dovecot's IMAP service answers with an "* OK" greeting."""
    host = _env("IMAP_HOST")
    port = int(_env("IMAP_PORT"))
    return _banner(host, port, b"* OK", b"a LOGOUT\r\n")


# --- doveadm --------------------------------------------------------------------------
def _doveadm(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    cmd = [_env("DOVEADM"), "-c", _env("DOVECOT_CONFIG"),
           "-f", "tab", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout or _timeout() * 10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MailServerError(f"doveadm {args[0]}: {e}") from e


def quota_usage(email: str) -> dict | None:
    """Storage and message count Dovecot accounts for the mailbox (its quota).

    Returns {"storage_used_kb", "storage_limit_kb" (None = unlimited),
    "messages"} or None when Dovecot does not know the user (deleted, or its
    domain suspended / mailbox inactive: the user database only serves
    mailboxes that may receive). Raises MailServerError if doveadm fails.
    """
    r = _doveadm("quota", "get", "-u", email)
    if r.returncode == EX_NOUSER:
        return None
    if r.returncode != 0:
        raise MailServerError(f"doveadm quota get: {r.stderr.strip() or r.returncode}")
    out = {"storage_used_kb": 0, "storage_limit_kb": None, "messages": 0}
    for line in r.stdout.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 4:
            continue
        kind, value, limit = cols[1], cols[2], cols[3]
        if kind == "STORAGE":
            out["storage_used_kb"] = int(value)
            out["storage_limit_kb"] = None if limit in ("-", "", "0") else int(limit)
        elif kind == "MESSAGE":
            out["messages"] = int(value)
    return out


def storage_by_domain(timeout: float = 1800) -> dict[str, int]:
    """Bytes stored per domain, as Dovecot accounts them (its quota), for
    every mailbox Dovecot serves, in one `doveadm quota get -A`. Raises
    MailServerError if doveadm fails (the caller decides what not measured
    means)."""
    r = _doveadm("quota", "get", "-A", timeout=timeout)
    if r.returncode != 0:
        raise MailServerError(f"doveadm quota get -A: {r.stderr.strip() or r.returncode}")
    out: dict[str, int] = defaultdict(int)
    for line in r.stdout.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 4 or cols[2] != "STORAGE" or "@" not in cols[0]:
            continue
        out[cols[0].rsplit("@", 1)[1].lower()] += int(cols[3]) * 1024   # Dovecot counts KiB
    return dict(out)


def storage_used_mb(email: str) -> float | None:
    """Storage in use in MB (Dovecot's own accounting), None if Dovecot does not know the user."""
    q = quota_usage(email)
    if q is None:
        return None
    return round(q["storage_used_kb"] / 1024, 3)


# --- retention --------------------------------------------------------------------------
_RETENTION_SQL = """
    SELECT m.email, d.retention_days
    FROM mailboxes m JOIN domains d ON d.id = m.domain_id
    WHERE d.retention_days > 0 AND d.status = 'active' AND m.active
    ORDER BY d.retention_days, m.email
"""


def purge_retention(conn_or_rows) -> dict:
    """Expunge mail older than each domain's retention_days, through Dovecot.

    conn_or_rows: a DB-API connection to the mail DB (the mailboxes are read
    from it), or an iterable of (email, retention_days). Age is the message's
    INTERNALDATE (delivery time, or the date given by an IMAP APPEND), every
    folder. Suspended domains and inactive mailboxes are skipped: Dovecot does
    not serve them while they are off, and suspension deletes nothing.
    One doveadm process per distinct retention value (users passed with -F).

    Returns {"mailboxes": n, "expunged": n, "errors": [..], "by_days": {days: n}}.
    """
    if hasattr(conn_or_rows, "cursor"):
        with conn_or_rows.cursor() as cur:
            cur.execute(_RETENTION_SQL)
            rows = cur.fetchall()
    else:
        rows = list(conn_or_rows)
    groups: dict[int, list[str]] = defaultdict(list)
    for email, days in rows:
        if days and int(days) > 0:
            groups[int(days)].append(email)
    result = {"mailboxes": 0, "expunged": 0, "errors": [], "by_days": {}}
    for days, users in sorted(groups.items()):
        with tempfile.NamedTemporaryFile("w", prefix="emboux-retention-", suffix=".txt") as f:
            f.write("\n".join(users) + "\n")
            f.flush()
            query = ["mailbox", "*", "before", f"{days}d"]
            found = _doveadm("search", "-F", f.name, *query)
            matched = max(0, len([line for line in found.stdout.splitlines()[1:] if line.strip()]))
            r = _doveadm("expunge", "-F", f.name, *query)
            if r.returncode != 0 or found.returncode != 0:
                err = (r.stderr or found.stderr).strip()
                result["errors"].append(f"retention {days}d: {err[-500:] or r.returncode}")
                log.warning("retention purge %sd: %s", days, err)
        result["mailboxes"] += len(users)
        result["expunged"] += matched
        result["by_days"][days] = matched
    return result


# --- removing the stored mail of deleted mailboxes and domains ------------------------------
def _split_email(email: str) -> tuple[str, str]:
    email = (email or "").strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep or not _LOCAL_RE.match(local) or local in (".", "..") or not _DOMAIN_RE.match(domain):
        raise ValueError(f"not a storable address: {email!r}")
    return local, domain


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root and path != root


def _connect(conn):
    if conn is not None:
        return conn, False
    import psycopg2  # the connector's driver
    dsn = settings.get("MAILDB_DSN")
    if not dsn:
        raise MailServerError("MAILDB_DSN is not set and no connection was given")
    return psycopg2.connect(dsn), True


def _exists(conn, sql: str, args: tuple) -> bool:
    c, own = _connect(conn)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone() is not None
    finally:
        if own:
            c.close()


def _discard(path: str, label: str) -> bool:
    """Move path out of Dovecot's sight (one rename), then delete it."""
    root = vmail_dir()
    if not os.path.lexists(path):
        return False
    if os.path.islink(path) or not _inside(root, os.path.realpath(path)):
        raise MailServerError(f"refusing to remove {path}: not a directory inside {root}")
    trash = os.path.join(root, ".deleted")
    os.makedirs(trash, mode=0o700, exist_ok=True)
    dest = os.path.join(trash, f"{label}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}")
    os.rename(path, dest)
    shutil.rmtree(dest, ignore_errors=True)
    return True


def _kick(user_mask: str) -> None:
    """Close IMAP sessions still open on the removed store (best effort)."""
    with contextlib.suppress(MailServerError):
        _doveadm("kick", user_mask, timeout=_timeout())


def remove_mailbox_store(email: str, conn=None) -> bool:
    """Delete the stored mail of a mailbox whose row is already gone.

    Call after the DELETE committed. Refuses (MailServerError) while a mailbox
    with this address exists in the mail DB (also a suspended or inactive one,
    which Dovecot does not see but whose mail must stay), so a deletion racing
    with a re-creation never destroys live mail. conn: a DB-API connection to
    the mail DB, else MAILDB_DSN is used. Returns True if a store was removed,
    False if there was none.
    """
    local, domain = _split_email(email)
    if _exists(conn, "SELECT 1 FROM mailboxes WHERE email = %s", (f"{local}@{domain}",)):
        raise MailServerError(f"mailbox {local}@{domain} still exists: its mail is kept")
    _kick(f"{local}@{domain}")
    return _discard(os.path.join(vmail_dir(), domain, local), f"{domain}@{local}")


def remove_domain_store(domain: str, conn=None) -> bool:
    """Delete the stored mail of every mailbox of a domain whose rows are gone.

    Refuses (MailServerError) while the domain or any mailbox of it exists.
    Returns True if a store was removed.
    """
    domain = (domain or "").strip().lower()
    if not _DOMAIN_RE.match(domain):
        raise ValueError(f"not a domain name: {domain!r}")
    if _exists(conn, "SELECT 1 FROM domains WHERE name = %s "
                     "UNION ALL SELECT 1 FROM mailboxes WHERE email LIKE %s LIMIT 1",
               (domain, "%@" + domain.replace("%", r"\%").replace("_", r"\_"))):
        raise MailServerError(f"domain {domain} still exists: its mail is kept")
    _kick(f"*@{domain}")
    return _discard(os.path.join(vmail_dir(), domain), domain)


def health_checks() -> dict:
    """{'postfix': {'ok': bool, 'detail': str}, 'dovecot': {...}} for GET /health."""
    out = {}
    for name, check in (("postfix", check_postfix), ("dovecot", check_dovecot)):
        try:
            ok, detail = check()
        except Exception as e:  # a probe must never break /health
            ok, detail = False, f"check failed: {e}"
        out[name] = {"ok": ok, "detail": detail}
    return out
