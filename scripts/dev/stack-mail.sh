# The mail server of the dev stack: private Postfix and Dovecot instances on
# loopback high ports, configured from the production templates in docker/
# (rendered by docker/render.sh) and driven live by the mail DB.
#   stack_mail_up / stack_mail_down / stack_mail_status (see ./dev)
# Layout (all under var/, nothing in /etc is used):
#   var/mail/etc/{postfix,dovecot}  rendered configuration
#   var/mail/spool                  Postfix queue (sockets to Dovecot in private/)
#   var/mail/tls                    self-signed certificate
#   var/vmail/<domain>/<local>      the mail store (EMBOUX_VMAIL_DIR to move it)
#   var/log/{postfix,dovecot}.log
#   var/mail/srs.secret             postsrsd's key (SRS for forwarded mail; var/log/postsrsd.log)

MAIL_DIR="$VAR/mail"
MAIL_ETC="$MAIL_DIR/etc"
POSTFIX_CONF_DIR="$MAIL_ETC/postfix"
DOVECOT_CONF="$MAIL_ETC/dovecot/dovecot.conf"
MAIL_PKGS="postfix postfix-pgsql dovecot-imapd dovecot-lmtpd dovecot-pgsql openssl postsrsd dovecot-sieve dovecot-managesieved"
# strace, ss: tests/mail/test_rcpt_round_trips.py counts the lookups smtpd makes per RCPT
MAIL_PKGS="$MAIL_PKGS strace iproute2"

mail_install() {
    local need=0 p
    for p in $MAIL_PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need=1
    done
    [ $need -eq 0 ] && return 0
    # Postfix asks how to configure the system instance: not at all, ours is private.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # shellcheck disable=SC2086
    apt_install $MAIL_PKGS
    # A host with an init system may have started the system instances: ours
    # are private, the system ones would only hold 25/143/993.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now dovecot postfix postsrsd >/dev/null 2>&1 || true
    fi
}

