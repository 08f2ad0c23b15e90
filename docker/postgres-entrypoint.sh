#!/bin/sh
# PostgreSQL of the deployment: a cluster made on first start in the pgdata
# volume (superuser `postgres`, password POSTGRES_PASSWORD), then the server
# in the foreground. Reachable on the compose network only (no published port).
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set (docker/mail.env)}"
case "$POSTGRES_PASSWORD" in
    change-me*) echo "emboux-postgres: POSTGRES_PASSWORD is still the example's change-me" >&2; exit 64 ;;
esac
PGDATA=/var/lib/postgresql/data
BIN=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp); printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"; chown postgres "$pw"
    runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -E UTF8 --locale=C.UTF-8 -U postgres \
        --pwfile="$pw" --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    cat >>"$PGDATA/postgresql.conf" <<'CONF'
listen_addresses = '*'
max_connections = 200
CONF
    cat >>"$PGDATA/pg_hba.conf" <<'CONF'
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
CONF
    echo "emboux-postgres: new cluster in $PGDATA"
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA"
