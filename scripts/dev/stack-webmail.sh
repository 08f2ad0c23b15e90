# Webmail of the dev stack (issue 13): Debian's Roundcube, served by Apache
# (apache2-bin + mod_php, our own self-contained configuration) on loopback.
# It logs in against the dev Dovecot (IMAP + STARTTLS), sends through the
# dev Postfix's submission service with the user's credentials, and changes
# a mailbox's password through the connector (POST /mailbox/password). Its
# own small state (sessions, contacts, preferences) is an SQLite file; it
# never touches the mail DB.
#   stack_webmail_up / stack_webmail_down / stack_webmail_status (see ./dev)
# Layout (all under var/; /etc/roundcube is only read for Debian's defaults):
#   var/webmail/etc       config.inc.php + apache2.conf, from docker/webmail/ (docker/render.sh)
#   var/webmail/db        roundcube.sqlite (Roundcube's own DB)
#   var/webmail/temp      uploads, PHP sessions' scratch
#   var/log/webmail/      Roundcube's logs; var/log/webmail-{error,access}.log Apache's
# var/dev.env gets WEBMAIL_URL (and WEBMAIL_PORT).

WEBMAIL_DIR="$VAR/webmail"
WEBMAIL_ETC="$WEBMAIL_DIR/etc"
# libapache2-mod-php rather than php-fpm: one process to run, and Debian's
# roundcube-core (via `php`) pulls it in anyway.
WEBMAIL_PKGS="roundcube roundcube-core roundcube-plugins roundcube-sqlite3 apache2-bin libapache2-mod-php media-types"

# chromium: the webmail's browser tests (tests/webmail) drive Debian's, with
# Playwright from requirements.txt (which never downloads browsers of its own)
webmail_install() { apt_install $WEBMAIL_PKGS chromium; }

webmail_php_module() { ls /usr/lib/apache2/modules/libphp*.so 2>/dev/null | head -n1; }

# ManageSieve is offered only when the dev Dovecot serves it (MANAGESIEVE_PORT
# in var/dev.env, with Debian's dovecot-managesieved installed).
webmail_sieve_port() {
    local port; port=$(env_get MANAGESIEVE_PORT)
    [ -n "$port" ] && dpkg-query -W -f='${Status}' dovecot-managesieved 2>/dev/null | grep -q 'install ok installed' \
        && printf '%s' "$port"
}

webmail_vars() {
    local port sieve
    port=$(env_port WEBMAIL_PORT 8680)
    sieve=$(webmail_sieve_port || true)
    export WEBMAIL_LISTEN="127.0.0.1:$port" WEBMAIL_SERVER_NAME=127.0.0.1 WEBMAIL_WORKERS=24
    export WEBMAIL_RUN_DIR="$WEBMAIL_DIR/run" WEBMAIL_CONFIG_DIR="$WEBMAIL_ETC"
    export WEBMAIL_DB="$WEBMAIL_DIR/db/roundcube.sqlite" WEBMAIL_TEMP_DIR="$WEBMAIL_DIR/temp"
    export WEBMAIL_LOG_DRIVER=file WEBMAIL_LOG_DIR="$LOG/webmail"
    export WEBMAIL_ERROR_LOG="$LOG/webmail-error.log" WEBMAIL_ACCESS_LOG="$LOG/webmail-access.log"
    export WEBMAIL_PHP_MODULE; WEBMAIL_PHP_MODULE=$(webmail_php_module)
    [ -n "$WEBMAIL_PHP_MODULE" ] || die "no PHP module for Apache in /usr/lib/apache2/modules (libapache2-mod-php)"
    export MAIL_HOSTNAME; MAIL_HOSTNAME=$(env_get MAIL_HOSTNAME)
    export WEBMAIL_IMAP_URI="tls://127.0.0.1:$(env_get IMAP_PORT)"
    export WEBMAIL_SMTP_URI="tls://127.0.0.1:$(env_get SUBMISSION_PORT)"
    export WEBMAIL_SIEVE_URI="tls://127.0.0.1:${sieve:-4190}"
    export WEBMAIL_TLS_CA; WEBMAIL_TLS_CA=$(env_get MAIL_TLS_CERT)   # the dev stack's self-signed certificate
    export WEBMAIL_PASSWORD_API; WEBMAIL_PASSWORD_API=$(env_get EMBOUX_API_URL)
    export WEBMAIL_DES_KEY; WEBMAIL_DES_KEY=$(env_secret WEBMAIL_DES_KEY 18)   # 24 characters
    export WEBMAIL_PRODUCT_NAME="EmBoux Webmail" WEBMAIL_USE_HTTPS=false
    if [ -n "$sieve" ]; then WEBMAIL_PLUGINS="['password', 'managesieve']"; else WEBMAIL_PLUGINS="['password']"; fi
    export WEBMAIL_PLUGINS
    [ -n "$MAIL_HOSTNAME" ] && [ -n "$WEBMAIL_TLS_CA" ] && [ -n "$WEBMAIL_PASSWORD_API" ] \
        || die "MAIL_HOSTNAME / MAIL_TLS_CERT / EMBOUX_API_URL missing in $ENV_FILE (the mail stack must be up first)"
}

