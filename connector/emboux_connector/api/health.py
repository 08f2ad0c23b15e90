"""GET /health: the mail DB and the mail server, each reported on its own."""

from flask import Blueprint, current_app, jsonify

from .. import stores

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


def health():
    checks = {"database": _check_db(), **stores.mail_server_checks()}
    ok = all(c["ok"] for c in checks.values())
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
