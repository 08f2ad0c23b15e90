"""One decorator per endpoint: route, authentication, input parsing, one
transaction, and the metadata the OpenAPI document is generated from.

Declaring the role here (not inside the view) means no endpoint can forget
to authenticate, and the published `x-required-role` is the enforced one.
"""

import functools
import json

import psycopg2
from flask import Response, current_app, g, jsonify, request

from .auth import KeyClaim, claim, require
from .errors import ApiError
from .fields import UNSTORABLE_MESSAGE, unstorable


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def refuse_unstorable(value, where=""):
    """400 naming the field when a string in value cannot be stored."""
    found = unstorable(value, where)
    if found:
        raise ApiError(400, f"{found}: {UNSTORABLE_MESSAGE}", code="invalid_field")


def _json_body():
    raw = request.get_data(cache=True)
    if not raw:  # no body at all: no fields (whitespace alone is not JSON)
        return {}
    try:
        # NaN and Infinity are not JSON; a body nested thousands deep is not a record.
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "Malformed JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    refuse_unstorable(data)
    return data


def after_commit(fn, *args):
    """Run fn(*args) once the request's transaction has committed."""
    g.setdefault("after_commit", []).append((fn, args))


def _run_view(fn, cur, caller, path_args, body_schema, query_schema):
    refuse_unstorable(path_args)
    kwargs = dict(path_args)
    if body_schema is not None:
        kwargs["body"] = body_schema.load(_json_body())
    if query_schema is not None:
        args = request.args.to_dict()
        refuse_unstorable(args)
        kwargs["query"] = query_schema.load(args)
    return fn(cur, caller, **kwargs)


def endpoint(bp, rule, method, *, role, summary, body=None, query=None,
             status=200, tag=None, description=None, errors=(), response=None, media=None,
             request_body=None, key_in_statement=False):
    """Register `fn(cur, caller, [body], [query], **path_args)` on blueprint bp.

    role: 'master', 'either' or None (no authentication).
    errors: statuses the view raises beyond those its inputs imply (see
    openapi.error_statuses: 400/404/403/413/429/503 come from the path,
    query, body and role), e.g. (502,) for a provider call, (409,).
    response: the success body's JSON schema (default: an object, or an
    array for the GET of a collection).
    The view returns a JSON-serialisable value, or None for 204, or a
    flask Response (a document that is not JSON: then `media` names its
    content type for the OpenAPI document).
    request_body: an OpenAPI requestBody object, for a view that reads a
    body that is not JSON itself (`body` is for JSON bodies).
    key_in_statement: (role 'either') the view gets the master's Caller or,
    for a client token, an auth.KeyClaim: its one statement checks the key
    and the view calls claim.settle() with the key's verdict (one round trip
    less, issue 15). Any error but a DB error before the key was settled is
    preceded by the usual key check: a bad key is a 403 whatever else is wrong.
    """
    # One schema instance per endpoint, not one per request: making one
    # deep-copies its declared fields, a tenth of an alias creation's Python
    # time (issue 15). load() keeps no state on the instance.
    if key_in_statement and role != "either":
        raise ValueError("key_in_statement is for endpoints open to master and client keys")
    body_schema = body() if body is not None else None
    query_schema = query() if query is not None else None

    def decorate(fn):
        @functools.wraps(fn)
        def view(**path_args):
            db = current_app.extensions["emboux_db"]
            with db.transaction() as cur:
                # with key_in_statement, the client key is checked by the view's statement
                caller = claim() if key_in_statement else (require(cur, role) if role else None)
                unsettled = isinstance(caller, KeyClaim)
                try:
                    result = _run_view(fn, cur, caller, path_args, body_schema, query_schema)
                except Exception as exc:
                    # a bad key's own refusal comes before any other error
                    # (bad input, a body too large), as on every endpoint
                    if unsettled and not caller.settled and not isinstance(exc, psycopg2.Error):
                        require(cur, role)
                    raise
                if unsettled and not caller.settled:
                    raise RuntimeError(f"{fn.__name__} did not settle its caller's key")
            for hook, args in g.pop("after_commit", []):
                try:
                    hook(*args)
                except Exception:  # the change is committed; cleanup is best effort, logged
                    current_app.logger.exception("after-commit hook %s failed", hook.__name__)
            if isinstance(result, Response):
                return result
            if status == 204:
                return "", 204
            return jsonify(result), status

        view.openapi = dict(method=method, role=role, summary=summary, body=body,
                            query=query, status=status, tag=tag or bp.name,
                            description=description or (fn.__doc__ or "").strip(),
                            errors=tuple(errors), response=response, media=media,
                            request_body=request_body)
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view
    return decorate
