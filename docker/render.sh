#!/bin/sh
# Render the EmBoux mail-server templates: every {{NAME}} placeholder in docker/postfix/*
# and docker/dovecot/* is replaced by the environment variable NAME.
#   docker/render.sh OUTDIR       -> OUTDIR/postfix/..., OUTDIR/dovecot/... (sieve/ too), OUTDIR/opendkim/...
#   docker/render.sh OUTDIR PART  -> only that part (e.g. opendkim)
# Used by ./dev up (scripts/dev/stack-mail.sh) and by the container entry point
# (docker/entrypoint.sh), so both run the same configuration. Fails on any
# placeholder without a value. POSIX sh + sed, no other dependency.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: render.sh OUTDIR [PART...]}
shift
umask 022
for part in ${*:-postfix dovecot dovecot/sieve opendkim}; do
    [ -d "$here/$part" ] || continue
    mkdir -p "$out/$part"
    for tpl in "$here/$part"/*; do
        [ -f "$tpl" ] || continue
        dst="$out/$part/$(basename "$tpl")"
        script=""
        for name in $(grep -o '{{[A-Z0-9_]*}}' "$tpl" | sort -u | tr -d '{}'); do
            eval "isset=\${$name+x}"
            [ -n "$isset" ] || { echo "render.sh: $name is not set (needed by $tpl)" >&2; exit 1; }
            eval "val=\$$name"
            # escape for the replacement side of sed s|||
            esc=$(printf '%s' "$val" | sed -e 's/[\\|&]/\\&/g')
            script="$script s|{{$name}}|$esc|g;"
        done
        tmp="$dst.tmp.$$"
        if [ -n "$script" ]; then sed -e "$script" "$tpl" >"$tmp"; else cat "$tpl" >"$tmp"; fi
        mv "$tmp" "$dst"
    done
done
# The files holding a DB password: proxymap(8) reads the pgsql maps as the
# postfix user (root:postfix 0640); Dovecot's auth reads its SQL file as root.
if [ -d "$out/postfix" ]; then
chmod 640 "$out/postfix/"pgsql-*.cf "$out/dovecot/"dovecot-sql*.conf.ext
chgrp postfix "$out/postfix/"pgsql-*.cf 2>/dev/null || true
# Dovecot's dict process (user dovecot) reads the quota-usage dict's DB password.
chgrp dovecot "$out/dovecot/dovecot-sql-dict.conf.ext" 2>/dev/null || true
fi
# The program Dovecot's IMAPSieve pipes Junk moves to (trains Rspamd).
if [ -f "$out/dovecot/sieve/rspamd-learn" ]; then chmod 755 "$out/dovecot/sieve/rspamd-learn"; fi
# OpenDKIM (sending identity, issue 4): its config holds the same DB password.
if [ -f "$out/opendkim/opendkim.conf" ]; then
    chmod 640 "$out/opendkim/opendkim.conf"
    chgrp opendkim "$out/opendkim/opendkim.conf" 2>/dev/null || true
fi