webmail_dirs() {
    mkdir -p "$WEBMAIL_ETC" "$WEBMAIL_RUN_DIR" "$WEBMAIL_DIR/db" "$WEBMAIL_TEMP_DIR" "$WEBMAIL_LOG_DIR"
    chown www-data:www-data "$WEBMAIL_DIR/db" "$WEBMAIL_TEMP_DIR" "$WEBMAIL_LOG_DIR"
    chmod 750 "$WEBMAIL_DIR/db" "$WEBMAIL_TEMP_DIR" "$WEBMAIL_LOG_DIR"
    # Debian's defaults beside our config.inc.php (Roundcube reads both from one directory)
    ln -sfn /etc/roundcube/defaults.inc.php "$WEBMAIL_ETC/defaults.inc.php"
    ln -sfn /etc/roundcube/mimetypes.php "$WEBMAIL_ETC/mimetypes.php"
}

# Render into a temporary directory; swap the files in only when they
# changed. Sets WEBMAIL_CHANGED=1 then.
webmail_render() {
    local tmp="$WEBMAIL_DIR/etc.new" f
    rm -rf "$tmp"
    sh "$ROOT/docker/render.sh" "$tmp" webmail || die "rendering docker/webmail templates failed"
    WEBMAIL_CHANGED=
    for f in config.inc.php apache2.conf; do
        if ! cmp -s "$tmp/webmail/$f" "$WEBMAIL_ETC/$f"; then
            install -m 640 -o root -g www-data "$tmp/webmail/$f" "$WEBMAIL_ETC/$f"
            WEBMAIL_CHANGED=1
        fi
    done
    rm -rf "$tmp"
}

# Roundcube's own schema: its SQLite driver creates it in an empty file on
# first connection; Roundcube's updatedb brings an older one up to date.
webmail_db() {
    [ -s "$WEBMAIL_DB" ] || say "creating Roundcube's database $WEBMAIL_DB"
    runuser -u www-data -- env ROUNDCUBE_CONFIG_DIR="$WEBMAIL_ETC" /usr/share/roundcube/bin/updatedb.sh \
        --package=roundcube --dir=/usr/share/roundcube/SQL >>"$LOG/webmail-setup.log" 2>&1 \
        || die "Roundcube's database could not be created or upgraded (see $LOG/webmail-setup.log)"
    [ -s "$WEBMAIL_DB" ] || die "Roundcube's database $WEBMAIL_DB is empty (see $LOG/webmail-setup.log)"
}

webmail_pid() { cat "$WEBMAIL_RUN_DIR/apache2.pid" 2>/dev/null; }
webmail_track() {
    local pid; pid=$(webmail_pid)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid" >"$RUN/webmail.pid"; return 0; fi
    rm -f "$RUN/webmail.pid"; return 1
}

webmail_http_ok() {  # the login page answers
    python3 - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    body = urllib.request.urlopen(sys.argv[1] + "/", timeout=5).read().decode("utf-8", "replace")
    sys.exit(0 if 'name="_user"' in body else 1)
except Exception:
    sys.exit(1)
EOF
}

stack_webmail_up() {
    webmail_install
    webmail_vars
    webmail_dirs
    webmail_render
    webmail_db
    local conf="$WEBMAIL_ETC/apache2.conf" url="http://$WEBMAIL_LISTEN"
    /usr/sbin/apache2 -t -f "$conf" >>"$LOG/webmail-setup.log" 2>&1 \
        || die "Apache refuses $conf (see $LOG/webmail-setup.log)"
    if webmail_track; then
        if [ -n "$WEBMAIL_CHANGED" ]; then
            say "reloading the webmail (Apache)"
            /usr/sbin/apache2 -f "$conf" -k graceful >>"$LOG/webmail-setup.log" 2>&1 || die "Apache reload failed"
        fi
    else
        say "starting the webmail (Roundcube on $url)"
        /usr/sbin/apache2 -f "$conf" -k start >>"$LOG/webmail-setup.log" 2>&1 \
            || die "Apache did not start (see $LOG/webmail-setup.log, $WEBMAIL_ERROR_LOG)"
        for _ in $(seq 1 100); do [ -s "$WEBMAIL_RUN_DIR/apache2.pid" ] && break; sleep 0.05; done
        webmail_track || die "Apache wrote no pid file (see $WEBMAIL_ERROR_LOG)"
    fi
    local i
    for i in $(seq 1 60); do webmail_http_ok "$url" && break; sleep 0.5; done
    webmail_http_ok "$url" || die "the webmail does not answer on $url (see $WEBMAIL_ERROR_LOG, $LOG/webmail/)"
    env_set WEBMAIL_URL "$url"
}

stack_webmail_down() {
    local conf="$WEBMAIL_ETC/apache2.conf" WEBMAIL_RUN_DIR="$WEBMAIL_DIR/run"
    if webmail_track; then
        say "stopping the webmail (Apache)"
        /usr/sbin/apache2 -f "$conf" -k stop >>"$LOG/webmail-setup.log" 2>&1 || true
        pid_stop webmail 10
    fi
    rm -f "$RUN/webmail.pid"
}

stack_webmail_status() {
    local url st=down WEBMAIL_RUN_DIR="$WEBMAIL_DIR/run"
    url=$(env_get WEBMAIL_URL)
    [ -n "$url" ] || return 0
    webmail_track && st=up
    echo "  webmail         $url   (Roundcube $st; a mailbox's address and password; logs $LOG/webmail/)"
}
