#!/bin/sh
# Entry point of the emboux-rspamd image (docker/Dockerfile.rspamd), two roles:
#   rspamd  -- render docker/rspamd (the templates ./dev up renders, see
#              scripts/dev/stack-rspamd.sh) and run Rspamd in the foreground
#   redis   -- Redis for Rspamd (Bayes, greylisting, fuzzy hashes), or the
#              connector's limiter (REDIS_VOLATILE=1, its own volume)
# Both talk over unix sockets in volumes, nothing over the network:
#   /run/emboux-redis  (redis-run):  Redis's socket, mounted by rspamd only
#   /run/emboux-rspamd (rspamd-run): the milter and the controller, mounted
#       by the mail service (Postfix's milter, IMAPSieve's rspamd-learn). A
#       unix socket because the controller trusts its clients (learning needs
#       no password there, and only the containers mounting it are clients),
#       and because over TCP each message waited ~40 ms on Nagle's algorithm
#       and the milter's delayed ACK (issue 15, docs/mail-server.md).
# Settings (env file, docker/mail.env.example): RSPAMD_DNS_SERVERS,
# RSPAMD_CONNECTOR_URL, RSPAMD_MAP_INTERVAL, RSPAMD_LOG_LEVEL, RSPAMD_WORKERS.
set -eu
# PID 1 ignores signals it has no handler for: `stop` during the waits below
# would otherwise take the full stop timeout.
trap 'exit 143' TERM INT
APP=/opt/emboux-rspamd
REDIS_DIR=/run/emboux-redis
SOCK_DIR=/run/emboux-rspamd

case "${1:-rspamd}" in
redis)
    # Unix socket only (port 0), the data in the redis-data volume; with
    # REDIS_VOLATILE=1 (the connector's limiter) nothing is written to disk.
    mkdir -p "$REDIS_DIR" /var/lib/redis
    chown redis:redis "$REDIS_DIR" /var/lib/redis; chmod 755 "$REDIS_DIR"; chmod 750 /var/lib/redis
    rm -f "$REDIS_DIR/redis.sock"
    if [ "${REDIS_VOLATILE:-0}" = 1 ]; then set -- --appendonly no --save ""; else set -- --appendonly yes; fi
    exec setpriv --reuid=redis --regid=redis --init-groups \
        redis-server --port 0 --unixsocket "$REDIS_DIR/redis.sock" --unixsocketperm 777 \
        --dir /var/lib/redis --protected-mode yes --daemonize no --logfile "" "$@"
    ;;
rspamd) ;;
*) exec "$@" ;;
esac

# DNS for SPF, DKIM, DMARC and ARC and for the connector's name: the
# container's first resolver (the compose network's, which also knows the
# service names; Rspamd would spread queries over all of them) unless
# RSPAMD_DNS_SERVERS lists others (host[:port], comma or space separated;
# they must resolve the connector's name too).
dns="${RSPAMD_DNS_SERVERS:-$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)}"
RSPAMD_DNS_SERVERS=""
for ns in $(printf '%s' "$dns" | tr ',' ' '); do
    case "$ns" in
        *[!A-Za-z0-9.:_%-]*) echo "rspamd: RSPAMD_DNS_SERVERS: not a host[:port]: '$ns'" >&2; exit 64 ;;
    esac
    RSPAMD_DNS_SERVERS="${RSPAMD_DNS_SERVERS:+$RSPAMD_DNS_SERVERS, }\"$ns\""
done
[ -n "$RSPAMD_DNS_SERVERS" ] || { echo "rspamd: RSPAMD_DNS_SERVERS is not set and /etc/resolv.conf names no nameserver" >&2; exit 64; }
case "${RSPAMD_WORKERS:-1}" in
    *[!0-9]*|0) echo "rspamd: RSPAMD_WORKERS must be a number of processes (got '$RSPAMD_WORKERS')" >&2; exit 64 ;;
esac
case "${RSPAMD_MAP_INTERVAL:=5s}" in
    *[!0-9smh.]*|'') echo "rspamd: RSPAMD_MAP_INTERVAL must be a duration like 10s (got '$RSPAMD_MAP_INTERVAL')" >&2; exit 64 ;;
esac
connector="${RSPAMD_CONNECTOR_URL:-http://connector:8600}"
connector=${connector%/}
case "$connector" in
    http://*|https://*) ;;
    *) echo "rspamd: RSPAMD_CONNECTOR_URL must be an http(s) URL (got '$connector')" >&2; exit 64 ;;
