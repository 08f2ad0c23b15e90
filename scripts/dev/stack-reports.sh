# The report LMTP server (emboux-connector reports-lmtp, issue 14,
# docs/reports.md): Postfix hands the mail of the report addresses to it
# (docker/postfix main.cf, "DMARC and TLS-RPT reports"); it parses and stores
# DMARC aggregate and TLS-RPT reports in the mail DB.
#   stack_reports_up / stack_reports_down / stack_reports_status (see ./dev)

# Exported when ./dev is sourced: docker/render.sh (run by stack-mail, which
# comes first) puts them into main.cf. The addresses are the connector's
# defaults (settings DMARC_REPORT_ADDRESS, TLSRPT_RUA) for the dev host name.
REPORTS_LMTP_PORT=$(env_port REPORTS_LMTP_PORT 10026)
export REPORTS_LMTP="inet:127.0.0.1:$REPORTS_LMTP_PORT"
export DMARC_REPORT_ADDRESS="dmarc-reports@${EMBOUX_MAIL_HOSTNAME:-mail.emboux.test}"
export TLSRPT_REPORT_ADDRESS="tls-reports@${EMBOUX_MAIL_HOSTNAME:-mail.emboux.test}"

reports_stamp() {  # code + settings the running server was started with
    { cat "$ROOT"/connector/emboux_connector/reports.py "$ROOT"/connector/emboux_connector/reportsd.py \
          "$ROOT"/connector/emboux_connector/settings.py "$VENV/.requirements.sha"; env_get MAILDB_DSN; } 2>/dev/null \
        | sha256sum | cut -d' ' -f1
}

stack_reports_up() {
    local want; want=$(reports_stamp)
    if pid_alive reports && wait_port 127.0.0.1 "$REPORTS_LMTP_PORT" 1 \
        && [ "$(cat "$RUN/reports.sha" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    pid_stop reports
    say "starting the report LMTP server on 127.0.0.1:$REPORTS_LMTP_PORT"
    (
        set -a; . "$ENV_FILE"; set +a
        exec setsid "$VENV/bin/emboux-connector" reports-lmtp --listen "127.0.0.1:$REPORTS_LMTP_PORT" \
            </dev/null >>"$LOG/reports.log" 2>&1
    ) &
    echo $! >"$RUN/reports.pid"
    wait_port 127.0.0.1 "$REPORTS_LMTP_PORT" 15 || die "report LMTP server not listening (see $LOG/reports.log)"
    echo "$want" >"$RUN/reports.sha"
}

stack_reports_down() { pid_stop reports; rm -f "$RUN/reports.sha"; }

stack_reports_status() {
    local st=down
    pid_alive reports && st=up
    echo "  report LMTP     127.0.0.1:$REPORTS_LMTP_PORT   (DMARC/TLS-RPT reports $st; log $LOG/reports.log)"
}
