"""One JSON error shape for every failure: {"detail": "..."}."""

import logging

from flask import jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def not_found(what):
    return ApiError(404, f"{what} not found")


def validation_detail(messages):
    """Flatten marshmallow's {field: [msg]} into 'field: msg; other: msg'."""
    if isinstance(messages, dict):
        parts = []
        for field, msgs in sorted(messages.items(), key=lambda kv: str(kv[0])):
            inner = validation_detail(msgs)
            if field == "_schema":
                parts.append(inner)
            else:
                parts.append(f"{field}: {inner}")
        return "; ".join(parts)
    if isinstance(messages, (list, tuple)):
        return " ".join(validation_detail(m) for m in messages)
    return str(messages)


def _json(status, detail):
    resp = jsonify({"detail": detail})
    resp.status_code = status
    return resp


def register_error_handlers(app):
    @app.errorhandler(ApiError)
    def api_error(exc):
        return _json(exc.status, exc.detail)

    @app.errorhandler(ValidationError)
    def invalid(exc):
        return _json(400, validation_detail(exc.messages))

    @app.errorhandler(HTTPException)
    def http_error(exc):
        detail = {413: "Request body too large"}.get(exc.code, exc.name)
        return _json(exc.code or 500, detail)

    @app.errorhandler(Exception)
    def unexpected(exc):
        # Never an HTML page, never internals: log it, answer a plain 500.
        log.exception("unhandled error")
        return _json(500, "Internal server error")
