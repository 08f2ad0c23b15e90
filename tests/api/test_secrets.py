"""Secrets stay secret: not in the access log, not in any response after creation."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_tokens_never_reach_the_access_log(api, tenant):
    api.put(f"/api-keys/{tenant.token}", json={"domains_allowed": 11})
    tenant.get(f"/api-keys/{tenant.token}/usage")
    api.get(f"/api-keys/{tenant.token}-unknown/usage")
    log = (ROOT / "var" / "log" / "connector-access.log").read_text()
    assert "/api-keys/***" in log
    assert tenant.token not in log
    assert api.master not in log


def test_token_and_password_never_returned(api, tenant, sql):
    d = tenant.domain()
    box = tenant.mailbox(d, password="a-long-secret-passw0rd")
    bodies = [api.get("/api-keys/").text, api.get(f"/api-keys/{tenant.token}/usage").text,
              tenant.get("/users/").text, tenant.get(f"/users/{box}").text, api.get("/changes").text,
              api.put(f"/api-keys/{tenant.token}", json={"active": True}).text]
    for body in bodies:
        assert tenant.token not in body
        assert "a-long-secret-passw0rd" not in body and "SHA512-CRYPT" not in body


# --- least privilege: what each mail server's DB role can read (issue 9) -------------
import psycopg2  # noqa: E402
import pytest  # noqa: E402

# What each server's lookups name (docker/postfix/pgsql-*.cf, dovecot-sql.conf.ext,
# opendkim.conf): it must read these...
NEEDS = {
    "MAILDB_POSTFIX_DSN": {"mailserver.domains", "mailserver.mailbox_emails", "mailserver.aliases",
                           "mailserver.sender_logins", "mailserver.sender_whitelist",
                           "mailserver.sender_relays"},
    "MAILDB_DOVECOT_DSN": {"mailserver.mailbox_logins"},
    "MAILDB_OPENDKIM_DSN": {"mailserver.dkim_signing", "mailserver.dkim_keys"},
}
# ... and a view holding a secret is readable by its one server only.
SECRET_VIEWS = {
    "mailserver.mailbox_logins": ("MAILDB_DOVECOT_DSN", "password_hash"),
    "mailserver.dkim_keys": ("MAILDB_OPENDKIM_DSN", "private_key"),
    "mailserver.sender_relays": ("MAILDB_POSTFIX_DSN", "credential"),
}
SECRET_COLUMNS = {"password_hash", "private_key", "password", "credential", "token", "token_hash"}
# The connector's tables with secrets: no mail server role reads any of them.
SECRET_TABLES = ["public.api_keys", "public.mailboxes", "public.dkim_keys", "public.relay_credentials",
                 "public.partners", "public.changes", "public.webhook_tokens"]


def _connect(devenv, key):
    if not devenv.get(key):
        pytest.fail(f"{key} missing in var/dev.env (./dev up)")
    conn = psycopg2.connect(devenv[key])
    conn.autocommit = True
    return conn


def _readable(conn):
    """Every relation of every schema this role may SELECT (views, tables)."""
    with conn.cursor() as cur:
        cur.execute("SELECT n.nspname || '.' || c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')")
        return {r[0] for r in cur.fetchall()}


def _denied(conn, query):
    with conn.cursor() as cur:
        try:
            cur.execute(query)
        except psycopg2.errors.InsufficientPrivilege:
            return True
        cur.fetchall()
        return False


@pytest.mark.parametrize("key", sorted(NEEDS))
def test_each_mail_server_role_reads_its_views_and_no_secret_of_another(devenv, key):
    conn = _connect(devenv, key)
    try:
        readable = _readable(conn)
        assert NEEDS[key] <= readable, NEEDS[key] - readable
        assert all(r.startswith("mailserver.") for r in readable), readable
        for view, (owner, column) in SECRET_VIEWS.items():
            if owner == key:
                assert not _denied(conn, f"SELECT {column} FROM {view} LIMIT 1")
            else:
                assert view not in readable
                assert _denied(conn, f"SELECT {column} FROM {view} LIMIT 1"), (key, view)
        for table in SECRET_TABLES:
            assert _denied(conn, f"SELECT * FROM {table} LIMIT 1"), (key, table)
        # no secret column in anything else it can read
        with conn.cursor() as cur:
            cur.execute("SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
            leaks = {(t, c) for t, c in cur.fetchall() if c in SECRET_COLUMNS
                     and SECRET_VIEWS.get(t, (None,))[0] != key}
        assert not leaks, leaks
    finally:
        conn.close()


def test_secrets_reach_only_their_server(devenv, api, tenant, sql):
    """With real rows: Dovecot sees the new mailbox's hash, OpenDKIM the domain's
    signing key, Postfix neither (and routes the mail all the same)."""
    name = f"lp{tenant.partner_ref}.emboux-test.net"
    r = api.post("/domains/", json={"name": name, "partner_ref": tenant.partner_ref})
    assert r.status_code == 201, r.text
    box = tenant.mailbox(name)
    r = api.post(f"/domains/{name}/verify")   # a local domain's first DKIM key
    assert r.status_code == 200, r.text
    key_name = sql("SELECT 'k' || k.id AS k FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
                   "WHERE d.name = %s AND k.status = 'active'", (name,))
    pf, dv, dk = (_connect(devenv, k) for k in ("MAILDB_POSTFIX_DSN", "MAILDB_DOVECOT_DSN", "MAILDB_OPENDKIM_DSN"))
    try:
        with dv.cursor() as cur:
            cur.execute("SELECT password_hash FROM mailserver.mailbox_logins WHERE email = %s", (box,))
            assert cur.fetchone()[0].startswith("{")
        with pf.cursor() as cur:
            cur.execute("SELECT destination FROM mailserver.aliases WHERE source = %s", (box,))
            assert cur.fetchone()[0] == box
            cur.execute("SELECT 1 FROM mailserver.domains WHERE name = %s", (name,))
            assert cur.fetchone()
        assert _denied(pf, f"SELECT password_hash FROM mailserver.mailbox_logins WHERE email = '{box}'")
        assert _denied(dk, f"SELECT password_hash FROM mailserver.mailbox_logins WHERE email = '{box}'")
        assert key_name
        with dk.cursor() as cur:
            cur.execute("SELECT private_key FROM mailserver.dkim_keys WHERE key_name = %s",
                        (key_name[0]["k"],))
            assert "PRIVATE KEY" in cur.fetchone()[0]
        assert _denied(pf, "SELECT private_key FROM mailserver.dkim_keys LIMIT 1")
        assert _denied(dv, "SELECT private_key FROM mailserver.dkim_keys LIMIT 1")
        assert _denied(dv, "SELECT 1 FROM mailserver.aliases LIMIT 1")
        assert _denied(dk, "SELECT 1 FROM mailserver.domains LIMIT 1")
    finally:
        for c in (pf, dv, dk):
            c.close()


def test_login_roles_belong_to_their_own_group_only(sql):
    rows = sql("SELECT m.rolname AS member, g.rolname AS grp FROM pg_auth_members a "
               "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
               "WHERE m.rolname IN ('emboux_postfix', 'emboux_dovecot', 'emboux_opendkim')")
    assert {(r["member"], r["grp"]) for r in rows} == {
        ("emboux_postfix", "emboux_mail_postfix"), ("emboux_dovecot", "emboux_mail_dovecot"),
        ("emboux_opendkim", "emboux_mail_opendkim")}
    # the former shared group is gone, or (privileges elsewhere) has no member
    assert sql("SELECT 1 FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
               "WHERE g.rolname = 'emboux_mailserver'") == []
    # and no mail server role is a superuser, owns anything or may create
    roles = sql("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname IN "
                "('emboux_postfix', 'emboux_dovecot', 'emboux_opendkim')")
    assert len(roles) == 3 and not any(r["rolsuper"] or r["rolcreaterole"] or r["rolcreatedb"] for r in roles)
