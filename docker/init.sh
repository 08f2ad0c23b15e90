#!/bin/sh
# One-shot init of the deployment (compose service `init`): the mail DB's
# roles exactly as scripts/dev/postgres.sh makes them for the dev stack --
# the connector's owner role `emboux`, one read-only group per mail server
# (emboux_mail_postfix / _dovecot / _opendkim, granted their views by the
# migrations) and one login role in each; Odoo's role and database -- then
# `emboux-connector migrate`.
# Idempotent: every start re-applies the passwords of the env file and
# applies only new migrations (an upgrade is: new images, then `up`).
set -eu
need() {
    for v in "$@"; do
        eval "isset=\${$v:-}"
        [ -n "$isset" ] || { echo "init: $v is not set (docker/mail.env.example)" >&2; exit 64; }
        case "$isset" in change-me*) echo "init: $v is still the example's change-me" >&2; exit 64 ;; esac
    done
}
need POSTGRES_PASSWORD MAILDB_PASSWORD POSTFIX_DB_USER POSTFIX_DB_PASSWORD DOVECOT_DB_USER \
     DOVECOT_DB_PASSWORD OPENDKIM_DB_USER OPENDKIM_DB_PASSWORD DB_HOST DB_PORT DB_NAME \
     ODOO_DB_USER ODOO_DB_PASSWORD ODOO_DB_NAME
# Every service depends on this one: it checks the settings of all of them
# first (each service checks its own again at start), so that a bad env file
# stops the deployment before anything is created -- no half-started stack.
need EMBOUX_API_KEY MAIL_HOSTNAME ODOO_ADMIN_PASSWORD ODOO_MASTER_PASSWORD
for v in DB_PORT SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT IMAP_PORT IMAPS_PORT POLICYD_PORT OPENDKIM_PORT \
         VMAIL_UID VMAIL_GID MESSAGE_SIZE_LIMIT; do
    eval "val=\${$v:-}"
    case "$val" in ''|*[!0-9]*) echo "init: $v must be a number (got '$val')" >&2; exit 64 ;; esac
done
printf '%s' "$MAIL_HOSTNAME" | grep -Eq '^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$' \
    || { echo "init: MAIL_HOSTNAME must be a fully qualified host name (got '$MAIL_HOSTNAME')" >&2; exit 64; }
[ ${#EMBOUX_API_KEY} -ge 16 ] || { echo "init: EMBOUX_API_KEY is shorter than 16 characters" >&2; exit 64; }
[ ${#ODOO_ADMIN_PASSWORD} -ge 12 ] || { echo "init: ODOO_ADMIN_PASSWORD is shorter than 12 characters" >&2; exit 64; }
case "$ODOO_DB_NAME" in
    *[!a-z0-9_]*) echo "init: ODOO_DB_NAME must be lowercase letters, digits and _ (got '$ODOO_DB_NAME')" >&2; exit 64 ;;
esac
export PGPASSWORD="$POSTGRES_PASSWORD" PGHOST="$DB_HOST" PGPORT="$DB_PORT" PGUSER=postgres \
       PGOPTIONS="-c client_min_messages=warning"
i=0
until pg_isready -q -d postgres; do
    i=$((i + 1)); [ $i -lt 150 ] || { echo "init: PostgreSQL at $DB_HOST:$DB_PORT not ready" >&2; exit 75; }
    sleep 2
done
q() { psql -v ON_ERROR_STOP=1 -qAt "$@"; }
# Passwords go through psql variables (:'v' quotes them): any character works.
role() {  # role NAME PASSWORD [GROUP]
    q -d postgres -v name="$1" -v pw="$2" <<'SQL'
SELECT format(CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name')
                   THEN 'ALTER ROLE %I LOGIN PASSWORD %L' ELSE 'CREATE ROLE %I LOGIN PASSWORD %L' END,
              :'name', :'pw') \gexec
SQL
    [ -z "${3:-}" ] || q -d postgres -v name="$1" -v grp="$3" <<'SQL'
SELECT format('GRANT %I TO %I', :'grp', :'name') \gexec
SQL
}
for g in emboux_mail_postfix emboux_mail_dovecot emboux_mail_opendkim; do
    q -d postgres -v g="$g" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', :'g') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'g') \gexec
SQL
done
role emboux "$MAILDB_PASSWORD"
role "$POSTFIX_DB_USER" "$POSTFIX_DB_PASSWORD" emboux_mail_postfix
role "$DOVECOT_DB_USER" "$DOVECOT_DB_PASSWORD" emboux_mail_dovecot
role "$OPENDKIM_DB_USER" "$OPENDKIM_DB_PASSWORD" emboux_mail_opendkim
q -d postgres -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER emboux ENCODING ''UTF8'' TEMPLATE template0', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
q -d "$DB_NAME" -v db="$DB_NAME" <<'SQL'
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO emboux, emboux_mail_postfix, emboux_mail_dovecot, emboux_mail_opendkim', :'db') \gexec
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT ALL ON SCHEMA public TO emboux;
SQL
# Odoo's own role and database (no access to the mail DB: CONNECT revoked
# from PUBLIC above; Odoo reaches the platform through the connector only)
role "$ODOO_DB_USER" "$ODOO_DB_PASSWORD"
q -d postgres -v db="$ODOO_DB_NAME" -v owner="$ODOO_DB_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'db', :'owner') \gexec
SQL
emboux-connector migrate
echo "init: roles and migrations done"
