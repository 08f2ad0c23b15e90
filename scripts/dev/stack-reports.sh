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
    daemon_up reports "$(reports_stamp)" 127.0.0.1 "$REPORTS_LMTP_PORT" "the report LMTP server" \
        "$VENV/bin/emboux-connector" reports-lmtp --listen "127.0.0.1:$REPORTS_LMTP_PORT"
}

stack_reports_down() { daemon_down reports; }

stack_reports_status() {
    local st=down
    pid_alive reports && st=up
    echo "  report LMTP     127.0.0.1:$REPORTS_LMTP_PORT   (DMARC/TLS-RPT reports $st; log $LOG/reports.log)"
}
