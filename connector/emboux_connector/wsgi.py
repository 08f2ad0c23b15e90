"""WSGI entry point: `gunicorn -c python:emboux_connector.gunicorn_conf emboux_connector.wsgi:app`."""

import logging
import os

from . import logs
from .app import create_app

logs.configure()  # EMBOUX_LOG_FILE, else stderr; redacted
app = create_app()
logging.getLogger(__name__).info("connector worker %d serving", os.getpid())
