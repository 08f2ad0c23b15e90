# Shared helpers for ./dev: paths, logging, var/dev.env, background processes.
# Sourced, never executed.

ROOT=${ROOT:?}
VAR="$ROOT/var"
RUN="$VAR/run"          # PID files of everything ./dev started
LOG="$VAR/log"
ENV_FILE="$VAR/dev.env"
CACHE="${EMBOUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/emboux}"
mkdir -p "$VAR" "$RUN" "$LOG" "$CACHE"

say()  { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# apt-get update at most once per ./dev run, and only when something is missing.
APT_UPDATED=
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        apt-get update -qq >"$LOG/apt.log" 2>&1 || die "apt-get update failed (see $LOG/apt.log)"
        APT_UPDATED=1
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >>"$LOG/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed (see $LOG/apt.log)"
}

# --- var/dev.env: the one place that says where the running stack is --------
env_get() {  # env_get KEY -> value or empty
    [ -f "$ENV_FILE" ] || return 0
    sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1 | sed "s/^'\(.*\)'$/\1/"
}
env_set() {  # env_set KEY VALUE: replaces the line in place, or appends it
    local key=$1 val=$2 line tmp
    line=$(printf "%s='%s'" "$key" "$val")
    touch "$ENV_FILE"; chmod 600 "$ENV_FILE"
    grep -qxF -- "$line" "$ENV_FILE" && return 0   # unchanged: the file stays as it is
    tmp=$(mktemp "$ENV_FILE.XXXX")
    if grep -q "^$key=" "$ENV_FILE"; then
        LINE=$line awk -v k="$key" 'index($0, k "=") == 1 { print ENVIRON["LINE"]; next } { print }' \
            "$ENV_FILE" >"$tmp"
    else
        cat "$ENV_FILE" >"$tmp"; printf '%s\n' "$line" >>"$tmp"
    fi
    mv "$tmp" "$ENV_FILE"; chmod 600 "$ENV_FILE"
}
# A secret is generated once and kept in dev.env, so that ./dev up stays idempotent.
env_secret() {  # env_secret KEY [LENGTH]
    local cur; cur=$(env_get "$1")
    if [ -z "$cur" ]; then
        cur=$(python3 -c "import secrets; print(secrets.token_urlsafe(${2:-32}))")
        env_set "$1" "$cur"
    fi
    printf '%s' "$cur"
}

# --- processes -------------------------------------------------------------
pid_alive() {  # pid_alive NAME
    local f="$RUN/$1.pid"
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}
pid_stop() {  # pid_stop NAME [TIMEOUT_S]: TERM, wait, then KILL
    local f="$RUN/$1.pid" pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $1 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 $(( ${2:-10} * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}
wait_port() {  # wait_port HOST PORT [TIMEOUT_S]
    local i
    for i in $(seq 1 $(( ${3:-30} * 10 ))); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A server of ours that runs with var/dev.env's settings, (re)started when its
# stamp (a hash of its code and settings, $RUN/NAME.sha) changed, in its own
# session, logging to $LOG/NAME.log.
daemon_up() {  # daemon_up NAME STAMP HOST PORT "WHAT" COMMAND...
    local name=$1 want=$2 host=$3 port=$4 what=$5; shift 5
    if pid_alive "$name" && wait_port "$host" "$port" 1 \
        && [ "$(cat "$RUN/$name.sha" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    pid_stop "$name"
    say "starting $what on $host:$port"
    (
        set -a; . "$ENV_FILE"; set +a
        exec setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1
    ) &
    echo $! >"$RUN/$name.pid"
    wait_port "$host" "$port" 15 || die "$what not listening (see $LOG/$name.log)"
    echo "$want" >"$RUN/$name.sha"
}
daemon_down() { pid_stop "$1"; rm -f "$RUN/$1.sha"; }  # daemon_down NAME
# Pick a port: the one already in dev.env, else the default if free, else a free one.
env_port() {  # env_port KEY DEFAULT
    local cur; cur=$(env_get "$1")
    if [ -z "$cur" ]; then
        cur=$2
        while ! port_free "$cur"; do cur=$((cur + 1)); done
        env_set "$1" "$cur"
    fi
    printf '%s' "$cur"
}
