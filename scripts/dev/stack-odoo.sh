# Odoo 19 in the dev stack: the back office (addons/emboux_core, addons/emboux_saas).
#
# Odoo 19 is not on PyPI. We take Debian's `odoo-19` package (suite sid,
# Architecture: all) with a throw-away apt configuration, unpack it with
# dpkg -x into $CACHE/odoo-19/root together with the JavaScript libraries and
# fonts its web client links to (relative symlinks), and run it from its own
# virtualenv ($CACHE/odoo19-venv-<hash>) holding Odoo's Python requirements.
# Nothing is installed system-wide except libmagic1 and, for the browser test,
# Debian's chromium.
#
# ODOO_PATH=/path/to/odoo-19-checkout is honoured instead of the Debian package.
#
# var/dev.env gets ODOO_URL, ODOO_DB, ODOO_LOGIN, ODOO_PASSWORD (and ODOO_PORT).
# EMBOUX_NO_DEMO=1 skips the demo tenant, domain and mailbox (demo tenant
# "demo", domain demo.emboux.test, mailbox info@demo.emboux.test with the
# catch-all, password ODOO_DEMO_MAILBOX_PASSWORD in var/dev.env).
# Benchmark: $(ls -d ~/.cache/emboux/odoo19-venv-*)/bin/python bench/odoo_bench.py

ODOO_PREFIX="$CACHE/odoo-19/root"
ODOO_CONF="$VAR/odoo/odoo.conf"
# Odoo's data dir (filestore, per-database module stamps, the update lock)
# lives where the databases live: machine-wide, not in a checkout. A fresh
# clone reuses the cluster's databases, so it must find their filestore too.
ODOO_DATA="${EMBOUX_ODOO_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/emboux/odoo}"
ODOO_DB_ROLE=emboux_odoo
ODOO_MODULES=emboux_core,emboux_saas

# Debian packages unpacked into $ODOO_PREFIX: "package/suite".
ODOO_DEBS="odoo-19/sid fonts-montserrat/sid fonts-font-awesome/bookworm
    fonts-roboto-unhinted/bookworm fonts-ocr-b/bookworm fonts-inconsolata/bookworm
    fonts-glyphicons-halflings/bookworm libjs-jquery/bookworm
    libjs-jquery-form/bookworm libjs-underscore/bookworm"

