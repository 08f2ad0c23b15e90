# Inbound protection (issue 17, docs/inbound.md): Rspamd as a milter of
# Postfix (port 25 and submission), with its own Redis (Bayes, greylisting,
# reputation). Private instances on loopback, configured from the production
# templates in docker/rspamd (rendered by docker/render.sh), Debian's own
# configuration (/etc/rspamd) underneath.
#   stack_rspamd_up / stack_rspamd_down / stack_rspamd_status (see ./dev)
# Layout: var/rspamd/etc (LOCAL_CONFDIR: rendered local.d, rspamd.conf.*),
# var/rspamd/db (DBDIR), var/rspamd/run, var/rspamd/redis; logs
# var/log/rspamd.log, var/log/redis.log.

RSPAMD_DIR="$VAR/rspamd"
RSPAMD_PKGS="rspamd redis-server"

# Exported when ./dev is sourced: docker/render.sh (run by stack-mail, which
# comes first) puts the milter's address into main.cf.
export RSPAMD_HOST=127.0.0.1
RSPAMD_MILTER_PORT=$(env_port RSPAMD_MILTER_PORT 11432)
RSPAMD_NORMAL_PORT=$(env_port RSPAMD_NORMAL_PORT 11433)
RSPAMD_CONTROLLER_PORT=$(env_port RSPAMD_CONTROLLER_PORT 11434)
RSPAMD_REDIS_PORT=$(env_port RSPAMD_REDIS_PORT 16379)
RSPAMD_FUZZY_PORT=$(env_port RSPAMD_FUZZY_PORT 11435)
export RSPAMD_MILTER_PORT RSPAMD_NORMAL_PORT RSPAMD_CONTROLLER_PORT RSPAMD_REDIS_PORT RSPAMD_FUZZY_PORT
# The milter listens on a unix socket (a directory only Rspamd and the
# postfix group traverse): over TCP on the loopback every message waited
# about 40 ms on Nagle's algorithm and the milter's delayed ACK (issue 15,
# bench/mailpath.py; OpenDKIM likewise, docs/mail-server.md "One RCPT").
RSPAMD_MILTER_SOCKET="$VAR/rspamd/milter/milter.sock"
export RSPAMD_MILTER="unix:$RSPAMD_MILTER_SOCKET"
# The connector serves Rspamd's settings map to this address only; set here
# (not in stack_rspamd_up) so the connector, which starts first, has it.
env_set RSPAMD_MAP_CLIENTS 127.0.0.1
# The connector's workers count failed API authentications in this Redis too
# (its database 1, throttle.py), so the limit is exact across them; until it
# is up they count in memory (the deployment gives them a Redis of their own).
env_set AUTH_LIMIT_STORAGE "redis://127.0.0.1:$RSPAMD_REDIS_PORT/1?socket_connect_timeout=1&socket_timeout=1"
# Dovecot's IMAPSieve trains Rspamd through its controller (docker/dovecot/sieve/rspamd-learn).
export RSPAMD_CONTROLLER="$RSPAMD_HOST:$RSPAMD_CONTROLLER_PORT"

rspamd_install() {
    # shellcheck disable=SC2086
    apt_install $RSPAMD_PKGS
    # A host with an init system may have started the packaged daemons.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now rspamd redis-server >/dev/null 2>&1 || true
    fi
}

rspamd_redis() {
    local conf="$RSPAMD_DIR/redis.conf"
    mkdir -p "$RSPAMD_DIR/redis"
    cat >"$conf.new" <<REDIS
# Redis of the dev stack's Rspamd (loopback only, no persistence across ./dev down).
bind 127.0.0.1
port $RSPAMD_REDIS_PORT
protected-mode yes
daemonize no
dir $RSPAMD_DIR/redis
save ""
appendonly no
logfile $LOG/redis.log
REDIS
    if ! cmp -s "$conf" "$conf.new"; then mv "$conf.new" "$conf"; pid_stop redis; else rm -f "$conf.new"; fi
    if pid_alive redis && wait_port 127.0.0.1 "$RSPAMD_REDIS_PORT" 1; then return 0; fi
    pid_stop redis
    say "starting Redis (for Rspamd) on 127.0.0.1:$RSPAMD_REDIS_PORT"
    setsid redis-server "$conf" >>"$LOG/redis.log" 2>&1 </dev/null &
    echo $! >"$RUN/redis.pid"
    wait_port 127.0.0.1 "$RSPAMD_REDIS_PORT" 15 || die "Redis not listening (see $LOG/redis.log)"
}

