"""GET /health: the mail DB and the mail server, each reported on its own."""

import os

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


def health():
    checks = {"database": _check_db(), **stores.mail_server_checks(), **_queue()}
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