# Everything the templates need, exported for docker/render.sh.
mail_vars() {
    export POSTFIX_INET_INTERFACES=127.0.0.1 DOVECOT_LISTEN=127.0.0.1 INET_PROTOCOLS=ipv4
    export MAIL_HOSTNAME=${EMBOUX_MAIL_HOSTNAME:-mail.emboux.test}
    export SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT IMAP_PORT IMAPS_PORT
    SMTP_PORT=$(env_port SMTP_PORT 2525)
    SUBMISSION_PORT=$(env_port SUBMISSION_PORT 2587)
    IMAP_PORT=$(env_port IMAP_PORT 2143)
    # implicit TLS, as in production (465 and 993 there)
    SUBMISSIONS_PORT=$(env_port SUBMISSIONS_PORT 2465)
    IMAPS_PORT=$(env_port IMAPS_PORT 2993)
    # ManageSieve (4190 in production; STARTTLS): the webmail's managesieve
    # plugin is turned on when MANAGESIEVE_PORT is in var/dev.env.
    export MANAGESIEVE_PORT
    MANAGESIEVE_PORT=$(env_port MANAGESIEVE_PORT 24190)
    # Postfix's loopback service for Sieve's vacation replies (master.cf)
    export AUTOREPLY_PORT
    AUTOREPLY_PORT=$(env_port AUTOREPLY_PORT 10027)
    export POSTFIX_QUEUE_DIR="$MAIL_DIR/spool" POSTFIX_DATA_DIR="$MAIL_DIR/postfix-data"
    export POSTFIX_LOG="$LOG/postfix.log" POSTFIX_LOG_DIR="$LOG"
    export DOVECOT_INSTANCE=emboux-dev DOVECOT_BASE_DIR="$MAIL_DIR/dovecot-run"
    export DOVECOT_STATE_DIR="$MAIL_DIR/dovecot-state" DOVECOT_LOG="$LOG/dovecot.log"
    export DOVECOT_CONFIG_DIR="$MAIL_ETC/dovecot"
    export VMAIL_DIR=${EMBOUX_VMAIL_DIR:-$VAR/vmail} VMAIL_UID=${EMBOUX_VMAIL_UID:-5000} VMAIL_GID=${EMBOUX_VMAIL_GID:-5000}
    export TLS_CERT="$MAIL_DIR/tls/cert.pem" TLS_KEY="$MAIL_DIR/tls/key.pem"
    export MESSAGE_SIZE_LIMIT=${EMBOUX_MESSAGE_SIZE_LIMIT:-52428800} RELAYHOST=${EMBOUX_RELAYHOST:-}
    # postsrsd (SRS for forwarded mail, main.cf "forwarding"): a private
    # instance on loopback; its SRS domain is the platform's host name.
    export SRS_HOST=127.0.0.1 SRS_DOMAIN=${EMBOUX_SRS_DOMAIN:-$MAIL_HOSTNAME}
    export SRS_FORWARD_PORT SRS_REVERSE_PORT
    SRS_FORWARD_PORT=$(env_port SRS_FORWARD_PORT 10043)
    SRS_REVERSE_PORT=$(env_port SRS_REVERSE_PORT 10044)
    # The DB coordinates, from the DSNs ./dev wrote (postgresql://user:pw@host:port/db).
    # One role per server (least privilege): OpenDKIM's is used by stack-identity.sh.
    eval "$(python3 - "$(env_get MAILDB_POSTFIX_DSN)" "$(env_get MAILDB_DOVECOT_DSN)" "$(env_get MAILDB_OPENDKIM_DSN)" <<'PY'
import shlex, sys
from urllib.parse import urlsplit, unquote
for prefix, dsn in (("POSTFIX", sys.argv[1]), ("DOVECOT", sys.argv[2]), ("OPENDKIM", sys.argv[3])):
    u = urlsplit(dsn)
    vals = {f"{prefix}_DB_USER": unquote(u.username or ""), f"{prefix}_DB_PASSWORD": unquote(u.password or ""),
            "DB_HOST": u.hostname or "127.0.0.1", "DB_PORT": str(u.port or 5432), "DB_NAME": u.path.lstrip("/")}
    for k, v in vals.items():
        print(f"export {k}={shlex.quote(v)}")
PY
)"
    [ -n "$POSTFIX_DB_PASSWORD" ] && [ -n "$DOVECOT_DB_PASSWORD" ] && [ -n "$OPENDKIM_DB_PASSWORD" ] \
        || die "MAILDB_POSTFIX_DSN / MAILDB_DOVECOT_DSN / MAILDB_OPENDKIM_DSN missing in $ENV_FILE"
}

mail_cert() {
    [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] && return 0
    say "generating a self-signed certificate for $MAIL_HOSTNAME"
    mkdir -p "$(dirname "$TLS_CERT")"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$MAIL_HOSTNAME" \
        -addext "subjectAltName=DNS:$MAIL_HOSTNAME,DNS:localhost,IP:127.0.0.1" \
        -keyout "$TLS_KEY" -out "$TLS_CERT" >>"$LOG/mail-setup.log" 2>&1 || die "openssl failed (see $LOG/mail-setup.log)"
    chmod 600 "$TLS_KEY"; chmod 644 "$TLS_CERT"
}

# Render into a fresh directory and swap it in. Sets MAIL_CHANGED to the
# parts whose files changed (e.g. "postfix dovecot"), so only those reload.
mail_render() {
    local tmp="$MAIL_DIR/etc.new" part
    rm -rf "$tmp"
    sh "$ROOT/docker/render.sh" "$tmp" || die "rendering docker/ templates failed"
    mail_unfiltered_service "$tmp/postfix/master.cf"
    MAIL_CHANGED=""
    for part in postfix dovecot; do
        if [ -d "$MAIL_ETC/$part" ] && diff -r "$MAIL_ETC/$part" "$tmp/$part" >/dev/null 2>&1 \
            && [ "$(cd "$MAIL_ETC/$part" && find . -printf '%m %g %p\n' | sort)" = "$(cd "$tmp/$part" && find . -printf '%m %g %p\n' | sort)" ]; then
            continue
        fi
        MAIL_CHANGED="$MAIL_CHANGED $part"
    done
    if diff -r "$MAIL_ETC" "$tmp" >/dev/null 2>&1 && [ -z "$MAIL_CHANGED" ]; then rm -rf "$tmp"; return 0; fi
    rm -rf "$MAIL_ETC.old"; [ -d "$MAIL_ETC" ] && mv "$MAIL_ETC" "$MAIL_ETC.old"
    mv "$tmp" "$MAIL_ETC"; rm -rf "$MAIL_ETC.old"
}