rspamd_vars() {
    local api
    api=$(env_get EMBOUX_API_URL)
    export RSPAMD_MILTER_BIND="$RSPAMD_MILTER_SOCKET mode=0666"
    export RSPAMD_NORMAL_BIND="127.0.0.1:$RSPAMD_NORMAL_PORT"
    export RSPAMD_CONTROLLER_BIND="127.0.0.1:$RSPAMD_CONTROLLER_PORT"
    export RSPAMD_REDIS_SERVERS="127.0.0.1:$RSPAMD_REDIS_PORT"
    export RSPAMD_FUZZY_BIND="127.0.0.1:$RSPAMD_FUZZY_PORT"
    export RSPAMD_DNS_SERVERS="\"$(env_get DNS_RESOLVER)\""
    export RSPAMD_MAP_INTERVAL=1s RSPAMD_LOG_LEVEL=info RSPAMD_WORKERS
    RSPAMD_WORKERS=$(nproc 2>/dev/null || echo 2)
    # The connector serves it to the addresses in RSPAMD_MAP_CLIENTS (no secret in the URL)
    export RSPAMD_SETTINGS_URL="$api/mailserver/rspamd/settings"
    export RSPAMD_REPORT_URL="$api/mailserver/rspamd/outbound-spam"
}

rspamd_start() {
    local etc="$RSPAMD_DIR/etc" changed=0
    rspamd_vars
    rm -rf "$etc.new"
    sh "$ROOT/docker/render.sh" "$etc.new" rspamd rspamd/local.d >/dev/null || die "rendering docker/rspamd failed"
    # render.sh writes OUTDIR/rspamd/...: LOCAL_CONFDIR is that directory
    mv "$etc.new/rspamd" "$etc.new.d" && rm -rf "$etc.new" && mv "$etc.new.d" "$etc.new"
    chgrp -R _rspamd "$etc.new"; chmod -R g+rX,o-rwx "$etc.new"
    diff -r "$etc" "$etc.new" >/dev/null 2>&1 || changed=1
    rm -rf "$etc"; mv "$etc.new" "$etc"
    mkdir -p "$RSPAMD_DIR/db" "$RSPAMD_DIR/run"
    chown _rspamd:_rspamd "$RSPAMD_DIR/db" "$RSPAMD_DIR/run"
    touch "$LOG/rspamd.log"; chown _rspamd:_rspamd "$LOG/rspamd.log"
    mkdir -p "$(dirname "$RSPAMD_MILTER_SOCKET")"
    chown _rspamd:postfix "$(dirname "$RSPAMD_MILTER_SOCKET")"; chmod 750 "$(dirname "$RSPAMD_MILTER_SOCKET")"
    if [ $changed -eq 0 ] && pid_alive rspamd && [ -S "$RSPAMD_MILTER_SOCKET" ]; then return 0; fi
    pid_stop rspamd 15
    local vars=("--var=LOCAL_CONFDIR=$etc" "--var=DBDIR=$RSPAMD_DIR/db" "--var=RUNDIR=$RSPAMD_DIR/run" "--var=LOGDIR=$LOG")
    rspamadm "${vars[@]}" configtest -c /etc/rspamd/rspamd.conf >>"$LOG/rspamd-setup.log" 2>&1 \
        || die "Rspamd configuration invalid (see $LOG/rspamd-setup.log)"
    rm -f "$RSPAMD_MILTER_SOCKET"
    say "starting Rspamd (milter $RSPAMD_MILTER_SOCKET, controller :$RSPAMD_CONTROLLER_PORT)"
    setsid rspamd -f -c /etc/rspamd/rspamd.conf -u _rspamd -g _rspamd "${vars[@]}" \
        >>"$LOG/rspamd-setup.log" 2>&1 </dev/null &
    echo $! >"$RUN/rspamd.pid"
    local i
    for i in $(seq 1 600); do [ -S "$RSPAMD_MILTER_SOCKET" ] && break; sleep 0.1; done
    [ -S "$RSPAMD_MILTER_SOCKET" ] && wait_port 127.0.0.1 "$RSPAMD_CONTROLLER_PORT" 30 \
        || die "Rspamd not listening (see $LOG/rspamd.log, $LOG/rspamd-setup.log)"
}

stack_rspamd_up() {
    rspamd_install
    rspamd_redis
    rspamd_start
    env_set RSPAMD_CONTROLLER_URL "http://127.0.0.1:$RSPAMD_CONTROLLER_PORT"
}

stack_rspamd_down() { pid_stop rspamd 15; pid_stop redis; }

stack_rspamd_status() {
    local st=down rd=down
    pid_alive rspamd && st=up
    pid_alive redis && rd=up
    echo "  Rspamd          milter $RSPAMD_MILTER_SOCKET, controller 127.0.0.1:$RSPAMD_CONTROLLER_PORT   (Rspamd $st, Redis :$RSPAMD_REDIS_PORT $rd; log $LOG/rspamd.log)"
}
