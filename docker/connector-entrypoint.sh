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
    done
}
need DB_HOST DB_PORT DB_NAME MAILDB_PASSWORD
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
export MAILDB_DSN="${MAILDB_DSN:-postgresql://emboux:$(urlenc "$MAILDB_PASSWORD")@$DB_HOST:$DB_PORT/$DB_NAME}"
export POLICYD_DSN="${POLICYD_DSN:-$MAILDB_DSN}"
case "${1:-}" in
    /opt/emboux/init.sh) exec "$@" ;;
    gunicorn) need EMBOUX_API_KEY MAIL_HOSTNAME ;;
    emboux-connector) need EMBOUX_API_KEY ;;
esac
emboux-connector wait-migrated --timeout "${EMBOUX_WAIT_MIGRATED:-600}" \
    || { echo "emboux: the mail DB is not migrated (see the init service's log)" >&2; exit 75; }
exec "$@"
