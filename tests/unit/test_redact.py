"""logs.redact: what no log line may carry, and what it must keep readable."""

import secrets

import pytest

from emboux_connector import logs

MASTER = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def known_secrets():
    logs.remember_secrets(logs.secret_values({"EMBOUX_API_KEY": MASTER,
                                              "MAILDB_DSN": "postgresql://emboux:db-Passw0rd-x@h:5432/emboux_mail"}))


@pytest.mark.parametrize("line,gone,kept", [
    ("GET /api-keys/lowercase-custom-token-123456/usage?since=2020-01-01 HTTP/1.1",
     "lowercase-custom-token-123456", "/api-keys/***/usage?since=2020-01-01"),
    ("PUT /api-keys/by-id/42 HTTP/1.1", None, "/api-keys/by-id/42"),
    ("GET /domains/?token=abc&reason=bounce&limit=5", "abc", "?token=***&reason=bounce&limit=5"),
    ("GET /domains/?x=whatever-was-sent", "whatever-was-sent", "?x=***"),
    ("Authorization: Bearer sometoken", "sometoken", "Authorization: ***"),
    ("header was bearer lower-case-token", "lower-case-token", "bearer ***"),
    # redact() skips a pattern when a plain substring test says it cannot match
    # (issue 15): any letter case still reaches every pattern
    ("AUTHORIZATION=BEARER UPPER-CASE-TOKEN", "UPPER-CASE-TOKEN", "AUTHORIZATION=***"),
    ("sent BeArEr mixed-case-token", "mixed-case-token", "BeArEr ***"),
    ("GET /API-KEYS/x then /api-keys/Other-Token-7 HTTP/1.1", "Other-Token-7", "/api-keys/***"),
    (f"boom {MASTER} boom", MASTER, "boom *** boom"),
    ("could not connect with db-Passw0rd-x", "db-Passw0rd-x", "with ***"),
    ("token Ab3dEfGh1jKlMn0pQrStUvWx9z seen", "Ab3dEfGh1jKlMn0pQrStUvWx9z", "token *** seen"),
    ("unhandled error on GET /users/box@example.com", None, "/users/box@example.com"),
    ("key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 selector eb20261130-a1b2c3",
     None, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 selector eb20261130-a1b2c3"),
])
def test_redact(line, gone, kept):
    out = logs.redact(line)
    if gone:
        assert gone not in out
    assert kept in out, out
