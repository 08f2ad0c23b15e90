"""gunicorn settings of the connector: `gunicorn -c python:emboux_connector.gunicorn_conf
emboux_connector.wsgi:app` (command-line options given as well override these).

- One process model wherever the connector runs (the dev stack and the
  container start it with this file): 3 worker processes of 4 threads
  each (gthread), for 2 cores. Measured with bench/api_bench.py (issue 15):
  8 clients writing aliases got 2.5x the throughput of 3 single-threaded
  `sync` workers (the container's earlier default), which also close the
  connection after every answer; 2 x 4, 2 x 8 and 3 x 4 threads were alike
  within the noise of the shared machine. `--workers`/`--threads` on the
  command line override these.
- Logs without secrets (accesslog.RedactingLogger).
- Requests gunicorn refuses itself, before the app sees them (a request line
  over limit_request_line, a header over limit_request_field_size, a
  malformed request), are answered in the API's error shape
  `{"detail", "code"}` as JSON, not with gunicorn's HTML page.
"""

import json

from gunicorn import util

from .logs import redact

logger_class = "emboux_connector.accesslog.RedactingLogger"
worker_class = "gthread"
workers = 3
threads = 4

# (status from gunicorn) -> (detail, code). gunicorn's own message, which may
# quote the request, is not echoed: the status says what went wrong.
REFUSALS = {
    400: ("Malformed HTTP request", "bad_request"),
    403: ("Request forbidden", "forbidden"),
    414: ("Request line too long", "request_line_too_long"),
    417: ("Expectation failed", "expectation_failed"),
    431: ("Request header fields too large", "headers_too_large"),
    500: ("Internal server error", "internal_error"),
    501: ("Transfer coding not supported", "not_implemented"),
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error, answering JSON (same signature)."""
    detail, code = REFUSALS.get(status_int, (redact(reason), "bad_request"))
    if status_int == 400 and mesg:
        detail = f"{detail}: {redact(mesg)}"[:300]
    body = json.dumps({"detail": detail, "code": code}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install_json_errors():
    # gunicorn's workers call util.write_error (workers/base.py handle_error)
    # for every request they refuse; it is the one place that writes the page.
    util.write_error = write_json_error


def post_fork(server, worker):
    install_json_errors()


install_json_errors()  # the arbiter too (workers fork from it)
