"""GET /health: the mail DB and the mail server, each reported on its own."""

from flask import Blueprint, current_app, jsonify

from .. import scheduler, stores

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


def health():
    checks = {"database": _check_db(), **stores.mail_server_checks()}
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