esac
export RSPAMD_DNS_SERVERS RSPAMD_MAP_INTERVAL
export RSPAMD_LOG_LEVEL="${RSPAMD_LOG_LEVEL:-notice}"
export RSPAMD_WORKERS="${RSPAMD_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
export RSPAMD_MILTER_BIND="$SOCK_DIR/milter.sock mode=0666"
export RSPAMD_CONTROLLER_BIND="$SOCK_DIR/controller.sock mode=0666"
# inside the container only: the scanner (rspamc), the fuzzy storage
export RSPAMD_NORMAL_BIND="127.0.0.1:11333"
export RSPAMD_FUZZY_BIND="127.0.0.1:11335"
export RSPAMD_REDIS_SERVERS="$REDIS_DIR/redis.sock"
# The connector serves these to the rspamd service's address only
# (RSPAMD_MAP_CLIENTS=rspamd on the connector, compose.yaml).
export RSPAMD_SETTINGS_URL="$connector/mailserver/rspamd/settings"
export RSPAMD_REPORT_URL="$connector/mailserver/rspamd/outbound-spam"

etc=/etc/emboux-rspamd
rm -rf "$etc.new"
sh "$APP/render.sh" "$etc.new" rspamd rspamd/local.d
rm -rf "$etc"; mv "$etc.new/rspamd" "$etc"; rm -rf "$etc.new"
# Container only: log to the console (podman/docker logs), not to a file.
mkdir -p "$etc/override.d"
printf 'type = "console";\n' >"$etc/override.d/logging.inc"
chgrp -R _rspamd "$etc"; chmod -R g+rX,o-rwx "$etc"

mkdir -p "$SOCK_DIR" /var/lib/rspamd /run/rspamd
chown _rspamd:_rspamd "$SOCK_DIR" /var/lib/rspamd /run/rspamd; chmod 755 "$SOCK_DIR"
# A socket left by a stopped container would answer nothing: Postfix sees a
# refused connection and defers (tempfail) until Rspamd makes a new one.
rm -f "$SOCK_DIR/milter.sock" "$SOCK_DIR/controller.sock"
# DBDIR is the rspamd-data volume: Rspamd compiles its TLD list and regular
# expressions (hyperscan) there once, ~45 s here; a restart finds them. (No
# `rspamadm configtest` first: it compiled the same again; a configuration
# error stops Rspamd itself, in its log.)
set -- --var="LOCAL_CONFDIR=$etc" --var=DBDIR=/var/lib/rspamd --var=RUNDIR=/run/rspamd
i=0
until [ -S "$REDIS_DIR/redis.sock" ]; do
    i=$((i + 1))
    [ $((i % 15)) -ne 1 ] || echo "rspamd: waiting for Redis's socket $REDIS_DIR/redis.sock (the redis service)"
    [ $i -lt 150 ] || { echo "rspamd: no Redis after 5 minutes" >&2; exit 75; }
    sleep 2
done
# Rspamd fetches the settings map once it has loaded its rules, and after a
# failed fetch waits 20 polling intervals before the next: so wait (2 minutes
# at most) until the connector serves it, or a start beside a starting
# connector (first `up`, a restart) would run on the default thresholds for
# minutes. Past that, start anyway: inbound mail does not wait on the API.
case "$connector" in
http://*)
    hostport=${connector#http://}; hostport=${hostport%%/*}
    path=${connector#http://"$hostport"}/mailserver/rspamd/settings
    host=${hostport%:*}; port=${hostport##*:}; [ "$port" != "$hostport" ] || port=80
    i=0
    while :; do
        status=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "HEAD %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3 \
                 && head -n 1 <&3' "$host" "$port" "$path" 2>/dev/null | tr -d '\r') || true
        case "$status" in *" 200 "*|*" 304 "*) break ;; esac
        i=$((i + 1))
        [ $((i % 15)) -ne 1 ] || echo "rspamd: waiting for the connector's settings map $RSPAMD_SETTINGS_URL (${status:-no answer})"
        [ $i -lt 60 ] || { echo "rspamd: $RSPAMD_SETTINGS_URL answers '${status:-nothing}': starting with the default thresholds (RSPAMD_MAP_CLIENTS on the connector?)" >&2; break; }
        sleep 2
    done ;;
esac
exec rspamd -f -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf "$@"
