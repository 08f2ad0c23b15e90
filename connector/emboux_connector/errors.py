"""One JSON error shape for every failure: {"detail": "...", "code": "..."}.

`detail` is the contract's English sentence (kept exact); `code` is the
stable, machine-readable name clients match on (Odoo does, never on text).
A raise site may name its code; otherwise it is derived from the detail's
fixed prefix (the contract's messages) or, last, from the status.
"""

import logging

from flask import jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

try:  # a body the HTTP server cannot decode (a broken chunked encoding) is raised
    from gunicorn.http.errors import ParseException as _HttpParseError  # while the app reads it
except ImportError:  # served by something else
    _HttpParseError = ()

# The contract's fixed messages (or their fixed prefix) -> stable codes.
CODES_BY_PREFIX = (
    ("Invalid authorization header format", "auth_header_invalid"),
    ("Invalid API key", "auth_invalid_key"),
    ("API key is deactivated", "auth_key_deactivated"),
    ("API key has expired", "auth_key_expired"),
    ("Master token required", "master_required"),
    ("Domain quota exceeded", "quota_exceeded"),
    ("Mailbox quota exceeded", "quota_exceeded"),
    ("Alias quota exceeded", "quota_exceeded"),
    ("Domain already exists", "domain_exists"),
    ("Email already exists", "email_exists"),
    ("Alias source already exists", "alias_exists"),
    ("API key already exists", "api_key_exists"),
    ("Parent domain not found", "parent_not_found"),
    ("Domain not found", "domain_not_found"),
    ("User not found", "mailbox_not_found"),
    ("Alias not found", "alias_not_found"),
    ("API key not found", "api_key_not_found"),
    ("Partner not found", "partner_not_found"),
    ("Suppression entry not found", "suppression_not_found"),
    ("Malformed JSON body", "malformed_json"),
    ("Request body must be a JSON object", "malformed_json"),
    ("Request body too large", "body_too_large"),
    ("Mail DB unavailable", "db_unavailable"),
    ("Invalid signature", "webhook_signature_invalid"),
    ("Stale timestamp", "webhook_stale"),
    ("Token already used", "webhook_replay"),
    ("Provider error", "provider_error"),
    ("Too many failed authentication attempts", "rate_limited"),
)
CODES_BY_STATUS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 409: "conflict", 413: "body_too_large",
                   429: "rate_limited", 431: "headers_too_large", 500: "internal_error",
                   502: "upstream_error", 503: "unavailable"}


def code_for(status, detail):
    for prefix, code in CODES_BY_PREFIX:
        if detail.startswith(prefix):
            return code
    if status == 400 and ":" in detail:
        return "invalid_field"          # "field: message" validation errors
    return CODES_BY_STATUS.get(status, "error")


class ApiError(Exception):
    def __init__(self, status, detail, code=None, headers=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or code_for(status, detail)
        self.headers = headers or {}


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


def error_response(status, detail, code=None, headers=None):
    resp = jsonify({"detail": detail, "code": code or code_for(status, detail)})
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def register_error_handlers(app):
    @app.errorhandler(ApiError)
    def api_error(exc):
        return error_response(exc.status, exc.detail, exc.code, exc.headers)

    @app.errorhandler(ValidationError)
    def invalid(exc):
        return error_response(400, validation_detail(exc.messages), "invalid_field")

    @app.errorhandler(HTTPException)
    def http_error(exc):
        detail = {413: "Request body too large"}.get(exc.code, exc.name)
        # a 405 says which methods the path has (RFC 9110): keep werkzeug's Allow
        allow = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return error_response(exc.code or 500, detail, headers=allow)

    @app.errorhandler(Exception)
    def unexpected(exc):
        if _HttpParseError and isinstance(exc, _HttpParseError):
            return error_response(400, "Malformed HTTP request body", "bad_request")
        # Never an HTML page, never internals: log it with its traceback (the
        # path only: a query string may carry a token), answer a plain 500.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal server error", "internal_error")