# Dev stack only, for bench/mailpath.py (issues 15 and 17): copies of the
# inbound and submission services on loopback (SMTP_UNFILTERED_PORT,
# SUBMISSION_UNFILTERED_PORT) with the same options and no content milter
# (submission keeps OpenDKIM), so one run can compare mail with and without
# Rspamd on the same Postfix. Everything else -- lookups, the RCPT verdict,
# quota, AUTH, the policy daemon, SRS, LMTP -- is the original's. Never
# rendered into the deployment (docker/postfix/master.cf): there every
# message is scanned.
mail_unfiltered_service() {  # mail_unfiltered_service RENDERED_MASTER_CF
    local smtp sub
    smtp=$(env_port SMTP_UNFILTERED_PORT 2527)
    sub=$(env_port SUBMISSION_UNFILTERED_PORT 2588)
    awk -v smtp="$SMTP_PORT" -v subm="$SUBMISSION_PORT" -v smtp_copy="$smtp" -v sub_copy="$sub" '
        function copy_of(port) {
            return "# bench/mailpath.py only (scripts/dev/stack-mail.sh): port " port " without the content milter\n" \
                   "127.0.0.1:" (port == smtp ? smtp_copy : sub_copy) " inet n - n - - smtpd\n"
        }
        { print }
        copying && /^[ \t]+-o/ { block[copying] = block[copying] $0 "\n"; next }
        { copying = "" }
        $1 == smtp && $2 == "inet" { copying = "smtp"; block["smtp"] = copy_of(smtp) }
        $1 == subm && $2 == "inet" { copying = "sub"; block["sub"] = copy_of(subm) }
        END {
            if (!("smtp" in block) || !("sub" in block)) exit 1
            printf "%s  -o syslog_name=postfix/smtpd-unfiltered\n  -o smtpd_milters=\n", block["smtp"]
            printf "%s  -o syslog_name=postfix/submission-unfiltered\n  -o smtpd_milters=$emboux_dkim_milter\n", block["sub"]
        }' "$1" >"$1.new" || die "no inbound or submission service in $1"
    mv "$1.new" "$1"
}

mail_dirs() {
    # The queue directory: root-owned, 755, every parent o+x (postfix-script checks).
    mkdir -p "$POSTFIX_QUEUE_DIR" "$POSTFIX_DATA_DIR" "$DOVECOT_BASE_DIR" "$DOVECOT_STATE_DIR" "$VMAIL_DIR"
    chown root:root "$POSTFIX_QUEUE_DIR"; chmod 755 "$POSTFIX_QUEUE_DIR" "$MAIL_DIR"
    chown postfix:postfix "$POSTFIX_DATA_DIR"
    # Dovecot puts its sockets for Postfix here before Postfix first starts.
    mkdir -p "$POSTFIX_QUEUE_DIR/private"; chown postfix:root "$POSTFIX_QUEUE_DIR/private"; chmod 700 "$POSTFIX_QUEUE_DIR/private"
    chown "$VMAIL_UID:$VMAIL_GID" "$VMAIL_DIR"; chmod 770 "$VMAIL_DIR"
    touch "$POSTFIX_LOG" "$DOVECOT_LOG"
}

