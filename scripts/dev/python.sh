# The project's virtualenv (connector, tests, benchmarks) from requirements.txt.

VENV="$VAR/venv"
PY="$VENV/bin/python"

py_ensure_venv() {
    local stamp="$VENV/.requirements.sha" want
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
    [ -x "$PY" ] || { say "creating virtualenv $VENV"; python3 -m venv "$VENV"; }
    want=$(cat "$ROOT/requirements.txt" "$ROOT/connector/pyproject.toml" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing Python requirements into $VENV"
        "$PY" -m pip install -q --upgrade pip >"$LOG/pip.log" 2>&1
        (cd "$ROOT" && "$PY" -m pip install -q -r requirements.txt) >>"$LOG/pip.log" 2>&1 \
            || die "pip install failed (see $LOG/pip.log)"
        echo "$want" >"$stamp"
    fi
}
