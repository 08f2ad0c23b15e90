#!/bin/sh
# Entry point of the odoo image (compose service `odoo`). Checks its settings
# (a missing or malformed one stops the service with its name in the log),
# writes odoo.conf, waits for its database (made by the one-shot init), then:
#   - a database without emboux_saas: installs emboux_core and emboux_saas;
#   - an image whose addons differ from the installed ones (an upgrade):
#     updates them (-u) before serving;
#   - every start: the connector's address and master token, the IMAP host
#     shown to users and the admin password, from the env file;
# and serves on 8069. Idempotent: a restart of the same image changes nothing.
set -eu
need() {
    for v in "$@"; do
        eval "isset=\${$v:-}"
        [ -n "$isset" ] || { echo "odoo: $v is not set (docker/mail.env.example)" >&2; exit 64; }
        case "$isset" in change-me*) echo "odoo: $v is still the example's change-me" >&2; exit 64 ;; esac
    done
}
need DB_HOST DB_PORT ODOO_DB_USER ODOO_DB_PASSWORD ODOO_DB_NAME ODOO_ADMIN_PASSWORD ODOO_MASTER_PASSWORD \
     EMBOUX_API_KEY MAIL_HOSTNAME
case "$ODOO_DB_NAME" in
    *[!a-z0-9_]*) echo "odoo: ODOO_DB_NAME must be lowercase letters, digits and _ (got '$ODOO_DB_NAME')" >&2; exit 64 ;;
esac
case "${ODOO_WORKERS:-2}" in
    ''|*[!0-9]*) echo "odoo: ODOO_WORKERS must be a number (got '$ODOO_WORKERS')" >&2; exit 64 ;;
esac
case "${ODOO_PROXY_MODE:-False}" in
    True|False) ;;
    *) echo "odoo: ODOO_PROXY_MODE must be True or False (got '$ODOO_PROXY_MODE')" >&2; exit 64 ;;
esac
[ ${#ODOO_ADMIN_PASSWORD} -ge 12 ] || { echo "odoo: ODOO_ADMIN_PASSWORD is shorter than 12 characters" >&2; exit 64; }

ODOO=/opt/odoo/root/usr/bin/odoo
PY=/opt/odoo/venv/bin/python
CONF=/var/lib/odoo/odoo.conf
DATA=/var/lib/odoo/data
mkdir -p "$DATA"
umask 077
cat >"$CONF.tmp" <<EOF
[options]
addons_path = /opt/odoo/root/usr/lib/python3/dist-packages/odoo/addons,/opt/emboux/addons
data_dir = $DATA
db_host = $DB_HOST
db_port = $DB_PORT
db_user = $ODOO_DB_USER
db_password = $ODOO_DB_PASSWORD
db_name = $ODOO_DB_NAME
dbfilter = ^$ODOO_DB_NAME\$
list_db = False
admin_passwd = $ODOO_MASTER_PASSWORD
http_interface = 0.0.0.0
http_port = 8069
gevent_port = 8072
proxy_mode = ${ODOO_PROXY_MODE:-False}
workers = ${ODOO_WORKERS:-2}
max_cron_threads = 1
limit_time_real = 600
log_level = info
EOF
mv "$CONF.tmp" "$CONF"

export PGPASSWORD="$ODOO_DB_PASSWORD"
q() { psql -qAt -h "$DB_HOST" -p "$DB_PORT" -U "$ODOO_DB_USER" -d "$ODOO_DB_NAME" "$@"; }
i=0
until q -c "SELECT 1" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $((i % 15)) -ne 1 ] || echo "odoo: waiting for its database $ODOO_DB_NAME as $ODOO_DB_USER (see the init service)"
    [ $i -lt 300 ] || { echo "odoo: its database is not ready after 10 minutes" >&2; exit 75; }
    sleep 2
done

MODULES=emboux_core,emboux_saas
export EMBOUX_API_URL="${EMBOUX_CONNECTOR_URL:-http://connector:8600}"
state=$(q -c "SELECT state FROM ir_module_module WHERE name = 'emboux_saas'" 2>/dev/null || true)
stamp="$DATA/.modules-$ODOO_DB_NAME.sha"
want=$(cat /opt/emboux/addons.sha)
if [ "$state" != installed ]; then
    echo "odoo: installing $MODULES into $ODOO_DB_NAME"
    "$PY" "$ODOO" -c "$CONF" -d "$ODOO_DB_NAME" -i "$MODULES" --without-demo=all --stop-after-init --no-http
elif [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "odoo: updating $MODULES in $ODOO_DB_NAME (new image)"
    "$PY" "$ODOO" -c "$CONF" -d "$ODOO_DB_NAME" -u "$MODULES" --stop-after-init --no-http
fi
# Settings from the env file, every start (the same as the dev stack's
# post-install step, scripts/dev/stack-odoo.sh).
out=$("$PY" "$ODOO" shell -c "$CONF" -d "$ODOO_DB_NAME" --no-http <<'PY'
import os
ICP = env['ir.config_parameter'].sudo()
ICP.set_param('emboux.connector_url', os.environ['EMBOUX_API_URL'])
ICP.set_param('emboux.master_token', os.environ['EMBOUX_API_KEY'])
if not ICP.get_param('emboux.imap_host'):
    ICP.set_param('emboux.imap_host', os.environ['MAIL_HOSTNAME'])
# the admin password only when it differs (a new hash would end the sessions)
admin = env.ref('base.user_admin').sudo()
env.cr.execute("SELECT COALESCE(password, '') FROM res_users WHERE id = %s", [admin.id])
stored = env.cr.fetchone()[0]
if not stored or not admin._crypt_context().verify(os.environ['ODOO_ADMIN_PASSWORD'], stored):
    admin.password = os.environ['ODOO_ADMIN_PASSWORD']
env.cr.commit()
print('EMBOUX_SETTINGS_OK')
PY
) || true
case "$out" in
    *EMBOUX_SETTINGS_OK*) ;;
    *) echo "odoo: applying the settings of the env file failed: $out" >&2; exit 70 ;;
esac
echo "$want" >"$stamp"
unset PGPASSWORD
exec "$PY" "$ODOO" -c "$CONF"