# postsrsd: started before Postfix (port 25's cleanup asks it for every
# message), restarted when its domain changed.
SRS_SECRET="$MAIL_DIR/srs.secret"
srs_up() {
    local want="$SRS_DOMAIN $SRS_FORWARD_PORT $SRS_REVERSE_PORT"
    if pid_alive postsrsd && [ "$(cat "$RUN/postsrsd.conf" 2>/dev/null)" = "$want" ]; then return 0; fi
    pid_stop postsrsd
    if [ ! -s "$SRS_SECRET" ]; then
        (umask 077; head -c 32 /dev/urandom | base64 >"$SRS_SECRET")
    fi
    say "starting postsrsd (SRS domain $SRS_DOMAIN, 127.0.0.1:$SRS_FORWARD_PORT/$SRS_REVERSE_PORT)"
    postsrsd -s"$SRS_SECRET" -d"$SRS_DOMAIN" -l"$SRS_HOST" -f"$SRS_FORWARD_PORT" -r"$SRS_REVERSE_PORT" \
        -unobody -4 -p"$RUN/postsrsd.pid" -D >>"$LOG/postsrsd.log" 2>&1 || die "postsrsd did not start (see $LOG/postsrsd.log)"
    wait_port "$SRS_HOST" "$SRS_FORWARD_PORT" 10 && wait_port "$SRS_HOST" "$SRS_REVERSE_PORT" 5 \
        || die "postsrsd not listening (see $LOG/postsrsd.log)"
    echo "$want" >"$RUN/postsrsd.conf"
    env_set SRS_DOMAIN "$SRS_DOMAIN"
}

postfix_pid() { sed 's/ //g' "$POSTFIX_QUEUE_DIR/pid/master.pid" 2>/dev/null; }
dovecot_pid() { cat "$DOVECOT_BASE_DIR/master.pid" 2>/dev/null; }
# Running or not, as the servers' own PID files say (they may have been
# restarted by hand); keeps $RUN/<name>.pid in step for pid_alive/pid_stop.
mail_track() {  # mail_track postfix|dovecot
    local pid; pid=$("${1}_pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid" >"$RUN/$1.pid"; return 0; fi
    rm -f "$RUN/$1.pid"; return 1
}

stack_mail_up() {
    mail_install
    mail_vars
    mail_cert
    mail_dirs
    mail_render
    srs_up
    # Dovecot first: Postfix delivers to its LMTP socket.
    if mail_track dovecot && [ ! -S "$DOVECOT_BASE_DIR/anvil-auth-penalty" ]; then
        # started by a stack that had the failed-login penalty off: a reload
        # does not bring anvil's listener back
        say "restarting Dovecot (failed-login penalty listener)"
        doveadm -c "$DOVECOT_CONF" stop >>"$LOG/mail-setup.log" 2>&1 || true
        pid_stop dovecot 15
        rm -f "$RUN/dovecot.pid"
    fi
    if mail_track dovecot; then
        case " $MAIL_CHANGED " in *" dovecot "*) say "reloading Dovecot"; doveadm -c "$DOVECOT_CONF" reload ;; esac
    else
        say "starting Dovecot (IMAP 127.0.0.1:$IMAP_PORT)"
        # A stale penalty socket would stall the first authentication.
        rm -f "$DOVECOT_BASE_DIR/anvil-auth-penalty"
        dovecot -c "$DOVECOT_CONF" >>"$LOG/mail-setup.log" 2>&1 || die "Dovecot did not start (see $LOG/mail-setup.log, $DOVECOT_LOG)"
        wait_port 127.0.0.1 "$IMAP_PORT" 15 || die "Dovecot not listening on $IMAP_PORT (see $DOVECOT_LOG)"
        # Dovecot may listen a moment before it writes master.pid (seen once:
        # an empty cat under set -e ended ./dev up without a word).
        for _ in $(seq 1 100); do [ -s "$DOVECOT_BASE_DIR/master.pid" ] && break; sleep 0.05; done
        dovecot_pid >"$RUN/dovecot.pid" || die "Dovecot wrote no master.pid (see $DOVECOT_LOG)"
    fi
    if mail_track postfix; then
        case " $MAIL_CHANGED " in *" postfix "*) say "reloading Postfix"; postfix -c "$POSTFIX_CONF_DIR" reload >>"$LOG/mail-setup.log" 2>&1 ;; esac
    else
        say "starting Postfix (SMTP 127.0.0.1:$SMTP_PORT, submission 127.0.0.1:$SUBMISSION_PORT)"
        postfix -c "$POSTFIX_CONF_DIR" check >>"$LOG/mail-setup.log" 2>&1 || true
        postfix -c "$POSTFIX_CONF_DIR" start >>"$LOG/mail-setup.log" 2>&1 || die "Postfix did not start (see $LOG/mail-setup.log, $POSTFIX_LOG)"
        wait_port 127.0.0.1 "$SMTP_PORT" 15 || die "Postfix not listening on $SMTP_PORT (see $POSTFIX_LOG)"
        postfix_pid >"$RUN/postfix.pid"
    fi
    wait_port 127.0.0.1 "$SUBMISSION_PORT" 5 || die "Postfix not listening on $SUBMISSION_PORT (see $POSTFIX_LOG)"
    wait_port 127.0.0.1 "$SUBMISSIONS_PORT" 5 || die "Postfix not listening on $SUBMISSIONS_PORT (see $POSTFIX_LOG)"
    wait_port 127.0.0.1 "$IMAPS_PORT" 15 || die "Dovecot not listening on $IMAPS_PORT (see $DOVECOT_LOG)"
    wait_port 127.0.0.1 "$MANAGESIEVE_PORT" 15 || die "Dovecot not listening on ManageSieve $MANAGESIEVE_PORT (see $DOVECOT_LOG)"

    # Where the mail server is, for the tests, Odoo and the connector
    # (emboux_connector/mailserver.py reads these).
    env_set SMTP_HOST 127.0.0.1
    env_set IMAP_HOST 127.0.0.1
    env_set MAIL_HOSTNAME "$MAIL_HOSTNAME"
    env_set DOVECOT_CONFIG "$DOVECOT_CONF"
    env_set POSTFIX_CONFIG_DIR "$POSTFIX_CONF_DIR"
    env_set POSTFIX_QUEUE_DIR "$POSTFIX_QUEUE_DIR"   # queue depth in GET /health
    env_set VMAIL_DIR "$VMAIL_DIR"
    env_set MAIL_TLS_CERT "$TLS_CERT"
}

