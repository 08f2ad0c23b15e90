#!/bin/sh
# Entry point of the EmBoux mail container: render the templates (the same
# ones ./dev up renders), then run Dovecot, OpenDKIM (the DKIM signer of
# submitted mail, keys from the mail DB) and Postfix in the foreground.
# Settings: docker/mail.env.example. Started by tests/deploy (podman-compose).
set -eu
APP=/opt/emboux-mail
ETC=/etc/emboux-mail

# Fixed container paths.
export POSTFIX_QUEUE_DIR=/var/spool/postfix POSTFIX_DATA_DIR=/var/lib/postfix
export POSTFIX_LOG=/dev/stdout POSTFIX_LOG_DIR=/dev/stdout
export DOVECOT_INSTANCE=emboux DOVECOT_BASE_DIR=/run/dovecot DOVECOT_STATE_DIR=/var/lib/dovecot
export DOVECOT_LOG=/dev/stderr DOVECOT_CONFIG_DIR=$ETC/dovecot
# Postfix's auto-reply service for Sieve's vacation replies (master.cf,
# dovecot.conf submission_host): on the container's loopback, never published.
export AUTOREPLY_PORT=10027
# OpenDKIM's unix socket (below), main.cf's emboux_dkim_milter.
export OPENDKIM_MILTER=unix:/run/opendkim/opendkim.sock
# Inbound filter (docs/inbound.md): the rspamd service's milter and
# controller, unix sockets in the rspamd-run volume (docker/rspamd-entrypoint.sh).
# Every message on 25, 587 and 465 passes the milter; while Rspamd is down
# Postfix defers it (milter_default_action = tempfail): never unscanned.
# The controller: IMAPSieve's rspamd-learn (Junk moves train Rspamd).
export RSPAMD_MILTER="${RSPAMD_MILTER:-unix:/run/emboux-rspamd/milter.sock}"
export RSPAMD_CONTROLLER="${RSPAMD_CONTROLLER:-/run/emboux-rspamd/controller.sock}"

: "${TLS_CERT:?TLS_CERT is not set (docker/mail.env.example)}" "${TLS_KEY:?TLS_KEY is not set}"
: "${MAIL_HOSTNAME:?MAIL_HOSTNAME is not set}"
# DMARC and TLS-RPT reports (docs/reports.md): Postfix hands the mail of these
# addresses over LMTP to the connector image's report server (compose service
# `reports`); the connector proposes the same addresses as rua= (same env file).
export DMARC_REPORT_ADDRESS="${DMARC_REPORT_ADDRESS:-dmarc-reports@$MAIL_HOSTNAME}"
export TLSRPT_REPORT_ADDRESS="tls-reports@$MAIL_HOSTNAME"
case "${TLSRPT_RUA:-}" in mailto:*) TLSRPT_REPORT_ADDRESS=${TLSRPT_RUA#mailto:} ;; esac
export REPORTS_LMTP="${REPORTS_LMTP:-inet:reports:10026}"
# ManageSieve's port inside the container (compose publishes 4190 at
# EMBOUX_PORT_MANAGESIEVE); an env file from before it existed gets 4190.
export MANAGESIEVE_PORT="${MANAGESIEVE_PORT:-4190}"
# Malformed settings stop the container here, before anything is written,
# naming the variable (a port "25x" would otherwise surface as a cryptic
# Postfix error, a left-over change-me as a failed DB login).
for v in SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT IMAP_PORT IMAPS_PORT MANAGESIEVE_PORT DB_PORT POLICYD_PORT OPENDKIM_PORT \
         VMAIL_UID VMAIL_GID MESSAGE_SIZE_LIMIT; do
    eval "val=\${$v:-}"
    case "$val" in ''|*[!0-9]*) echo "mail: $v must be a number (got '$val')" >&2; exit 64 ;; esac
done
for v in POSTFIX_DB_PASSWORD DOVECOT_DB_PASSWORD OPENDKIM_DB_PASSWORD; do
    eval "val=\${$v:-}"
    case "$val" in
        '') echo "mail: $v is not set (docker/mail.env.example)" >&2; exit 64 ;;
        change-me*) echo "mail: $v is still the example's change-me" >&2; exit 64 ;;
    esac
done
if ! printf '%s' "$MAIL_HOSTNAME" | grep -Eq '^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$'; then
    echo "mail: MAIL_HOSTNAME must be a fully qualified host name (got '$MAIL_HOSTNAME')" >&2; exit 64
