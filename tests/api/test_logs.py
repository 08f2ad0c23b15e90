"""Logs: every 500 leaves its traceback in a file, no log line carries a
token, and gunicorn's own refusals speak the API's JSON error shape."""

import json
import pathlib
import secrets
import socket
import time
import uuid

import pytest
from flask import request

from emboux_connector import logs
from emboux_connector.app import create_app
from emboux_connector.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCESS_LOG = ROOT / "var" / "log" / "connector-access.log"
ERROR_LOG = ROOT / "var" / "log" / "connector.log"


def wait_for_line(path, marker, within=15, count=1):
    """The log lines holding marker, once there are count of them: gunicorn
    writes each just after answering, so the client can be ahead of the log."""
    deadline = time.monotonic() + within
    while True:
        lines = [line for line in path.read_text(errors="replace").splitlines() if marker in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.fixture
def app_logging_to(devenv, tmp_path):
    """The real app factory against the real DB, logging as wsgi.py sets it up,
    into a file of its own; plus a route that fails the way a bug would."""
    log_file = tmp_path / "connector-app.log"
    env = dict(devenv, EMBOUX_LOG_FILE=str(log_file))
    handler = logs.configure(env)
    app = create_app(Config.from_env(env), reconcile=False)

    def explode(token):  # an unexpected failure whose message quotes secrets
        raise RuntimeError(f"bug while serving {token} for {request.headers.get('Authorization')} "
                           f"({request.full_path}, master {env['EMBOUX_API_KEY']})")

    app.add_url_rule("/api-keys/<token>/explode", view_func=explode)
    yield app, log_file
    logs.unconfigure(handler)
    app.extensions["emboux_db"].close()


def test_a_500_is_logged_with_its_traceback_and_no_token(app_logging_to, devenv, tenant):
    app, log_file = app_logging_to
    master, client = devenv["EMBOUX_API_KEY"], tenant.token
    custom = "lowercase-custom-token-" + secrets.token_hex(8)
    r = app.test_client().get(f"/api-keys/{client}/explode?token={master}&key={custom}&since=2020",
                              headers={"Authorization": f"Bearer {client}"})
    assert r.status_code == 500
    assert r.get_json() == {"detail": "Internal server error", "code": "internal_error"}
    text = log_file.read_text()
    assert "unhandled error on GET /api-keys/***/explode" in text
    assert "Traceback (most recent call last)" in text and "RuntimeError: bug while serving ***" in text
    assert "Bearer ***" in text and "token=***" in text and "key=***" in text and "since=2020" in text
    for secret in (master, client, custom):
        assert secret not in text


def test_the_dev_connector_writes_its_application_log_under_var_log(devenv):
    path = pathlib.Path(devenv["EMBOUX_LOG_FILE"])
    assert path.parent == ROOT / "var" / "log"
    assert "connector worker" in path.read_text() and devenv["EMBOUX_API_KEY"] not in path.read_text()


def test_tokens_in_query_strings_and_headers_never_reach_the_access_log(api, tenant):
    marker = uuid.uuid4().hex
    r = api.get(f"/domains/?token={api.master}&api_key={tenant.token}&reason={marker}",
                headers={"Referer": f"https://erp.example/x?access_token={api.master}"})
    assert r.status_code == 200
    tenant.get(f"/api-keys/{tenant.token}/usage?x={tenant.token}&reason={marker}")
    lines = wait_for_line(ACCESS_LOG, marker, count=2)
    assert len(lines) == 2, lines
    assert f"GET /domains/?token=***&api_key=***&reason={marker} HTTP/1.1" in lines[0]
    assert "access_token=***" in lines[0]
    assert f"GET /api-keys/***/usage?x=***&reason={marker}" in lines[1]
    log = ACCESS_LOG.read_text()
    assert api.master not in log and tenant.token not in log


@pytest.fixture
def raw(devenv):
    """raw(bytes) -> (head, body): bytes sent as they are to the dev connector (real gunicorn)."""
    def send(data):
        with socket.create_connection(("127.0.0.1", int(devenv["CONNECTOR_PORT"])), timeout=30) as s:
            s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        return head.decode("latin-1"), body
    return send


def test_oversized_header_is_refused_in_json(api):
    """A 16 KB header: gunicorn refuses it before the app; the answer is the API's shape."""
    r = api.get("/health", headers={"X-Big": "x" * 16384})
    assert r.status_code == 431
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"detail": "Request header fields too large", "code": "headers_too_large"}


def test_oversized_request_line_is_refused_in_json(api):
    r = api.get("/domains/?since=" + "1" * 9000)
    assert r.status_code == 414
    assert r.json() == {"detail": "Request line too long", "code": "request_line_too_long"}


def test_malformed_request_is_refused_in_json_and_logged_without_token(api, raw):
    marker = uuid.uuid4().hex
    head, body = raw(f"GET /api-keys/{api.master}?reason={marker} HTTP/9.9\r\n\r\n".encode())
    assert head.startswith("HTTP/1.1 400 ") and "Content-Type: application/json" in head
    answer = json.loads(body)
    assert answer["code"] == "bad_request" and answer["detail"].startswith("Malformed HTTP request")
    assert api.master not in body.decode()
    head, body = raw(b"\x16\x03\x01 not http at all\r\n\r\n")
    assert head.startswith("HTTP/1.1 400 ") and json.loads(body)["code"] == "bad_request"
    assert api.master not in ERROR_LOG.read_text() and api.master not in ACCESS_LOG.read_text()


@pytest.mark.parametrize("path,ctype", [("/domains/", "application/json"),
                                        ("/webhooks/mailgun", "application/x-www-form-urlencoded")])
def test_broken_chunked_body_is_a_400(api, raw, path, ctype):
    """gunicorn raises while the app reads a body whose chunked encoding is
    broken: the client's fault, a 400, not a 500."""
    head, body = raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.master}\r\n"
                     f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     "zz\r\nabc\r\n0\r\n\r\n".encode())
    assert head.startswith("HTTP/1.1 400 "), head
    assert json.loads(body) == {"detail": "Malformed HTTP request body", "code": "bad_request"}
