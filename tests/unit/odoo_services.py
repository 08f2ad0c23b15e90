"""The Odoo module's pure services (addons/emboux_core/services), loaded by
path without Odoo: a package object stands in for `services` so that their
relative imports work without running its __init__ (which imports Odoo for
secrets_box). And a scripted `requests` session for the client seam."""

import importlib
import json
import pathlib
import sys
import types

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ROOT / "addons" / "emboux_core" / "services"
_PKG = "emboux_core_services"

if _PKG not in sys.modules:
    pkg = types.ModuleType(_PKG)
    pkg.__path__ = [str(SERVICES)]
    sys.modules[_PKG] = pkg


def load(name):
    return importlib.import_module(f"{_PKG}.{name}")


class FakeResponse:
    def __init__(self, status, body=None):
        self.status_code = status
        self.content = json.dumps(body).encode() if body is not None else b""
        self._body = body

    def json(self):
        return self._body


class FakeSession:
    """Answers (method, path) from a script: a (status, body) tuple, an
    exception instance to raise, or a list of those consumed in order.
    Records every request (method, path, json body, headers)."""

    def __init__(self, base, script=None):
        self.base = base
        self.script = dict(script or {})
        self.calls = []

    def request(self, method, url, json=None, params=None, timeout=None, headers=None):
        path = url[len(self.base):]
        self.calls.append((method, path, json, headers))
        answer = self.script.get((method, path), (404, {"detail": "not scripted", "code": "not_found"}))
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(*answer)


def client(script=None, url="http://connector.test"):
    cc = load("connector_client")
    session = FakeSession(url, script)
    return cc.ConnectorClient(url, "master-token", session=session), session


TIMEOUT = requests.Timeout("read timed out")
REFUSED_CONNECTION = requests.ConnectionError("connection refused")
