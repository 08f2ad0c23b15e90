"""One decorator per endpoint: route, authentication, input parsing, one
transaction, and the metadata the OpenAPI document is generated from.

Declaring the role here (not inside the view) means no endpoint can forget
to authenticate, and the published `x-required-role` is the enforced one.
"""

import functools
import json

from flask import current_app, g, jsonify, request

from .auth import require
from .errors import ApiError


def _json_body():
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "Malformed JSON body")
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data


def after_commit(fn, *args):
    """Run fn(*args) once the request's transaction has committed."""
    g.setdefault("after_commit", []).append((fn, args))


def endpoint(bp, rule, method, *, role, summary, body=None, query=None,
             status=200, tag=None, description=None):
    """Register `fn(cur, caller, [body], [query], **path_args)` on blueprint bp.

    role: 'master', 'either' or None (no authentication).
    The view returns a JSON-serialisable value, or None for 204.
    """
    def decorate(fn):
        @functools.wraps(fn)
        def view(**path_args):
            db = current_app.extensions["emboux_db"]
            with db.transaction() as cur:
                caller = require(cur, role) if role else None
                kwargs = dict(path_args)
                if body is not None:
                    kwargs["body"] = body().load(_json_body())
                if query is not None:
                    kwargs["query"] = query().load(request.args.to_dict())
                result = fn(cur, caller, **kwargs)
            for hook, args in g.pop("after_commit", []):
                try:
                    hook(*args)
                except Exception:  # the change is committed; cleanup is best effort, logged
                    current_app.logger.exception("after-commit hook %s failed", hook.__name__)
            if status == 204:
                return "", 204
            return jsonify(result), status

        view.openapi = dict(method=method, role=role, summary=summary, body=body,
                            query=query, status=status, tag=tag or bp.name,
                            description=description or (fn.__doc__ or "").strip())
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view
    return decorate