stack_mail_down() {
    mail_vars >/dev/null 2>&1 || true
    if mail_track postfix; then
        say "stopping Postfix"
        postfix -c "$POSTFIX_CONF_DIR" stop >>"$LOG/mail-setup.log" 2>&1 || true
        pid_stop postfix 10
    fi
    rm -f "$RUN/postfix.pid"
    if mail_track dovecot; then
        say "stopping Dovecot"
        doveadm -c "$DOVECOT_CONF" stop >>"$LOG/mail-setup.log" 2>&1 || true
        # Dovecot stops asynchronously (a few seconds): wait for its master.
        pid_stop dovecot 15
    fi
    rm -f "$RUN/dovecot.pid"
    pid_stop postsrsd; rm -f "$RUN/postsrsd.conf"
}

stack_mail_status() {
    local pf=down dv=down
    local POSTFIX_QUEUE_DIR="$MAIL_DIR/spool" DOVECOT_BASE_DIR="$MAIL_DIR/dovecot-run"
    mail_track postfix && pf=up
    mail_track dovecot && dv=up
    echo "  SMTP (MX)       $(env_get SMTP_HOST):$(env_get SMTP_PORT)   (Postfix $pf; log $LOG/postfix.log)"
    echo "  SMTP submission $(env_get SMTP_HOST):$(env_get SUBMISSION_PORT)   (STARTTLS + AUTH)"
    echo "  submissions     $(env_get SMTP_HOST):$(env_get SUBMISSIONS_PORT)   (implicit TLS + AUTH; CA: MAIL_TLS_CERT)"
    echo "  IMAP            $(env_get IMAP_HOST):$(env_get IMAP_PORT)   (Dovecot $dv; log $LOG/dovecot.log)"
    echo "  IMAPS           $(env_get IMAP_HOST):$(env_get IMAPS_PORT)   (implicit TLS)"
    echo "  ManageSieve     $(env_get IMAP_HOST):$(env_get MANAGESIEVE_PORT)   (STARTTLS; the mailbox's Sieve filters)"
    echo "  mail store      $(env_get VMAIL_DIR)"
}
