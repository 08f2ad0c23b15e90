"""gunicorn's access log, without secrets.

Paths of the API-key endpoints carry the token itself (`/api-keys/{token}`,
as the contract has it); tokens are never logged, so those path segments are
written as `***`. Use: `gunicorn --logger-class emboux_connector.accesslog.RedactingLogger`.
"""

import re

from gunicorn.glogging import Logger

_TOKEN_IN_PATH = re.compile(r"(/api-keys/)(?!by-id/)[^/?\s]+")


def redact(text):
    return _TOKEN_IN_PATH.sub(r"\1***", text) if text else text


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):  # the request line and the path
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
