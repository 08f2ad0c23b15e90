#!/bin/sh
# Entry point of the connector image (connector, policyd, scheduler, init).
# Builds the DSNs from the env file's parts, checks what the command needs
# (a missing variable stops the service with its name in the log), and --
# except for the init itself -- waits until the one-shot init has migrated
# the mail DB to this image's version, so that the services converge in any
# start order (podman-compose 1.0 does not wait for depends_on conditions).
set -eu
need() {
    for v in "$@"; do
        eval "isset=\${$v:-}"
        [ -n "$isset" ] || { echo "emboux: $v is not set (docker/mail.env.example)" >&2; exit 64; }
        case "$isset" in change-me*) echo "emboux: $v is still the example's change-me" >&2; exit 64 ;; esac
    done
}
need DB_HOST DB_PORT DB_NAME MAILDB_PASSWORD
case "$DB_PORT" in *[!0-9]*) echo "emboux: DB_PORT must be a number (got '$DB_PORT')" >&2; exit 64 ;; esac
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
export MAILDB_DSN="${MAILDB_DSN:-postgresql://emboux:$(urlenc "$MAILDB_PASSWORD")@$DB_HOST:$DB_PORT/$DB_NAME}"
export POLICYD_DSN="${POLICYD_DSN:-$MAILDB_DSN}"
case "${1:-}" in
    /opt/emboux/init.sh) exec "$@" ;;
    gunicorn) need EMBOUX_API_KEY MAIL_HOSTNAME ;;
    emboux-connector) need EMBOUX_API_KEY ;;
esac
if [ -n "${EMBOUX_API_KEY:-}" ] && [ ${#EMBOUX_API_KEY} -lt 16 ]; then
    echo "emboux: EMBOUX_API_KEY is shorter than 16 characters" >&2; exit 64
fi
emboux-connector wait-migrated --timeout "${EMBOUX_WAIT_MIGRATED:-600}" \
    || { echo "emboux: the mail DB is not migrated (see the init service's log)" >&2; exit 75; }
exec "$@"