# Odoo 19's requirements.txt (the lines for Python 3.10 to 3.13 as published on
# the 19.0 branch), except: psycopg2 -> psycopg2-binary (no compiler needed),
# greenlet unpinned (gevent 23.9.1 works with the current one), python-ldap
# left out (optional, needs libldap headers). Then what our tests need.
odoo_requirements() {
    cat <<'EOF'
asn1crypto==1.5.1 ; python_version >= '3.11'
Babel==2.10.3 ; python_version >= '3.11' and python_version < '3.13'
Babel==2.17.0 ; python_version >= '3.13'
cbor2==5.9.0
chardet==5.2.0 ; python_version >= '3.11'
cryptography==46.0.5
docutils==0.20.1 ; python_version >= '3.11'
freezegun==1.2.1 ; python_version >= '3.11' and python_version < '3.13'
freezegun==1.5.1 ; python_version >= '3.13'
geoip2==2.9.0
gevent==23.9.1 ; python_version > '3.10' and python_version < '3.12'
gevent==24.2.1 ; python_version >= '3.12' and python_version < '3.13'
gevent==24.11.1 ; python_version >= '3.13'
greenlet
idna==2.10 ; python_version < '3.12'
idna==3.6 ; python_version >= '3.12'
Jinja2==3.1.2
libsass==0.22.0
lxml==4.9.3 ; python_version < '3.12'
lxml==5.2.1 ; python_version >= '3.12'
lxml-html-clean ; python_version >= '3.12'
MarkupSafe==2.1.2 ; python_version < '3.12'
MarkupSafe==2.1.5 ; python_version >= '3.12'
num2words==0.5.10 ; python_version < '3.12'
num2words==0.5.13 ; python_version >= '3.12'
ofxparse==0.21
openpyxl==3.0.9 ; python_version < '3.12'
openpyxl==3.1.2 ; python_version >= '3.12'
passlib==1.7.4
Pillow==12.1.1
polib==1.1.1
psutil==5.9.4 ; python_version < '3.12'
psutil==5.9.8 ; python_version >= '3.12'
psycopg2-binary==2.9.5 ; python_version == '3.11'
psycopg2-binary==2.9.9 ; python_version == '3.12'
psycopg2-binary==2.9.10 ; python_version >= '3.13'
pyopenssl==26.0.0
PyPDF2==2.12.1 ; python_version < '3.13'
PyPDF==5.4.0 ; python_version >= '3.13'
pyserial==3.5
python-dateutil==2.8.2
python-magic==0.4.24 ; python_version < '3.12'
python-magic==0.4.27 ; python_version >= '3.12'
python-stdnum==1.19
pytz
pyusb==1.2.1
qrcode==7.4.2
reportlab==3.6.13 ; python_version < '3.12'
reportlab==4.1.0 ; python_version >= '3.12'
requests==2.31.0
rjsmin==1.2.0
urllib3==1.26.20 ; python_version < '3.12'
urllib3==2.6.3 ; python_version >= '3.12'
vobject==0.9.6.1
Werkzeug==2.3.8 ; python_version < '3.12'
Werkzeug==3.1.6 ; python_version >= '3.12'
xlrd==1.2.0 ; python_version < '3.12'
xlrd==2.0.1 ; python_version >= '3.12'
XlsxWriter==3.0.2 ; python_version < '3.12'
XlsxWriter==3.1.9 ; python_version >= '3.12'
xlwt==1.3.0
zeep==4.2.1 ; python_version < '3.13'
zeep==4.3.1 ; python_version >= '3.13'
# tests: pytest-odoo suite, browser test (Playwright drives Debian's chromium;
# its own browsers are never downloaded), IMAP check.
pytest>=8
pytest-odoo==2.3.0
playwright>=1.40
EOF
}

odoo_python() { python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# --- installation -----------------------------------------------------------
odoo_ensure_debs() {
    local stamp="$CACHE/odoo-19/.debs" want
    want=$(echo "$ODOO_DEBS" | tr -s ' \n' ' ')
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$ODOO_PREFIX/usr/bin/odoo" ] && return 0
    command -v dpkg-deb >/dev/null || die "dpkg-deb missing: Debian or Ubuntu is required"
    local tmp uri
    tmp=$(mktemp -d "$CACHE/odoo-apt.XXXX")
    mkdir -p "$tmp/state/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
    # Same mirror as the machine's own Debian sources; deb.debian.org otherwise.
    uri=$(sed -n 's/^URIs:[[:space:]]*\(.*debian\/\?\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | grep -v security | head -n1)
    [ -n "$uri" ] || uri=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^ ]*debian\/\?\)[[:space:]].*/\2/p' \
          /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    cat >"$tmp/odoo.sources" <<EOF
Types: deb
URIs: $uri
Suites: bookworm sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local A=(-o "Dir::Etc::SourceList=$tmp/odoo.sources" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State=$tmp/state" -o "Dir::Cache=$tmp/cache" -o "Dir::State::status=/dev/null"
             -o APT::Sandbox::User=root -o Debug::NoLocking=1)
    say "fetching Odoo 19 and its web assets from Debian ($uri, sid + bookworm)"
    apt-get "${A[@]}" update >"$LOG/odoo-apt.log" 2>&1 || die "apt-get update for Odoo failed (see $LOG/odoo-apt.log)"
    # shellcheck disable=SC2086
    (cd "$tmp/debs" && apt-get "${A[@]}" download $ODOO_DEBS) >>"$LOG/odoo-apt.log" 2>&1 \
        || die "downloading the Odoo packages failed (see $LOG/odoo-apt.log)"
    rm -rf "$ODOO_PREFIX.new"; mkdir -p "$ODOO_PREFIX.new"
    local deb
    for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$ODOO_PREFIX.new" || die "dpkg -x $deb failed"; done
    rm -rf "$ODOO_PREFIX" && mv "$ODOO_PREFIX.new" "$ODOO_PREFIX"
    rm -rf "$tmp"
    echo "$want" >"$stamp"
}

