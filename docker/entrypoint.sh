#!/bin/sh
# Entry point of the EmBoux mail container: render the templates (the same
# ones ./dev up renders), then run Dovecot, OpenDKIM (the DKIM signer of
# submitted mail, keys from the mail DB) and Postfix in the foreground.
# Settings: docker/mail.env.example. Untested here (no Docker engine on the
# dev machines); every configuration file it renders is the tested one.
set -eu
APP=/opt/emboux-mail
ETC=/etc/emboux-mail

# Fixed container paths.
export POSTFIX_QUEUE_DIR=/var/spool/postfix POSTFIX_DATA_DIR=/var/lib/postfix
export POSTFIX_LOG=/dev/stdout POSTFIX_LOG_DIR=/dev/stdout
export DOVECOT_INSTANCE=emboux DOVECOT_BASE_DIR=/run/dovecot DOVECOT_STATE_DIR=/var/lib/dovecot
export DOVECOT_LOG=/dev/stderr DOVECOT_CONFIG_DIR=$ETC/dovecot

if [ ! -s "$TLS_CERT" ] || [ ! -s "$TLS_KEY" ]; then
    mkdir -p "$(dirname "$TLS_CERT")" "$(dirname "$TLS_KEY")"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$MAIL_HOSTNAME" \
        -addext "subjectAltName=DNS:$MAIL_HOSTNAME" -keyout "$TLS_KEY" -out "$TLS_CERT"
fi
sh "$APP/render.sh" "$ETC"

mkdir -p "$POSTFIX_QUEUE_DIR/private" "$POSTFIX_DATA_DIR" "$DOVECOT_BASE_DIR" "$DOVECOT_STATE_DIR" "$VMAIL_DIR"
chown root:root "$POSTFIX_QUEUE_DIR"; chmod 755 "$POSTFIX_QUEUE_DIR"
chown postfix:root "$POSTFIX_QUEUE_DIR/private"; chmod 700 "$POSTFIX_QUEUE_DIR/private"
chown postfix:postfix "$POSTFIX_DATA_DIR"
chown "$VMAIL_UID:$VMAIL_GID" "$VMAIL_DIR"
# A stale penalty socket would stall the first authentication.
rm -f "$DOVECOT_BASE_DIR/anvil-auth-penalty"

dovecot -c "$ETC/dovecot/dovecot.conf"
# Same invocation as scripts/dev/stack-identity.sh; Postfix defers mail when
# the milter is down (never sends it unsigned).
chgrp -R opendkim "$ETC/opendkim" && chmod 750 "$ETC/opendkim"
opendkim -x "$ETC/opendkim/opendkim.conf"
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
