#!/bin/sh
# Beside Postfix in each mail node of docker/compose.ha.yaml (started by the
# node's entry point there): when the mail DB's primary changes (a Patroni
# failover or switchover), `postfix reload`. Why: Postfix's pgsql client
# leaves a server that failed alone for 60 s per process (RETRY_CONN_INTV in
# dict_pgsql.c), and processes that failed in the failover window kept
# deferring mail for 1-2 minutes after the new primary was up (measured,
# docs/scaling.md); a reload gives every process a fresh client at once.
# Every 2 s it asks, through HAProxy (postgres:5432, the primary), which
# server answers (address and start time) as the node's OpenDKIM role, and
# reloads when the answer changes. It never writes anything.
ETC=/etc/emboux-mail
last=""
while sleep 2; do
    now=$(PGPASSWORD="$OPENDKIM_DB_PASSWORD" PGCONNECT_TIMEOUT=3 psql -qAt -h "$DB_HOST" -p "$DB_PORT" \
          -U "$OPENDKIM_DB_USER" -d "$DB_NAME" \
          -c "SELECT inet_server_addr() || ' ' || pg_postmaster_start_time()" 2>/dev/null) || continue
    [ -n "$now" ] || continue
    if [ -n "$last" ] && [ "$now" != "$last" ] && [ -s /var/spool/postfix/pid/master.pid ]; then
        echo "mail-db-watch: the mail DB's primary changed ($last -> $now): postfix reload"
        postfix -c "$ETC/postfix" reload
    fi
    last=$now
done