# Sets ODOO_BIN, ODOO_PYPATH (directory holding the `odoo` package), ODOO_ADDONS.
odoo_locate() {
    if [ -n "${ODOO_PATH:-}" ]; then
        [ -d "$ODOO_PATH/odoo" ] || die "ODOO_PATH=$ODOO_PATH holds no odoo/ package"
        ODOO_BIN="$ODOO_PATH/odoo-bin"; [ -f "$ODOO_BIN" ] || ODOO_BIN="$ODOO_PATH/setup/odoo"
        ODOO_PYPATH="$ODOO_PATH"
        ODOO_ADDONS="$ODOO_PATH/addons"
        [ -d "$ODOO_ADDONS" ] || ODOO_ADDONS="$ODOO_PATH/odoo/addons"
    else
        ODOO_BIN="$ODOO_PREFIX/usr/bin/odoo"
        ODOO_PYPATH="$ODOO_PREFIX/usr/lib/python3/dist-packages"
        ODOO_ADDONS="$ODOO_PYPATH/odoo/addons"
    fi
}

odoo_ensure_venv() {
    local want
    want=$( { odoo_requirements; odoo_python; } | sha256sum | cut -c1-12)
    OVENV="$CACHE/odoo19-venv-$want"
    OPY="$OVENV/bin/python"
    if [ ! -f "$OVENV/.complete" ]; then
        if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
        say "creating Odoo's virtualenv $OVENV (Odoo 19 requirements, pytest-odoo, playwright)"
        rm -rf "$OVENV"
        python3 -m venv "$OVENV" || die "venv creation failed"
        odoo_requirements >"$OVENV/requirements.txt"
        local try ok=0
        for try in 1 2 3; do  # PyPI hiccups should not fail a fresh machine
            if { "$OPY" -m pip install -q --upgrade pip && "$OPY" -m pip install -r "$OVENV/requirements.txt"; } \
                >>"$LOG/odoo-pip.log" 2>&1; then ok=1; break; fi
            warn "pip install for Odoo failed (attempt $try, see $LOG/odoo-pip.log)"; sleep 3
        done
        [ "$ok" = 1 ] || die "pip install for Odoo failed (see $LOG/odoo-pip.log)"
        touch "$OVENV/.complete"
        # older venvs of ours are dead weight
        local old; for old in "$CACHE"/odoo19-venv-*; do [ "$old" = "$OVENV" ] || rm -rf "$old"; done
    fi
    # `import odoo` from the venv (pytest-odoo, scripts), whichever Odoo is used.
    local site; site=$("$OPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$ODOO_PYPATH" >"$site/emboux-odoo.pth"
}

odoo_install() {
    apt_install libmagic1 postgresql-client
    [ -n "${ODOO_PATH:-}" ] || odoo_ensure_debs
    odoo_locate
    odoo_ensure_venv
    odoo_ensure_oca
}

# OCA modules emboux_saas depends on (recurring invoicing), pinned 19.0
# releases from PyPI, installed without their (Odoo) dependencies into Odoo's
# virtualenv: their odoo/addons/<name> joins Odoo's namespace package, so no
# addons_path entry is needed. Kept apart from odoo_requirements so that a new
# pin does not rebuild the whole virtualenv.
ODOO_OCA_ADDONS="odoo-addon-contract==19.0.1.2.1.2
    odoo-addon-contract-variable-quantity==19.0.1.0.0.8"

odoo_ensure_oca() {
    local stamp="$OVENV/.oca" want
    want=$(echo "$ODOO_OCA_ADDONS" | tr -s ' \n' ' ')
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
    say "installing the OCA modules into Odoo's virtualenv: $want"
    # shellcheck disable=SC2086
    "$OPY" -m pip install -q --no-deps $ODOO_OCA_ADDONS >>"$LOG/odoo-pip.log" 2>&1 \
        || die "pip install of the OCA modules failed (see $LOG/odoo-pip.log)"
    echo "$want" >"$stamp"
}

# --- configuration ------------------------------------------------------------
odoo_write_conf() {
    local port pw master
    port=$(env_port ODOO_PORT 8669)
    pw=$(env_secret ODOO_DB_PASSWORD 24)
    master=$(env_secret ODOO_MASTER_PASSWORD 24)
    pg_ensure_role "$ODOO_DB_ROLE" "$pw" CREATEDB
    mkdir -p "$VAR/odoo" "$ODOO_DATA"
    cat >"$ODOO_CONF.tmp" <<EOF
[options]
addons_path = $ODOO_ADDONS,$ROOT/addons
data_dir = $ODOO_DATA
db_host = $PG_HOST
db_port = $PG_PORT
db_user = $ODOO_DB_ROLE
db_password = $pw
admin_passwd = $master
http_interface = 127.0.0.1
http_port = $port
gevent_port = $((port + 3))
logfile = $LOG/odoo.log
log_level = info
workers = 0
max_cron_threads = 1
limit_time_real = 600
list_db = True
EOF
    mv "$ODOO_CONF.tmp" "$ODOO_CONF"; chmod 600 "$ODOO_CONF"
}

# odoo_run ARGS...: Odoo's CLI with our config and environment.
odoo_run() {
    EMBOUX_API_URL=$(env_get EMBOUX_API_URL) EMBOUX_API_KEY=$(env_get EMBOUX_API_KEY) \
        "$OPY" "$ODOO_BIN" "$@"
}

odoo_db_module_state() {  # odoo_db_module_state DB MODULE -> installed/uninstalled/... or empty
    pg_admin -d "$1" -c "SELECT state FROM ir_module_module WHERE name = '$2'" 2>/dev/null || true
}

# Post-install settings, run inside `odoo shell`: connector location, admin
# password, demo records. Idempotent.
odoo_post_install_script() {
    cat <<'EOF'
import os
ICP = env['ir.config_parameter'].sudo()
if os.environ.get('EMBOUX_API_URL'):
    ICP.set_param('emboux.connector_url', os.environ['EMBOUX_API_URL'])
if os.environ.get('EMBOUX_API_KEY'):
    ICP.set_param('emboux.master_token', os.environ['EMBOUX_API_KEY'])
if os.environ.get('MAIL_HOSTNAME') and not ICP.get_param('emboux.imap_host'):
    ICP.set_param('emboux.imap_host', os.environ['MAIL_HOSTNAME'])
if os.environ.get('ODOO_ADMIN_PASSWORD'):
    env.ref('base.user_admin').sudo().password = os.environ['ODOO_ADMIN_PASSWORD']
env.cr.commit()
if os.environ.get('EMBOUX_DEMO') == '1' and 'emboux.tenant' in env:
    env['emboux.tenant'].sudo()._emboux_dev_demo()
    env.cr.commit()
print('EMBOUX_POST_INSTALL_OK')
EOF
}

# What the installed modules were built from: our addons and which Odoo.
odoo_addons_hash() {
    # Relative paths: another checkout of the same addons needs no update.
    { (cd "$ROOT" && find addons -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum); echo "$ODOO_BIN"; } \
        | sha256sum | cut -c1-16
}

# odoo_prepare_db DB [demo]: create or update DB with our modules, then settings.
odoo_prepare_db() {
    local db=$1 demo=${2:-0} stamp want state
    stamp="$ODOO_DATA/.modules-$db.sha"
    want=$(odoo_addons_hash)
    state=$(odoo_db_module_state "$db" emboux_saas)
    if [ "$state" = installed ] && [ ! -d "$ODOO_DATA/filestore/$db" ]; then
        # The database outlived its filestore (data dir moved or deleted):
        # drop the compiled asset bundles, whose files are gone, so that Odoo
        # builds them again instead of serving a web client that never loads.
        say "Odoo: $db has no filestore in $ODOO_DATA: its asset bundles will be rebuilt"
        pg_admin -d "$db" -c "DELETE FROM ir_attachment WHERE url LIKE '/web/assets/%'" >/dev/null
    fi
    if [ "$state" != installed ]; then
        say "Odoo: creating database $db with $ODOO_MODULES"
        odoo_run -c "$ODOO_CONF" -d "$db" -i "$ODOO_MODULES" --stop-after-init --no-http \
            || die "Odoo could not install $ODOO_MODULES in $db (see $LOG/odoo.log)"
    elif [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "Odoo: updating $ODOO_MODULES in $db"
        odoo_run -c "$ODOO_CONF" -d "$db" -u "$ODOO_MODULES" --stop-after-init --no-http \
            || die "Odoo could not update $ODOO_MODULES in $db (see $LOG/odoo.log)"
    fi
    local out
    out=$(odoo_post_install_script | ODOO_ADMIN_PASSWORD=$(env_secret ODOO_PASSWORD 18) EMBOUX_DEMO=$demo \
        EMBOUX_DEMO_PASSWORD=$(env_secret ODOO_DEMO_MAILBOX_PASSWORD 12) MAIL_HOSTNAME=$(env_get MAIL_HOSTNAME) \
        odoo_run shell -c "$ODOO_CONF" -d "$db" --no-http 2>>"$LOG/odoo.log") || true
    grep -q EMBOUX_POST_INSTALL_OK <<<"$out" || die "Odoo post-install settings failed in $db (see $LOG/odoo.log): $out"
    echo "$want" >"$stamp"
}

odoo_http_ok() {  # odoo_http_ok URL
    "$OPY" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1] + '/web/health', timeout=3).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

# Two ./dev runs at once (two terminals, CI on a shared box) must not update
# the same database concurrently: Odoo fails with a serialization error.
odoo_lock() {
    mkdir -p "$ODOO_DATA"
    exec {ODOO_LOCK_FD}>"$ODOO_DATA/.lock"
    flock -w 900 "$ODOO_LOCK_FD" || die "another ./dev holds $ODOO_DATA/.lock"
}
odoo_unlock() { [ -n "${ODOO_LOCK_FD:-}" ] && exec {ODOO_LOCK_FD}>&- ; ODOO_LOCK_FD=; }

# --- the stack interface --------------------------------------------------------
stack_odoo_up() {
    odoo_lock
    _stack_odoo_up
    local rc=$?
    odoo_unlock
    return $rc
}

_stack_odoo_up() {
    odoo_install
    odoo_write_conf
    local db=${ODOO_DB:-$(env_get ODOO_DB)}; db=${db:-emboux}
    local demo=1; [ "${EMBOUX_NO_DEMO:-0}" = 1 ] && demo=0
    local port url; port=$(env_get ODOO_PORT); url="http://127.0.0.1:$port"
    local was_running=0
    if pid_alive odoo; then was_running=1; fi
    local stamp_before; stamp_before=$(cat "$ODOO_DATA/.modules-$db.sha" 2>/dev/null || true)
    # an update needs the server stopped (it holds the registry in memory)
    if [ "$was_running" = 1 ]; then
        local want; want=$(odoo_addons_hash)
        [ "$want" != "$stamp_before" ] && pid_stop odoo
    fi
    odoo_prepare_db "$db" "$demo"
    env_set ODOO_DB "$db"
    env_set ODOO_URL "$url"
    env_set ODOO_LOGIN admin
    env_secret ODOO_PASSWORD 18 >/dev/null
    if pid_alive odoo && odoo_http_ok "$url"; then return 0; fi
    say "starting Odoo on $url (database $db)"
    EMBOUX_API_URL=$(env_get EMBOUX_API_URL) EMBOUX_API_KEY=$(env_get EMBOUX_API_KEY) \
        nohup setsid "$OPY" "$ODOO_BIN" -c "$ODOO_CONF" -d "$db" --db-filter "^$db\$" \
        >>"$LOG/odoo.out" 2>&1 </dev/null {ODOO_LOCK_FD}>&- &   # (the server must not keep our lock)
    echo $! >"$RUN/odoo.pid"
    local i
    for i in $(seq 1 120); do
        odoo_http_ok "$url" && return 0
        pid_alive odoo || die "Odoo exited at start (see $LOG/odoo.log and $LOG/odoo.out)"
        sleep 0.5
    done
    die "Odoo does not answer on $url (see $LOG/odoo.log)"
}

stack_odoo_down() { pid_stop odoo 20; }

stack_odoo_status() {
    local url; url=$(env_get ODOO_URL)
    [ -n "$url" ] || return 0
    if pid_alive odoo; then
        echo "  Odoo            $url   (db $(env_get ODOO_DB), login $(env_get ODOO_LOGIN), password ODOO_PASSWORD in var/dev.env)"
    else
        echo "  Odoo            not running ($url)"
    fi
}

# The pytest-odoo suite of addons/*/tests, then tests_odoo/ (browser test and
# end-to-end checks against the running Odoo), against a fresh test database.
stack_odoo_test() {
    # Paths given (./dev test-odoo addons/emboux_core/tests/test_x.py tests_odoo/test_y.py):
    # only those, pytest-odoo ones and Chromium ones apart; none: every Odoo test.
    local only_unit=() only_e2e=() p
    for p in "$@"; do
        case "$p" in tests_odoo*|"$ROOT"/tests_odoo*) only_e2e+=("$p") ;; *) only_unit+=("$p") ;; esac
    done
    odoo_install
    [ -f "$ODOO_CONF" ] || odoo_write_conf
    local db; db="$(env_get ODOO_DB)_test"
    odoo_lock
    say "Odoo: fresh test database $db"
    pg_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    rm -rf "$ODOO_DATA/.modules-$db.sha" "$ODOO_DATA/filestore/$db"
    odoo_prepare_db "$db" 0   # (the lock is held until the tests are done: one test run at a time)
    set -a; . "$ENV_FILE"; set +a
    local rc=0 tests=() e2e=("$ROOT/tests_odoo") d
    for d in "$ROOT"/addons/*/tests; do [ -d "$d" ] && tests+=("$d"); done
    if [ $# -gt 0 ]; then tests=("${only_unit[@]}"); e2e=("${only_e2e[@]}"); fi
    if [ ${#tests[@]} -gt 0 ]; then
        say "running the Odoo tests (pytest-odoo, database $db)"
        (cd "$ROOT" && EMBOUX_ODOO_TEST_DB=$db "$OPY" -m pytest -p no:cacheprovider \
            --odoo-config "$ODOO_CONF" --odoo-database "$db" "${tests[@]}") || rc=$?
    fi
    if [ ${#e2e[@]} -gt 0 ] && [ -e "${e2e[0]}" ]; then
        apt_install chromium
        say "running the Odoo end-to-end tests (tests_odoo/, Chromium)"
        (cd "$ROOT" && "$OPY" -m pytest -p no:cacheprovider -p no:odoo "${e2e[@]}") || rc=$?
    fi
    odoo_unlock
    return $rc
}
