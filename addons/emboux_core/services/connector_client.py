# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The client seam: every call from Odoo to the EmBoux connector goes through
`ConnectorClient.call()`. It owns the timeouts, the authentication header and
the mapping of failures onto two exception kinds:

* `ConnectorRefused`: the connector answered 4xx. The request is wrong
  (duplicate, quota exceeded, invalid name...) and retrying it will not help.
  The connector's `code` (stable, machine-readable: decisions are taken on
  it, never on English text) and `detail` (the facts, shown to the user in a
  sentence chosen by the code) are kept.
* `ConnectorUnavailable`: connection refused, timeout, 5xx, garbage. The
  request may succeed later: the sync queue retries it with back-off.
"""

import json
import logging
import re
from urllib.parse import quote

import requests

_logger = logging.getLogger(__name__)

# `/api-keys/{token}` paths carry a token: never log it or store it in an error.
_TOKEN_IN_PATH = re.compile(r"(/api-keys/)(?!by-id/)[^/?\s]+")


def redact(path):
    return _TOKEN_IN_PATH.sub(r"\1***", path or "")


DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 15.0


class ConnectorError(Exception):
    def __init__(self, message, status=None, detail=None, method=None, path=None, code=None):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.code = code      # the connector's error code (connector/emboux_connector/errors.py)
        self.method = method
        self.path = path


class ConnectorRefused(ConnectorError):
    """4xx: a definitive answer; the change must not be applied."""


class ConnectorUnavailable(ConnectorError):
    """Network error, timeout or 5xx: try again later."""


# Connector error codes (connector/emboux_connector/errors.py) -> sentences for
# back-office users; the connector's detail follows with the facts (which
# quota, which numbers).
_FRIENDLY = {
    "domain_exists": "This domain is already hosted on the platform.",
    "email_exists": "This email address is already used by another mailbox or alias.",
    "alias_exists": "This address is already a mailbox; an alias cannot use it.",
    "quota_exceeded": "The customer's plan allows no more of these",
    "domain_not_found": "The domain does not exist on the mail platform (yet).",
    "mailbox_not_found": "The mailbox does not exist on the mail platform.",
    "master_required": "The connector token configured in Odoo is not the master token.",
    "auth_invalid_key": "The connector refused the token configured in Odoo (Settings > Email Hosting).",
    "vacation_dates": "The auto-reply's last day is before its first day.",
}


def friendly(detail, code=None):
    """A sentence a back-office user understands, chosen by the error code,
    keeping the connector's facts (its detail)."""
    detail = (detail or "").strip()
    sentence = _FRIENDLY.get(code or "")
    if sentence:
        return f"{sentence.rstrip('.')} ({detail})." if detail else sentence
    if code == "invalid_field" and ":" in detail:  # "field: message"
        field, _, msg = detail.partition(":")
        return f"The mail platform refused the value of {field.strip().replace('_', ' ')}: {msg.strip()}"
    return f"The mail platform refused the change: {detail or 'no reason given'}."


class _Timeout(tuple):
    """(connect, read) for requests, that also compares to a number like its
    read timeout (Odoo's test harness compares `timeout < 10`)."""

    def __lt__(self, other):
        if isinstance(other, (int, float)):
            return self[1] < other
        return tuple.__lt__(self, other)


class ConnectorClient:
    def __init__(self, url, token, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                 read_timeout=DEFAULT_READ_TIMEOUT, session=None):
        self.url = (url or "").rstrip("/")
        self.token = token or ""
        self.timeout = _Timeout((float(connect_timeout or DEFAULT_CONNECT_TIMEOUT),
                                 float(read_timeout or DEFAULT_READ_TIMEOUT)))
        self.session = session or requests.Session()

    @staticmethod
    def q(value):
        """Quote one path segment (addresses contain @, catch-alls start with @)."""
        return quote(str(value), safe="@")

    def call(self, method, path, payload=None, params=None, ok_statuses=(), raw=False):
        """Return the decoded JSON (None for 204); with raw=True, (decoded
        JSON, the body as received): a caller that hands the body on to
        PostgreSQL need not encode it again. Raise ConnectorRefused on
        4xx (unless listed in ok_statuses, then return None) and
        ConnectorUnavailable on anything that may go away by itself."""
        if not self.url:
            raise ConnectorUnavailable("The connector URL is not configured (Settings > Email Hosting).",
                                       method=method, path=path)
        url = self.url + path
        path = redact(path)  # from here on, only for messages and logs
        try:
            resp = self.session.request(
                method, url, json=payload, params=params, timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        except requests.Timeout as exc:
            raise ConnectorUnavailable(f"The connector did not answer in time ({method} {path}).",
                                       method=method, path=path) from exc
        except requests.RequestException as exc:
            raise ConnectorUnavailable(f"The connector cannot be reached at {self.url} ({exc.__class__.__name__}).",
                                       method=method, path=path) from exc
        status = resp.status_code
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        code = body.get("code") if isinstance(body, dict) else None
        if status in ok_statuses:
            return None
        if 200 <= status < 300:
            return (body, resp.text) if raw else body
        if 400 <= status < 500 and status not in (408, 425, 429):
            _logger.info("connector refused %s %s: %s %s", method, path, status, detail)
            raise ConnectorRefused(friendly(detail, code), status=status, detail=detail, method=method,
                                   path=path, code=code)
        raise ConnectorUnavailable(
            f"The connector failed ({status}{': ' + detail if detail else ''}) on {method} {path}.",
            status=status, detail=detail, method=method, path=path, code=code)

    # convenience
    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def health(self):
        return self.call("GET", "/health")


def dumps(payload):
    return json.dumps(payload, sort_keys=True, default=str)
