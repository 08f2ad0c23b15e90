"""GET /health: the mail DB and the mail server, each reported on its own."""

import contextlib
import os
import socket
import struct

from flask import Blueprint, current_app, jsonify

from .. import scheduler, settings, stores

bp = Blueprint("health", __name__)


def _check_db():
    db = current_app.extensions["emboux_db"]
    try:
        with db.transaction() as cur:
            cur.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # any failure means: unreachable
        detail = getattr(exc, "detail", None) or "unreachable"
        return {"ok": False, "detail": detail}


def _check_scheduler():
    """The scheduler's last runs (scheduler.py). Informational: `ok` stays
    true when no scheduler runs (Odoo's crons may do the jobs instead); an
    operator watches `jobs[...].last_success_at`."""
    db = current_app.extensions["emboux_db"]
    try:
        with db.transaction() as cur:
            return {"ok": True, "jobs": scheduler.last_runs(cur)}
    except Exception:  # the database check reports an unreachable DB
        return {"ok": True, "jobs": {}, "detail": "unknown"}


def _count_files(path):
    n = 0
    def fail(exc):  # os.walk would skip an unreadable directory: a false 0
        raise exc
    for _dirpath, _dirs, files in os.walk(path, onerror=fail):
        n += len(files)
    return n


def _queue():
    """Postfix's queue depth: what an operator watches (a growing `deferred`
    means mail cannot leave). Read from the queue directory (the dev stack's,
    or the mail container's spool volume mounted read-only)."""
    qdir = settings.get("POSTFIX_QUEUE_DIR")
    if not qdir:
        return {}
    if not os.path.isdir(os.path.join(qdir, "deferred")):
        return {"queue": {"ok": False, "detail": "no Postfix queue at POSTFIX_QUEUE_DIR"}}
    try:
        counts = {name: _count_files(os.path.join(qdir, name)) for name in ("active", "deferred")}
    except OSError as exc:
        return {"queue": {"ok": False, "detail": f"queue unreadable: {exc.strerror}"}}
    return {"queue": {"ok": True, **counts}}


def _milter_handshake(address, timeout):
    """True when OpenDKIM answers a milter option negotiation (SMFIC_OPTNEG,
    milter protocol version 6) at `address` (Postfix syntax). A listening
    port alone would not prove the milter works."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = address[len("unix:"):]
    else:
        host, _, port = address.removeprefix("inet:").rpartition(":")
        sock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET, socket.SOCK_STREAM)
        target = (host.strip("[]"), int(port))
    sock.settimeout(timeout)
    with sock:
        sock.connect(target)
        body = b"O" + struct.pack(">III", 6, 0x1FF, 0x1FFFFF)
        sock.sendall(struct.pack(">I", len(body)) + body)
        head = sock.recv(5)
        answered = len(head) == 5 and head[4:5] == b"O"
        with contextlib.suppress(OSError):
            sock.sendall(struct.pack(">I", 1) + b"Q")  # SMFIC_QUIT
        return answered


def _opendkim():
    """OpenDKIM (the signer of submitted mail): the milter answers, and every
    domain of its signing table (mailserver.dkim_signing) has a usable key in
    its key table (mailserver.dkim_keys). `unsigned_local_domains` counts
    local domains without an active key (their mail leaves unsigned)."""
    address = settings.get("OPENDKIM_MILTER")
    if not address:
        return {}
    out = {}
    try:
        out["reachable"] = _milter_handshake(address, float(settings.lenient("MAIL_CHECK_TIMEOUT")))
    except (OSError, ValueError) as exc:
        out["reachable"], out["detail"] = False, f"milter at {address}: {getattr(exc, 'strerror', None) or exc}"
    db = current_app.extensions["emboux_db"]
    try:
        with db.transaction() as cur:
            cur.execute("""
                SELECT s.domain FROM mailserver.dkim_signing s
                LEFT JOIN mailserver.dkim_keys k ON k.key_name = s.key_name
                WHERE k.key_name IS NULL OR COALESCE(k.private_key, '') NOT LIKE '-----BEGIN %' ORDER BY s.domain""")
            missing = [r["domain"] for r in cur.fetchall()]
            cur.execute("SELECT count(*) AS n FROM mailserver.dkim_signing")
            out["signing_domains"] = cur.fetchone()["n"]
            cur.execute("""
                SELECT count(*) AS n FROM domains d WHERE d.provider = 'local' AND d.ownership <> 'pending'
                AND NOT EXISTS (SELECT 1 FROM mailserver.dkim_signing s WHERE s.domain = d.name)""")
            out["unsigned_local_domains"] = cur.fetchone()["n"]
    except Exception:  # the database check reports an unreachable DB
        return {"opendkim": {**out, "ok": False, "detail": out.get("detail") or "signing table unreadable"}}
    out["missing_keys"] = missing[:20]
    if missing and "detail" not in out:
        out["detail"] = f"{len(missing)} signing domain(s) without a usable key"
    if not out["reachable"] and "detail" not in out:
        out["detail"] = f"no milter answer at {address}"
    return {"opendkim": {"ok": out["reachable"] and not missing, **out}}


def health():
    checks = {"database": _check_db(), **stores.mail_server_checks(), **_queue(), **_opendkim()}
    ok = all(c["ok"] for c in checks.values())
    checks["scheduler"] = _check_scheduler()
    body = {"status": "ok" if ok else "unavailable", **checks}
    return jsonify(body), 200 if ok else 503


_CHECK = {"type": "object", "properties": {"ok": {"type": "boolean"}, "detail": {"type": "string"}},
          "required": ["ok"]}
HEALTH = {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                                           "database": _CHECK},
          "required": ["status", "database"], "additionalProperties": _CHECK}
health.openapi = dict(method="GET", role=None, summary="Health of the mail DB and the mail server",
                      body=None, query=None, status=200, tag="health",
                      description="503 when any component is down.", response=HEALTH,
                      responses={"503": {"description": "A component is down (the same body)",
                                         "content": {"application/json": {"schema": HEALTH}}}})
bp.add_url_rule("/health", endpoint="health", view_func=health, methods=["GET"])
