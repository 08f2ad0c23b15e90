#!/bin/sh
# Entry point of the EmBoux webmail container: check the settings, render
# docker/webmail/ (as ./dev up does), bring Roundcube's own SQLite schema up
# to date, then run Apache in the foreground. Settings: docker/mail.env.example
# (MAIL_HOSTNAME, IMAP_PORT, SUBMISSION_PORT, optional MANAGESIEVE_PORT) and
# compose.yaml's environment (WEBMAIL_USE_HTTPS).
set -eu
APP=/opt/emboux-webmail
DATA=/var/lib/emboux-webmail
ETC=/etc/emboux-webmail

: "${MAIL_HOSTNAME:?webmail: MAIL_HOSTNAME is not set (docker/mail.env.example)}"
for v in IMAP_PORT SUBMISSION_PORT; do
    eval "val=\${$v:-}"
    case "$val" in ''|*[!0-9]*) echo "webmail: $v must be a number (got '$val')" >&2; exit 64 ;; esac
done
case "${WEBMAIL_USE_HTTPS:-true}" in
    true|false) ;;
    *) echo "webmail: WEBMAIL_USE_HTTPS must be true or false (got '$WEBMAIL_USE_HTTPS')" >&2; exit 64 ;;
esac
if ! printf '%s' "$MAIL_HOSTNAME" | grep -Eq '^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$'; then
    echo "webmail: MAIL_HOSTNAME must be a fully qualified host name (got '$MAIL_HOSTNAME')" >&2; exit 64
fi

# Where Roundcube connects: the mail service (STARTTLS on IMAP_PORT and
# SUBMISSION_PORT, the certificate verified for MAIL_HOSTNAME) and the
# connector (password changes). The CA: the deployment's self-signed one when
# the mail service generated it, else the system's (Let's Encrypt and others).
MAIL_SERVICE=${WEBMAIL_MAIL_HOST:-mail}
export WEBMAIL_IMAP_URI="tls://$MAIL_SERVICE:$IMAP_PORT"
export WEBMAIL_SMTP_URI="tls://$MAIL_SERVICE:$SUBMISSION_PORT"
export WEBMAIL_SIEVE_URI="tls://$MAIL_SERVICE:${MANAGESIEVE_PORT:-4190}"
if [ -s /etc/emboux-mail/tls/ca.pem ]; then WEBMAIL_TLS_CA=/etc/emboux-mail/tls/ca.pem
else WEBMAIL_TLS_CA=/etc/ssl/certs/ca-certificates.crt; fi
export WEBMAIL_TLS_CA
export WEBMAIL_PASSWORD_API="${WEBMAIL_PASSWORD_API:-http://connector:8600}"
# ManageSieve only when the mail service offers it (MANAGESIEVE_PORT set)
if [ -n "${MANAGESIEVE_PORT:-}" ]; then export WEBMAIL_PLUGINS="['password', 'managesieve']"
else export WEBMAIL_PLUGINS="['password']"; fi
export WEBMAIL_USE_HTTPS="${WEBMAIL_USE_HTTPS:-true}"
export WEBMAIL_PRODUCT_NAME="${WEBMAIL_PRODUCT_NAME:-EmBoux Webmail}"
export WEBMAIL_LISTEN=80 WEBMAIL_SERVER_NAME="${WEBMAIL_SERVER_NAME:-$MAIL_HOSTNAME}" WEBMAIL_WORKERS="${WEBMAIL_WORKERS:-16}"
export WEBMAIL_RUN_DIR=/run/emboux-webmail WEBMAIL_CONFIG_DIR=$ETC
export WEBMAIL_DB=$DATA/roundcube.sqlite WEBMAIL_TEMP_DIR=$DATA/temp
export WEBMAIL_LOG_DRIVER=stdout WEBMAIL_LOG_DIR=/var/log/roundcube
export WEBMAIL_ERROR_LOG=/proc/self/fd/2 WEBMAIL_ACCESS_LOG=/proc/self/fd/1
WEBMAIL_PHP_MODULE=$(ls /usr/lib/apache2/modules/libphp*.so | head -n1); export WEBMAIL_PHP_MODULE

# Roundcube's session-encryption key: generated once, kept in the data volume.
mkdir -p "$DATA" "$WEBMAIL_TEMP_DIR" "$WEBMAIL_RUN_DIR" "$ETC"
if [ ! -s "$DATA/des_key" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$DATA/des_key")
fi
WEBMAIL_DES_KEY=$(cat "$DATA/des_key"); export WEBMAIL_DES_KEY

rm -rf "$ETC/rendered"
sh "$APP/render.sh" "$ETC/rendered" webmail
install -m 640 -o root -g www-data "$ETC/rendered/webmail/config.inc.php" "$ETC/config.inc.php"
install -m 644 "$ETC/rendered/webmail/apache2.conf" "$ETC/apache2.conf"
rm -rf "$ETC/rendered"
ln -sfn /etc/roundcube/defaults.inc.php "$ETC/defaults.inc.php"
ln -sfn /etc/roundcube/mimetypes.php "$ETC/mimetypes.php"
chown www-data:www-data "$DATA" "$WEBMAIL_TEMP_DIR"
chown www-data:www-data "$WEBMAIL_DB" 2>/dev/null || true
chmod 750 "$DATA" "$WEBMAIL_TEMP_DIR"

# Roundcube's schema: created in the empty file on first connection,
# upgraded by updatedb after a new image (idempotent).
runuser -u www-data -- env ROUNDCUBE_CONFIG_DIR="$ETC" /usr/share/roundcube/bin/updatedb.sh \
    --package=roundcube --dir=/usr/share/roundcube/SQL

/usr/sbin/apache2 -t -f "$ETC/apache2.conf"
# Serve only once the connector answers (any status): it exists only after
# init accepted the env file and migrated the DB, so a bad env file leaves
# the webmail waiting, not serving a half-started platform (podman-compose
# ignores depends_on conditions).
n=0
until php -r '$c = stream_context_create(["http" => ["ignore_errors" => true, "timeout" => 5]]);
              exit(@file_get_contents($argv[1], false, $c) === false ? 1 : 0);' "$WEBMAIL_PASSWORD_API/health"; do
    [ $((n % 30)) -eq 0 ] && echo "webmail: waiting for the connector at $WEBMAIL_PASSWORD_API"
    n=$((n + 1)); sleep 2
done
rm -f "$WEBMAIL_RUN_DIR/apache2.pid"
# The env file holds every service's secrets (DB passwords, the master
# token): Apache and PHP start with an empty environment, so that nothing
# running as the web server can read them. Roundcube needs none of them.
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /usr/sbin/apache2 -f "$ETC/apache2.conf" -DFOREGROUND
