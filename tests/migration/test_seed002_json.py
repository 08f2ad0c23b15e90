"""Seed 002's Basic JSON API: the tenant's document, served over HTTPS by a
local server with the dev stack's test CA, pulled on demand and by the
scheduler's job; the platform converges to it, records every run, and a
document that cannot be fetched, parsed or validated changes nothing."""

import contextlib
import imaplib
import json

import psycopg2
import psycopg2.extras
import pytest
from passlib.hash import sha256_crypt, sha512_crypt

from jsonserver import DocumentServer

ALICE_HASH = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
BOB_HASH = "$1$0MhHZVnG$d6rHD1KFLNOJ9EFdMKrB91"
# the seed's example, verbatim (its layout restored: the seed lost the brackets)
SEED_DOCUMENT = {
    "example.com": {
        "account": [
            {"name": "alice", "password": "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"},
            {"name": "bob", "password": "$1$0MhHZVnG$d6rHD1KFLNOJ9EFdMKrB91"},
        ],
        "alias": [
            {"name": "office", "to": "alice@example.com,bob@example.com"},
        ],
    },
}
SEED_SIX = ("$6$rounds=100000$vE8/iTZi9/cC/RCk$lkjkaN9LY3KAiF0lxmd/dfvkxKm9WDnyG.onOaXCJ64htjzkpzxRCNLZFDbi5"
            "ggwTf4Z3vbo3pPATJzgtytU//")


@pytest.fixture
def served(devenv, tmp_path):
    s = DocumentServer(devenv, tmp_path)
    yield s
    s.close()


@pytest.fixture
def source(tenant, served, seed_domain):
    r = tenant.put("/mail/json-source/", json={"url": served.url, "interval_minutes": 5})
    assert r.status_code == 200, r.text
    yield served
    tenant.delete("/mail/json-source/")


def _serve(served, doc):
    served.status = 200
    served.body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()


def _pull(tenant):
    r = tenant.post("/mail/json-source/pull")
    assert r.status_code == 200, r.text
    return r.json()


def _state(tenant):
    return (tenant.get("/mail/account/", params={"domain": "example.com"}).json(),
            tenant.get("/mail/alias/", params={"domain": "example.com"}).json())


def _imap_ok(devenv, user, password):
    m = imaplib.IMAP4(devenv.get("IMAP_HOST") or "127.0.0.1", int(devenv["IMAP_PORT"]), timeout=30)
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        with contextlib.suppress(Exception):
            m.logout()


def test_seed_document_converges_then_broken_documents_change_nothing(devenv, tenant, make_tenant, source, sql):
    # a mailbox made natively before the first pull: the document is the whole truth for example.com
    assert tenant.post("/mail/account/", json={"name": "carol", "domain": "example.com",
                                               "password": "carol's password"}).status_code == 201
    _serve(source, SEED_DOCUMENT)
    run = _pull(tenant)
    assert run["status"] == "applied" and run["trigger"] == "demand", run
    assert {(c["type"], c["id"]) for c in run["created"]} == {
        ("account", "alice@example.com"), ("account", "bob@example.com"), ("alias", "office@example.com")}
    assert run["removed"] == [{"type": "account", "id": "carol@example.com"}]
    assert len(run["warnings"]) == 2 and all("weak" in w for w in run["warnings"]), run["warnings"]
    accounts, aliases = _state(tenant)
    assert [(a["id"], a["password"]) for a in accounts] == [("alice@example.com", ALICE_HASH),
                                                            ("bob@example.com", BOB_HASH)]
    assert aliases == [{"id": "office@example.com", "name": "office", "domain": "example.com",
                        "to": "alice@example.com,bob@example.com"}]
    # stored with the scheme Dovecot reads
    assert sql("SELECT password_hash FROM mailboxes WHERE email = 'alice@example.com'")[0]["password_hash"] == \
        "{MD5-CRYPT}" + ALICE_HASH

    # the same document again: nothing to do, still recorded
    run = _pull(tenant)
    assert run["status"] == "applied" and not run["created"] and not run["changed"] and not run["removed"]

    # the seed's $6$rounds= hash, $5$ and $6$ hashes of known passwords; bob leaves; office changes
    doc = {"example.com": {"account": [
        {"name": "alice", "password": sha512_crypt.using(rounds=5000).hash("alice in wonderland")},
        {"name": "dave", "password": sha256_crypt.using(rounds=5000).hash("dave's own password")},
        {"name": "erin", "password": SEED_SIX}],
        "alias": [{"name": "office", "to": "alice@example.com"}]}}
    _serve(source, doc)
    run = _pull(tenant)
    assert run["status"] == "applied", run
    assert {(c["type"], c["id"]) for c in run["created"]} == {("account", "dave@example.com"),
                                                             ("account", "erin@example.com")}
    assert {(c["type"], c["id"]) for c in run["changed"]} == {("account", "alice@example.com"),
                                                             ("alias", "office@example.com")}
    assert run["removed"] == [{"type": "account", "id": "bob@example.com"}] and run["warnings"] == []
    # Dovecot verifies the hashes as given
    assert _imap_ok(devenv, "alice@example.com", "alice in wonderland")
    assert _imap_ok(devenv, "dave@example.com", "dave's own password")
    assert not _imap_ok(devenv, "dave@example.com", "not dave's password")
    good = _state(tenant)

    # broken documents: each a recorded rejection, nothing changed
    other = make_tenant()
    other_domain = other.domain()
    limit = int(devenv.get("JSON_PULL_MAX_BYTES") or 1048576)
    broken = [
        (b'{"example.com": {"account": [', "not a JSON document"),
        (b"[]", "JSON object"),
        (b"\xff\xfe", "not a JSON document"),
        (b'{"example.com": {"account": [{"name": "alice", "password": NaN}]}}', "not a JSON document"),
        (b"[" * 100000 + b"]" * 100000, "not a JSON document"),
        (b'{"example.com": {"account": []}, "padding": "' + b"x" * limit + b'"}', "larger than"),
        ({"example.com": {"accounts": []}}, "unknown key"),
        ({"example.com": {"account": [{"name": "alice", "password": "plain text"}]}}, "crypt hash"),
        ({"example.com": {"account": [{"name": "alice", "password": "$1$" + "a" * 40}]}}, "crypt hash"),
        ({"example.com": {"account": [{"name": "al ice", "password": ALICE_HASH}]}}, "name"),
        ({"example.com": {"account": [{"name": "alice", "password": ALICE_HASH}] * 2}}, "listed twice"),
        ({"example.com": {"alias": [{"name": "office", "to": "not an address"}]}}, "destination"),
        ({"example.com": {}, other_domain: {"account": []}}, "not a domain of this tenant"),
        ({"example.com": {}, "never-created.example.org": {}}, "not a domain of this tenant"),
        ({"example.com": {"account": [{"name": f"u{i}", "password": ALICE_HASH} for i in range(11)]}},
         "quota"),
    ]
    for body, why in broken:
        _serve(source, body)
        run = _pull(tenant)
        assert run["status"] == "rejected" and why in run["reason"], (body[:80], run)
        assert not run["created"] and not run["changed"] and not run["removed"]
        assert _state(tenant) == good, body[:80]
    source.status = 404
    run = _pull(tenant)
    assert run["status"] == "rejected" and "HTTP 404" in run["reason"]
    assert _state(tenant) == good
    # the other tenant's domain kept what it had (nothing was removed there)
    assert other.get("/mail/account/", params={"domain": other_domain}).status_code == 200

    runs = tenant.get("/mail/json-source/runs", params={"limit": 200}).json()
    assert [r["status"] for r in runs[:len(broken) + 1]] == ["rejected"] * (len(broken) + 1)
    assert [r["status"] for r in runs[len(broken) + 1:]] == ["applied"] * 3


