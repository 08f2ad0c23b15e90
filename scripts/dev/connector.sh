# The connector: migrations, then the REST API under gunicorn in the background.

connector_env() {  # the environment the connector reads (see connector/README)
    export EMBOUX_API_KEY MAILDB_DSN
    EMBOUX_API_KEY=$(env_get EMBOUX_API_KEY)
    MAILDB_DSN=$(env_get MAILDB_DSN)
    set -a; . "$ENV_FILE"; set +a
}

# Seed 002's JSON pull fetches tenants' documents over HTTPS: in the dev stack
# tests serve them from 127.0.0.1 with certificates of this CA (made once,
# kept), so the connector trusts it and may fetch from loopback. Never in
# production (README: JSON_PULL_ALLOW_PRIVATE).
json_pull_test_ca() {
    local dir="$VAR/json-pull-ca"
    if [ ! -s "$dir/ca.pem" ]; then
        mkdir -p "$dir" && chmod 700 "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=EmBoux dev JSON pull test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1 || die "cannot make the JSON pull test CA"
    fi
    env_set JSON_PULL_CA_FILE "$dir/ca.pem"
    env_set JSON_PULL_CA_KEY "$dir/ca.key"
    env_set JSON_PULL_ALLOW_PRIVATE 1
}

connector_setup() {
    # The master token: the operator's if set, else one generated and kept.
    if [ -n "${EMBOUX_API_KEY:-}" ]; then env_set EMBOUX_API_KEY "$EMBOUX_API_KEY"; else env_secret EMBOUX_API_KEY 32 >/dev/null; fi
    local port; port=$(env_port CONNECTOR_PORT 8600)
    env_set EMBOUX_API_URL "http://127.0.0.1:$port"
    # gunicorn runs as a daemon here: application logs (500 tracebacks) go to a file
    env_set EMBOUX_LOG_FILE "$LOG/connector-app.log"
    json_pull_test_ca
    connector_env
    say "migrating the mail DB"
    "$VENV/bin/emboux-connector" migrate || die "migrations failed"
}

# What the running connector was started with: var/dev.env (a stack part
# added settings it reads) and its code (a checkout moved on under it).
connector_stamp() {
    { cat "$ENV_FILE"; find "$ROOT/connector/emboux_connector" -name '*.py' -o -name '*.sql' | sort | xargs cat; } \
        | sha256sum | cut -d' ' -f1
}

# Start the connector, or restart it when its stamp changed; otherwise do nothing.
# Serialised: two ./dev up at once (several people share a checkout) would
# otherwise start a second gunicorn that overwrites the PID file, fails to bind
# and leaves the running one unknown to connector_stop. (gunicorn must not
# inherit the lock's descriptor: it would hold the lock for its whole life.)
connector_start() {
    ( flock 9; connector_start_locked ) 9>"$RUN/connector-start.lock"
}

connector_start_locked() {
    connector_env
    local port sum; port=$(env_get CONNECTOR_PORT)
    sum=$(connector_stamp)
    if pid_alive connector && wait_port 127.0.0.1 "$port" 1; then
        [ "$(cat "$RUN/connector.env.sha" 2>/dev/null)" = "$sum" ] && return 0
        say "restarting the connector: var/dev.env or its code changed"
        connector_stop
        local i; for i in $(seq 1 100); do port_free "$port" && break; sleep 0.1; done
    fi
    # A gunicorn started on a busy port overwrites the PID file, then fails: never start one.
    port_free "$port" || die "port $port is in use by a process that is not in $RUN/connector.pid"
    say "starting the connector on 127.0.0.1:$port"
    "$VENV/bin/gunicorn" --daemon --pid "$RUN/connector.pid" \
        --bind "127.0.0.1:$port" --workers "${CONNECTOR_WORKERS:-3}" \
        --access-logfile "$LOG/connector-access.log" --error-logfile "$LOG/connector.log" \
        --config python:emboux_connector.gunicorn_conf \
        --chdir "$ROOT" "emboux_connector.wsgi:app" 9>&- \
        || die "gunicorn did not start (see $LOG/connector.log)"
    wait_port 127.0.0.1 "$port" 30 || die "connector not listening (see $LOG/connector.log)"
    echo "$sum" >"$RUN/connector.env.sha"
}

connector_stop() { pid_stop connector; }
