# Sending identity (issue 4) in the dev stack: the stand-ins for the
# third-party clouds and the local pieces the connector and Postfix use.
#   moto_server        SES (and SNS) API            SES_ENDPOINT_URL / SNS_ENDPOINT_URL
#   Mailgun stand-in   tests/standins/mailgun.py    MAILGUN_API_URL (+ MAILGUN_API_KEY)
#   SMTP capture sink  tests/standins/smtp_sink.py  OUTBOUND_SINK_PORT, OUTBOUND_SINK_DIR
#   NSD on loopback    zones written by the tests   DNS_RESOLVER, DNS_ZONES_DIR, NSD_CONF
#   OpenDKIM milter    docker/opendkim template     OPENDKIM_MILTER (a unix socket)
# Runs before stack-mail (file order): it exports EMBOUX_RELAYHOST (everything
# Postfix sends leaves through the sink; nothing leaves the machine) and
# OPENDKIM_MILTER for the Postfix templates. Logs in var/log/identity-*.log.

ID_DIR="$VAR/identity"
ID_PKGS="opendkim opendkim-tools libopendbx1-pgsql nsd libsasl2-modules"

identity_install() {
    # shellcheck disable=SC2086
    apt_install $ID_PKGS
    # A host with an init system may have started the packaged daemons.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now opendkim nsd >/dev/null 2>&1 || true
    fi
    "$VENV/bin/python" -c 'import moto, aiosmtpd, boto3, dns, cryptography' 2>/dev/null \
        || die "moto/aiosmtpd/boto3/dnspython missing in $VENV (requirements.txt)"
}

# identity_bg NAME PORT CMD...: start CMD in the background unless running.
identity_bg() {
    local name=$1 port=$2; shift 2
    if pid_alive "$name" && wait_port 127.0.0.1 "$port" 1; then return 0; fi
    pid_stop "$name"
    say "starting $name on 127.0.0.1:$port"
    setsid "$@" >>"$LOG/identity-$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    wait_port 127.0.0.1 "$port" 30 || die "$name not listening on $port (see $LOG/identity-$name.log)"
}

identity_nsd() {
    local port=$1 conf="$ID_DIR/nsd/nsd.conf"
    mkdir -p "$ID_DIR/nsd/zones"
    cat >"$conf.new" <<NSD
# NSD for the dev stack: authoritative for the zones the tests write
# (DNS_ZONES_DIR/<zone>.zone, added with nsd-control addzone <zone> emboux).
server:
    ip-address: 127.0.0.1@$port
    port: $port
    username: ""
    chroot: ""
    zonesdir: "$ID_DIR/nsd/zones"
    zonelistfile: "$ID_DIR/nsd/zone.list"
    database: ""
    pidfile: "$ID_DIR/nsd/nsd.pid"
    xfrdfile: "$ID_DIR/nsd/xfrd.state"
    xfrdir: "$ID_DIR/nsd"
    logfile: "$LOG/identity-nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
    # No response-rate limiting: every client of this server is the stack on
    # loopback. NSD's default (200 answers a second per client) answered the
    # stack's Rspamd with truncated replies under load; Rspamd 3.4 then asks
    # again over TCP, and its resolver busy-loops on such a connection for
    # minutes (docs/inbound.md "DNS for Rspamd").
    rrl-ratelimit: 0
remote-control:
    control-enable: yes
    control-interface: "$ID_DIR/nsd/nsd.sock"
pattern:
    name: "emboux"
    zonefile: "%s.zone"
NSD
    if ! cmp -s "$conf" "$conf.new"; then mv "$conf.new" "$conf"; pid_stop nsd; else rm -f "$conf.new"; fi
    if pid_alive nsd && wait_port 127.0.0.1 "$port" 1; then return 0; fi
    say "starting NSD (DNS) on 127.0.0.1:$port"
    nsd-checkconf "$conf" || die "bad $conf"
    nsd -c "$conf" >>"$LOG/identity-nsd.log" 2>&1 || die "NSD did not start (see $LOG/identity-nsd.log)"
    local i
    for i in $(seq 1 50); do [ -s "$ID_DIR/nsd/nsd.pid" ] && break; sleep 0.1; done
    cat "$ID_DIR/nsd/nsd.pid" >"$RUN/nsd.pid"
    wait_port 127.0.0.1 "$port" 10 || die "NSD not listening on $port"
}