def test_scheduled_pull(devenv, tenant, source, sql):
    """The scheduler's job pulls a source whose time has come (and only then)."""
    from emboux_connector import jobs
    _serve(source, SEED_DOCUMENT)
    sql("UPDATE json_pull_sources SET next_pull_at = now() - interval '1 minute' WHERE partner_ref = %s",
        (tenant.partner_ref,))
    conn = psycopg2.connect(devenv["MAILDB_DSN"])
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            report = jobs.JOBS["pull-json"](cur)
        jobs.after_commit("pull-json", report)
        assert report["pulled"] >= 1 and not jobs.failed(report), report
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            report = jobs.JOBS["pull-json"](cur)    # not due again for interval_minutes
    finally:
        conn.close()
    runs = tenant.get("/mail/json-source/runs").json()
    assert [(r["trigger"], r["status"]) for r in runs] == [("schedule", "applied")], runs
    assert [a["id"] for a in tenant.get("/mail/account/").json()] == ["alice@example.com", "bob@example.com"]


def test_source_rules(api, tenant, make_tenant, served):
    for url in ("http://127.0.0.1/mail.json", "ftp://x.example/m", "https://user:pw@x.example/m", "not a url",
                "https:///nohost"):
        r = tenant.put("/mail/json-source/", json={"url": url})
        assert r.status_code == 400 and r.json()["detail"].startswith("url"), (url, r.text)
    assert tenant.get("/mail/json-source/").status_code == 404
    r = tenant.put("/mail/json-source/", json={"url": served.url, "interval_minutes": 1})
    assert r.status_code == 400 and r.json()["detail"].startswith("interval_minutes")
    assert tenant.put("/mail/json-source/", json={"url": served.url}).status_code == 200
    try:
        other = make_tenant()
        # the other tenant has no source, and cannot name this one's
        assert other.get("/mail/json-source/").status_code == 404
        for method, path in (("GET", "/mail/json-source/"), ("GET", "/mail/json-source/runs"),
                             ("POST", "/mail/json-source/pull"), ("DELETE", "/mail/json-source/")):
            r = other.api.request(method, path, token=other.token, params={"partner_ref": tenant.partner_ref})
            assert r.status_code == 404 and r.json()["code"] == "json_source_not_found", (method, path, r.text)
        assert served.requests == 0
        # the master names the tenant
        assert api.get("/mail/json-source/").status_code == 400
        r = api.get("/mail/json-source/", params={"partner_ref": tenant.partner_ref})
        assert r.status_code == 200 and r.json()["url"] == served.url
    finally:
        assert tenant.delete("/mail/json-source/").status_code == 204
