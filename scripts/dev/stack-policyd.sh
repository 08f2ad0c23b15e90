# The outbound policy daemon (emboux-policyd, connector/emboux_connector/policy):
# Postfix's submission service asks it at RCPT and END-OF-MESSAGE
# (docker/postfix/main.cf, "outbound policy"). See docs/outbound.md.
#   stack_policyd_up / stack_policyd_down / stack_policyd_status (see ./dev)

# Exported when ./dev is sourced: docker/render.sh (run by stack-mail, which
# comes first) puts them into main.cf.
export POLICYD_HOST=127.0.0.1
POLICYD_PORT=$(env_port POLICYD_PORT 10040)
export POLICYD_PORT

policyd_stamp() {  # code + settings the running daemon was started with
    { cat "$ROOT"/connector/emboux_connector/policy/*.py; env_get MAILDB_DSN; } 2>/dev/null | sha256sum | cut -d' ' -f1
}

stack_policyd_up() {
    # (its mail DB: MAILDB_DSN of var/dev.env, which has no POLICYD_DSN)
    daemon_up policyd "$(policyd_stamp)" "$POLICYD_HOST" "$POLICYD_PORT" emboux-policyd \
        "$VENV/bin/emboux-policyd" --listen "$POLICYD_HOST:$POLICYD_PORT"
}

stack_policyd_down() { daemon_down policyd; }

stack_policyd_status() {
    local st=down
    pid_alive policyd && st=up
    echo "  policy daemon   $POLICYD_HOST:$POLICYD_PORT   (emboux-policyd $st; log $LOG/policyd.log)"
}
