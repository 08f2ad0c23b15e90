"""GET /openapi.json, generated from the routes themselves."""

from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, current_app, jsonify

from ..openapi import build_spec

bp = Blueprint("meta", __name__)


def _version():
    try:
        return version("emboux-connector")
    except PackageNotFoundError:
        return "0.0.0"


@bp.get("/openapi.json")
def openapi_json():
    spec = current_app.extensions.get("emboux_openapi")
    if spec is None:
        spec = current_app.extensions["emboux_openapi"] = build_spec(current_app, _version())
    return jsonify(spec)
