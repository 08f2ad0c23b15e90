#!/bin/sh
# One PostgreSQL member of the replicated mail DB (docker/compose.ha.yaml,
# docs/scaling.md): Patroni runs PostgreSQL 15 in the member's volume, takes
# the leader lock in etcd or follows the member that holds it (streaming
# replication, synchronous mode), and promotes this member when the primary
# is lost. The first member up with an empty etcd makes the cluster (initdb);
# the others copy it (pg_basebackup). Settings (env file / compose):
#   PATRONI_NAME          this member (its compose service name)
#   ETCD_HOSTS            etcd members, host:port, space separated
#   POSTGRES_PASSWORD     the superuser `postgres` (as docker/compose.yaml)
#   REPLICATION_PASSWORD  role `replicator` (streaming replication) and the
#                         REST API's user `patroni` (its write endpoints)
#   EMBOUX_PATRONI_TTL           seconds the leader lock lives without renewal: a
#                         dead primary is replaced after at most this (10)
set -eu
need() {
    for v in "$@"; do
        eval "isset=\${$v:-}"
        [ -n "$isset" ] || { echo "patroni: $v is not set (docker/compose.ha.yaml)" >&2; exit 64; }
        case "$isset" in change-me*) echo "patroni: $v is still the example's change-me" >&2; exit 64 ;; esac
    done
}
need PATRONI_NAME ETCD_HOSTS POSTGRES_PASSWORD REPLICATION_PASSWORD
DATA=/var/lib/postgresql/data
mkdir -p "$DATA" /run/postgresql /run/patroni
chown postgres:postgres "$DATA" /run/postgresql /run/patroni
chmod 700 "$DATA" /run/patroni
# The configuration is written from the environment at every start (Python's
# YAML writer quotes any password); the settings shared by the members
# (bootstrap.dcs) live in etcd after the first start: change them with
# `patronictl edit-config`, not here.
umask 077
python3 - >/run/patroni/patroni.yml <<'PY'
import os
import yaml

name = os.environ["PATRONI_NAME"]
ttl = int(os.environ.get("EMBOUX_PATRONI_TTL", "10"))
rest_password = os.environ["REPLICATION_PASSWORD"]
hba = ["local all all peer",
       "host replication replicator 0.0.0.0/0 scram-sha-256",
       "host replication replicator ::/0 scram-sha-256",
       "host all all 0.0.0.0/0 scram-sha-256",
       "host all all ::/0 scram-sha-256"]
config = {
    "scope": "emboux-maildb",
    "name": name,
    "log": {"level": "WARNING"},
    "restapi": {"listen": "0.0.0.0:8008", "connect_address": f"{name}:8008",
                "authentication": {"username": "patroni", "password": rest_password}},
    "etcd3": {"hosts": os.environ["ETCD_HOSTS"].split()},
    "bootstrap": {
        "dcs": {
            # failure detection: the lock expires ttl s after the primary's
            # last renewal; Patroni needs loop_wait + 2 x retry_timeout <= ttl
            "ttl": ttl, "loop_wait": 2, "retry_timeout": max(3, (ttl - 2) // 2),
            # a replica may be promoted only if it holds every transaction a
            # client was told had committed (docs/scaling.md "No acknowledged
            # write lost"); with the only replica down the primary goes on
            # alone (not strict: availability first, the bound is documented)
            "synchronous_mode": True,
            "synchronous_mode_strict": False,
            "maximum_lag_on_failover": 1048576,
            "postgresql": {
                "use_pg_rewind": True,
                "use_slots": True,
                "parameters": {"max_connections": 200, "wal_level": "replica", "hot_standby": "on",
                               "wal_log_hints": "on", "max_wal_senders": 10, "max_replication_slots": 10,
                               "wal_keep_size": "256MB", "synchronous_commit": "on"},
            },
        },
        "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        "pg_hba": hba,
    },
    "postgresql": {
        "listen": "0.0.0.0:5432",
        "connect_address": f"{name}:5432",
        "data_dir": "/var/lib/postgresql/data/pgdata",
        "bin_dir": "/usr/lib/postgresql/15/bin",
        "pgpass": "/run/patroni/pgpass",
        "pg_hba": hba,
        "authentication": {
            "superuser": {"username": "postgres", "password": os.environ["POSTGRES_PASSWORD"]},
            "replication": {"username": "replicator", "password": os.environ["REPLICATION_PASSWORD"]},
            "rewind": {"username": "postgres", "password": os.environ["POSTGRES_PASSWORD"]},
        },
        "parameters": {"unix_socket_directories": "/run/postgresql"},
        # a new or rewound node copies the primary at once: pg_basebackup's
        # default spread checkpoint waits up to 0.9 x checkpoint_timeout
        # (4.5 min) first, the cluster without a synchronous standby meanwhile
        "basebackup": [{"checkpoint": "fast"}],
    },
    "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
}
print(yaml.safe_dump(config, sort_keys=False))
PY
chown postgres:postgres /run/patroni/patroni.yml
exec runuser -u postgres -- patroni /run/patroni/patroni.yml
