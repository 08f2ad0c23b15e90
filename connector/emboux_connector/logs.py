"""Where the connector's logs go, and the secrets they never carry.

Application logs (the traceback of every 500, start-up notes) go to
EMBOUX_LOG_FILE when it is set (the dev stack: var/log/connector-app.log,
since gunicorn runs there as a daemon), else to stderr (containers: the
runtime collects stderr). Every line, traceback included, passes through
redact() first; gunicorn's access and error logs do too (accesslog.py).

What redact() hides, wherever it appears in a line:
- the token in `/api-keys/{token}` paths (the contract puts tokens there);
- every query-string value but those of the API's own, harmless parameters
  (a token sent as `?token=...` or under any other name);
- what follows `Bearer ` and `Authorization:`;
- the values of the secret settings (master token, provider keys, the mail
  DB password), and any other token-like word: 24 or more URL-safe
  characters mixing upper case, lower case and digits.
"""

import logging
import logging.handlers
import os
import re
import sys
from urllib.parse import urlsplit
import contextlib

from . import settings

MASK = "***"

# Query parameters of the API (schemas.py, api/*.py): never secret.
SAFE_QUERY = frozenset({"since", "domain_id", "domain", "reason", "limit", "offset", "month"})
# Settings whose values are secrets (the DSN's password is taken out of it).
SECRET_SETTINGS = settings.SECRETS     # the registry's secret settings (settings.py)

_TOKEN_IN_PATH = re.compile(r"(/api-keys/)(?!by-id/)[^/?#\s\"'<>]+")
_QUERY_PAIR = re.compile(r"([?&;])([^=&#\s\"'<>]*)=([^&#\s\"'<>]*)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_AUTHORIZATION = re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+")
_TOKEN_LIKE = re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])"
                         r"(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{24,}(?![A-Za-z0-9_-])")

_secrets = []


def secret_values(env=None):
    """The values of the secret settings in env (at least 8 characters)."""
    found = [settings.raw(k, env) for k in SECRET_SETTINGS]
    dsn = settings.raw("MAILDB_DSN", env) or ""
    with contextlib.suppress(ValueError):
        found.append(urlsplit(dsn).password)
    found += re.findall(r"password\s*=\s*'?([^'\s]+)", dsn)
    return sorted({v for v in found if v and len(v) >= 8}, key=len, reverse=True)


def remember_secrets(values):
    """Literal values redact() hides from now on (in this process)."""
    for v in values:
        if v and v not in _secrets:
            _secrets.append(v)
    _secrets.sort(key=len, reverse=True)


def _query_pair(m):
    sep, key, value = m.groups()
    if key.lower() in SAFE_QUERY or not value:
        return m.group(0)
    return f"{sep}{key}={MASK}"


# What each pattern cannot match without (plain substring tests, a tenth of
# the patterns' cost): every request's access-log line passes here (issue 15).
# "author" and "bearer" have no letter that IGNORECASE folds from another
# character (it does for i, k and s), so text.lower() finds every candidate.
_RUN_OF_24 = re.compile(r"[A-Za-z0-9_-]{24}")


def redact(text):
    if not text:
        return text
    for value in _secrets:
        text = text.replace(value, MASK)
    if "/api-keys/" in text:
        text = _TOKEN_IN_PATH.sub(r"\1" + MASK, text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_query_pair, text)
    lower = text.lower()
    if "author" in lower:
        text = _AUTHORIZATION.sub(r"\1" + MASK, text)
    if "bearer" in lower:
        text = _BEARER.sub(r"\1" + MASK, text)
    if _RUN_OF_24.search(text):
        text = _TOKEN_LIKE.sub(MASK, text)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, arguments, traceback) is redacted."""

    def __init__(self, fmt=None, datefmt=None, inner=None):
        super().__init__(fmt, datefmt)
        self.inner = inner

    def format(self, record):
        text = self.inner.format(record) if self.inner else super().format(record)
        return redact(text)


FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure(env=None):
    """Send the root logger's records to EMBOUX_LOG_FILE (or stderr), redacted.
    Idempotent: a second call replaces the handler the first one installed."""
    env = os.environ if env is None else env
    remember_secrets(secret_values(env))
    path = settings.get("EMBOUX_LOG_FILE", env) or ""
    if path and path != "-":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Watched: logrotate may move the file away; all workers append to it.
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(FORMAT))
    handler._emboux = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_emboux", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    level = settings.get("EMBOUX_LOG_LEVEL", env).upper()
    root.setLevel(getattr(logging, level, logging.INFO))
    return handler


def unconfigure(handler):
    logging.getLogger().removeHandler(handler)
    handler.close()