fi
# The certificate of 25/587/465/143/993: the operator's files (e.g. Let's
# Encrypt's fullchain.pem/privkey.pem mounted at TLS_CERT/TLS_KEY), else a
# self-signed CA (ca.pem beside TLS_CERT: give it to clients that must
# verify) and a certificate it signs for MAIL_HOSTNAME and TLS_EXTRA_NAMES.
if [ ! -s "$TLS_CERT" ] || [ ! -s "$TLS_KEY" ]; then
    dir=$(dirname "$TLS_CERT"); mkdir -p "$dir" "$(dirname "$TLS_KEY")"
    san="DNS:$MAIL_HOSTNAME${TLS_EXTRA_NAMES:+,$TLS_EXTRA_NAMES}"
    echo "mail: no certificate at $TLS_CERT: generating a self-signed CA ($dir/ca.pem) and a certificate for $san"
    (umask 077
     openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=EmBoux self-signed CA for $MAIL_HOSTNAME" \
         -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
         -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
     openssl req -newkey rsa:2048 -nodes -subj "/CN=$MAIL_HOSTNAME" -keyout "$TLS_KEY" -out "$dir/server.csr" 2>/dev/null
     printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$dir/server.ext"
     openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
         -days 825 -extfile "$dir/server.ext" -out "$TLS_CERT" 2>/dev/null
     rm -f "$dir/server.csr" "$dir/server.ext")
    chmod 644 "$TLS_CERT" "$dir/ca.pem"
fi
sh "$APP/render.sh" "$ETC"

mkdir -p "$POSTFIX_QUEUE_DIR/private" "$POSTFIX_DATA_DIR" "$DOVECOT_BASE_DIR" "$DOVECOT_STATE_DIR" "$VMAIL_DIR"
chown root:root "$POSTFIX_QUEUE_DIR"; chmod 755 "$POSTFIX_QUEUE_DIR"
chown postfix:root "$POSTFIX_QUEUE_DIR/private"; chmod 700 "$POSTFIX_QUEUE_DIR/private"
chown postfix:postfix "$POSTFIX_DATA_DIR"
chown "$VMAIL_UID:$VMAIL_GID" "$VMAIL_DIR"
# A stale penalty socket would stall the first authentication.
rm -f "$DOVECOT_BASE_DIR/anvil-auth-penalty"

# Wait until the mail DB answers OpenDKIM's role with its view, i.e. the
# one-shot init made the roles and ran the migrations: OpenDKIM exits when
# its DB is unreachable, printing its DSN (password included) to the log.
i=0
until PGPASSWORD="$OPENDKIM_DB_PASSWORD" psql -qAt -h "$DB_HOST" -p "$DB_PORT" -U "$OPENDKIM_DB_USER" -d "$DB_NAME" \
        -c "SELECT 1 FROM mailserver.dkim_signing LIMIT 1" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $((i % 15)) -ne 1 ] || echo "mail: waiting for the mail DB ($DB_HOST:$DB_PORT/$DB_NAME as $OPENDKIM_DB_USER; see the init service)"
    [ $i -lt 300 ] || { echo "mail: the mail DB is not ready after 10 minutes" >&2; exit 75; }
    sleep 2
done

dovecot -c "$ETC/dovecot/dovecot.conf"
# Same invocation as scripts/dev/stack-identity.sh; Postfix defers mail when
# the milter is down (never sends it unsigned).
chgrp -R opendkim "$ETC/opendkim" && chmod 750 "$ETC/opendkim"
# In the deployment OpenDKIM listens on a unix socket in the opendkim-run
# volume, not on TCP: Postfix (not chrooted, in OpenDKIM's group) and the
# connector's GET /health (OPENDKIM_MILTER) reach it, and no other container
# of the network can have it sign (a milter signs whatever its client asks).
DKIM_SOCKET=/run/opendkim/opendkim.sock
mkdir -p "$(dirname "$DKIM_SOCKET")"; rm -f "$DKIM_SOCKET"
chown opendkim:opendkim "$(dirname "$DKIM_SOCKET")"; chmod 750 "$(dirname "$DKIM_SOCKET")"
id -nG postfix | grep -qw opendkim || usermod -a -G opendkim postfix
postconf -c "$ETC/postfix" -e "emboux_dkim_milter = unix:$DKIM_SOCKET"
opendkim -x "$ETC/opendkim/opendkim.conf" -p "local:$DKIM_SOCKET"
# SRS for forwarded mail (same invocation as scripts/dev/stack-mail.sh):
# port 25's cleanup asks it for every message, so it starts before Postfix.
if [ ! -s "$SRS_SECRET" ]; then
    mkdir -p "$(dirname "$SRS_SECRET")"
    (umask 077; head -c 32 /dev/urandom | base64 >"$SRS_SECRET")
fi
postsrsd -s"$SRS_SECRET" -d"$SRS_DOMAIN" -l"$SRS_HOST" -f"$SRS_FORWARD_PORT" -r"$SRS_REVERSE_PORT" \
    -unobody -4 -D
postfix -c "$ETC/postfix" check || true
exec postfix -c "$ETC/postfix" start-fg