identity_opendkim() {
    local port=$1 etc="$ID_DIR/etc"
    # The same templates as production (docker/render.sh), with the mail
    # stack's settings (mail_vars from stack-mail.sh): DB address and
    # OpenDKIM's own role (MAILDB_OPENDKIM_DSN: it reads the DKIM views only).
    ( mail_vars; rm -rf "$etc.new"; sh "$ROOT/docker/render.sh" "$etc.new" opendkim >/dev/null ) \
        || die "rendering the OpenDKIM template failed"
    chgrp -R opendkim "$etc.new/opendkim"; chmod 750 "$etc.new/opendkim"
    local changed=0
    diff -r "$etc/opendkim" "$etc.new/opendkim" >/dev/null 2>&1 || changed=1
    rm -rf "$etc"; mv "$etc.new" "$etc"
    [ $changed -eq 1 ] && pid_stop opendkim
    # A unix socket, as in production (docker/entrypoint.sh): over TCP,
    # cleanup's header-by-header milter writes met Nagle's algorithm and the
    # milter's delayed ACK, about 90 ms per signed message (issue 15,
    # bench/mailpath.py); over the socket signing costs about 4 ms. Postfix
    # reaches it as a member of OpenDKIM's group.
    local sock="$ID_DIR/run/opendkim.sock"
    id -nG postfix | grep -qw opendkim || usermod -a -G opendkim postfix
    if pid_alive opendkim && [ -S "$sock" ]; then return 0; fi
    pid_stop opendkim
    mkdir -p "$ID_DIR/run"; rm -f "$sock"
    chown opendkim:opendkim "$ID_DIR/run"; chmod 750 "$ID_DIR/run"
    say "starting opendkim on $sock"
    setsid opendkim -f -x "$etc/opendkim/opendkim.conf" -p "local:$sock" >>"$LOG/identity-opendkim.log" 2>&1 </dev/null &
    echo $! >"$RUN/opendkim.pid"
    local i
    for i in $(seq 1 300); do [ -S "$sock" ] && return 0; sleep 0.1; done
    die "opendkim not listening on $sock (see $LOG/identity-opendkim.log)"
}

stack_identity_up() {
    identity_install
    mkdir -p "$ID_DIR"
    local ses mg sink dns dkim
    ses=$(env_port SES_STANDIN_PORT 8624)
    mg=$(env_port MAILGUN_STANDIN_PORT 8625)
    sink=$(env_port OUTBOUND_SINK_PORT 2526)
    dns=$(env_port DNS_PORT 8653)
    dkim=$(env_port OPENDKIM_PORT 8891)
    # Settings the connector reads (./dev restarts it when they change).
    env_set SES_ENDPOINT_URL "http://127.0.0.1:$ses"
    env_set SNS_ENDPOINT_URL "http://127.0.0.1:$ses"
    env_set SES_REGION us-east-1
    env_set SES_ACCESS_KEY_ID AKIAEMBOUXDEVSTANDIN
    env_secret SES_SECRET_ACCESS_KEY 30 >/dev/null
    env_set SES_SMTP_RELAY "[127.0.0.1]:$sink"
    env_set MAILGUN_API_URL "http://127.0.0.1:$mg"
    env_secret MAILGUN_API_KEY 24 >/dev/null
    env_secret MAILGUN_WEBHOOK_SIGNING_KEY 32 >/dev/null
    env_set MAILGUN_WEBHOOK_URL "$(env_get EMBOUX_API_URL)/webhooks/mailgun"
    env_set MAILGUN_SMTP_RELAY "[127.0.0.1]:$sink"
    env_set SNS_TOPIC_ARNS "arn:aws:sns:us-east-1:123456789012:emboux-ses-feedback"
    env_set OUTBOUND_SINK_DIR "$ID_DIR/sink"
    env_set DNS_RESOLVER "127.0.0.1:$dns"
    env_set DNS_ZONES_DIR "$ID_DIR/nsd/zones"
    env_set NSD_CONF "$ID_DIR/nsd/nsd.conf"
    env_set MX_HOST "${EMBOUX_MAIL_HOSTNAME:-mail.emboux.test}"
    # Postfix (rendered by stack-mail, which runs after this part): local
    # domains and everything else relay to the sink; OpenDKIM's address.
    export EMBOUX_RELAYHOST="[127.0.0.1]:$sink" OPENDKIM_PORT="$dkim"
    export OPENDKIM_CONFIG_DIR="$ID_DIR/etc/opendkim"
    export OPENDKIM_MILTER="unix:$ID_DIR/run/opendkim.sock"   # main.cf's emboux_dkim_milter
    env_set OPENDKIM_CONFIG_DIR "$OPENDKIM_CONFIG_DIR"
    env_set OPENDKIM_MILTER "$OPENDKIM_MILTER"   # GET /health probes it

    identity_bg moto "$ses" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$ses"
    identity_bg mailgun "$mg" "$VENV/bin/python" "$ROOT/tests/standins/mailgun.py" \
        --port "$mg" --api-key "$(env_get MAILGUN_API_KEY)"
    identity_bg sink "$sink" "$VENV/bin/python" "$ROOT/tests/standins/smtp_sink.py" \
        --port "$sink" --dir "$ID_DIR/sink"
    identity_nsd "$dns"
    identity_opendkim "$dkim"
}

stack_identity_down() {
    local n
    for n in opendkim nsd sink mailgun moto; do pid_stop "$n"; done
}

stack_identity_status() {
    local n s=""
    for n in moto mailgun sink nsd opendkim; do
        if pid_alive "$n"; then s="$s $n:up"; else s="$s $n:down"; fi
    done
    echo "  identity        SES $(env_get SES_ENDPOINT_URL), Mailgun $(env_get MAILGUN_API_URL), sink 127.0.0.1:$(env_get OUTBOUND_SINK_PORT), DNS $(env_get DNS_RESOLVER), OpenDKIM $(env_get OPENDKIM_MILTER)  ($s )"
}
