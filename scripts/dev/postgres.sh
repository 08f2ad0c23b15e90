# PostgreSQL for the mail DB (and Odoo's DB): Debian's package, started with
# pg_ctlcluster, or an already running server on 127.0.0.1:5432.

PG_HOST=${EMBOUX_PG_HOST:-127.0.0.1}
PG_PORT=${EMBOUX_PG_PORT:-5432}

# Run psql as the cluster superuser. A foreign server needs EMBOUX_PG_ADMIN_DSN.
pg_admin() {
    export PGOPTIONS="-c client_min_messages=warning"
    if [ -n "${EMBOUX_PG_ADMIN_DSN:-}" ]; then
        psql "$EMBOUX_PG_ADMIN_DSN" -v ON_ERROR_STOP=1 -qAt "$@"
    else
        # Debian's cluster: the postgres OS user over the local socket (peer auth).
        runuser -u postgres -- psql -w -h /var/run/postgresql -p "$PG_PORT" -v ON_ERROR_STOP=1 -qAt "$@"
    fi
}

pg_ensure_server() {
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then return 0; fi
    apt_install postgresql postgresql-contrib
    local ver cluster
    ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
        pg_createcluster "$ver" main >/dev/null
    fi
    # Each pgsql map of Postfix's proxymap, Dovecot's auth workers, the
    # connector's pools, the policy daemon and Odoo hold connections of their
    # own: Debian's default of 100 ran out with the whole stack and a test run.
    pg_conftool "$ver" main set max_connections 300
    say "starting PostgreSQL $ver"
    pg_ctlcluster "$ver" main start 2>/dev/null || true
    for _ in $(seq 1 100); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return 0; sleep 0.1; done
    die "PostgreSQL did not come up on $PG_HOST:$PG_PORT"
}

# pg_ensure_role ROLE PASSWORD [ATTRIBUTES]: create or reset a login role
# (ATTRIBUTES: role options valid for both CREATE and ALTER ROLE, e.g. CREATEDB).
pg_ensure_role() {
    pg_admin -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$1') THEN
            CREATE ROLE \"$1\" LOGIN PASSWORD '$2' ${3:-};
        ELSE
            ALTER ROLE \"$1\" LOGIN PASSWORD '$2' ${3:-};
        END IF; END \$\$;"
}
pg_ensure_group() {  # pg_ensure_group ROLE
    pg_admin -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$1') THEN
            CREATE ROLE \"$1\" NOLOGIN; END IF; END \$\$;"
}
pg_ensure_db() {  # pg_ensure_db NAME OWNER
    if [ -z "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]; then
        pg_admin -c "CREATE DATABASE \"$1\" OWNER \"$2\" ENCODING 'UTF8' TEMPLATE template0"
    fi
}

# The mail DB: owner role for the connector, and one read-only group per mail
# server, each with its login role (least privilege, issue 9; the grants are
# migration 0009's and the migrations that add views):
#   emboux_mail_postfix  <- emboux_postfix   routing, suspension, relay credentials
#   emboux_mail_dovecot  <- emboux_dovecot   logins (password hashes) and quotas
#   emboux_mail_opendkim <- emboux_opendkim  DKIM signing keys
# Created here, before the migrations run, so that every migration can grant
# its new view to the group of the server that reads it. emboux_mailserver,
# the former shared group that could read every view, is dropped (older
# migrations grant it only if it exists).
pg_setup_maildb() {
    local db=${EMBOUX_MAILDB_NAME:-emboux_mail} pw pfpw dvpw dkpw
    pw=$(env_secret MAILDB_PASSWORD 24)
    pfpw=$(env_secret MAILDB_POSTFIX_PASSWORD 24)
    dvpw=$(env_secret MAILDB_DOVECOT_PASSWORD 24)
    dkpw=$(env_secret MAILDB_OPENDKIM_PASSWORD 24)
    pg_ensure_role emboux "$pw"
    pg_ensure_group emboux_mail_postfix
    pg_ensure_group emboux_mail_dovecot
    pg_ensure_group emboux_mail_opendkim
    pg_ensure_role emboux_postfix "$pfpw"
    pg_ensure_role emboux_dovecot "$dvpw"
    pg_ensure_role emboux_opendkim "$dkpw"
    pg_admin -c "GRANT emboux_mail_postfix TO emboux_postfix;
        GRANT emboux_mail_dovecot TO emboux_dovecot;
        GRANT emboux_mail_opendkim TO emboux_opendkim;" >/dev/null
    pg_ensure_db "$db" emboux
    # (its privileges in another database, e.g. bench/'s, keep the role:
    # then it keeps no member, so they reach nobody)
    pg_admin -d "$db" -c "DO \$\$ DECLARE m record; BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
            FOR m IN SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member
                     WHERE a.roleid = 'emboux_mailserver'::regrole LOOP
                EXECUTE format('REVOKE emboux_mailserver FROM %I', m.rolname);
            END LOOP;
            DROP OWNED BY emboux_mailserver;
            BEGIN
                DROP ROLE emboux_mailserver;
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE WARNING 'emboux_mailserver kept, without members: %', SQLERRM;
            END;
        END IF; END \$\$;" >/dev/null
    # The mail server roles may connect, and see nothing but what schema
    # mailserver grants their group.
    pg_admin -d "$db" -c "REVOKE ALL ON DATABASE \"$db\" FROM PUBLIC;
        GRANT CONNECT ON DATABASE \"$db\" TO emboux, emboux_mail_postfix, emboux_mail_dovecot, emboux_mail_opendkim;
        REVOKE ALL ON SCHEMA public FROM PUBLIC;
        GRANT ALL ON SCHEMA public TO emboux;" >/dev/null
    env_set MAILDB_NAME "$db"
    env_set MAILDB_DSN "postgresql://emboux:$pw@$PG_HOST:$PG_PORT/$db"
    env_set MAILDB_POSTFIX_DSN "postgresql://emboux_postfix:$pfpw@$PG_HOST:$PG_PORT/$db"
    env_set MAILDB_DOVECOT_DSN "postgresql://emboux_dovecot:$dvpw@$PG_HOST:$PG_PORT/$db"
    env_set MAILDB_OPENDKIM_DSN "postgresql://emboux_opendkim:$dkpw@$PG_HOST:$PG_PORT/$db"
    env_set PGHOST "$PG_HOST"
    env_set PGPORT "$PG_PORT"
}
