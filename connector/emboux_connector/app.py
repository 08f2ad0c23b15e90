"""The Flask app factory."""

import logging

from flask import Flask

from .config import Config
from .db import Database
from .errors import register_error_handlers
from .tenancy import reconcile_domains_used
from .throttle import Throttle

log = logging.getLogger(__name__)


def create_app(config=None, reconcile=True):
    config = config or Config.from_env()
    app = Flask(__name__)
    app.config["EMBOUX"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    app.extensions["emboux_db"] = Database(config.maildb_dsn, config.pool_max)
    # failed API authentications per client address (throttle.py); a
    # malformed AUTH_FAILURE_LIMIT stops start-up
    app.extensions["emboux_auth_throttle"] = Throttle.from_env()
    register_error_handlers(app)
    from .api import BLUEPRINTS
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    if reconcile:
        _reconcile(app)
    return app


def _reconcile(app):
    """domains_used := the real count, at every start (cures legacy drift)."""
    try:
        with app.extensions["emboux_db"].transaction() as cur:
            fixed = reconcile_domains_used(cur)
        if fixed:
            log.warning("reconciled domains_used of %d partner(s)", fixed)
    except Exception as exc:  # start anyway: /health reports the DB
        log.error("could not reconcile domains_used at start-up: %s", exc)
