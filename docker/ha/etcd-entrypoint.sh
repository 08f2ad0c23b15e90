#!/bin/sh
# One member of the deployment's etcd cluster (docker/compose.ha.yaml):
# EMBOUX_ETCD_NAME is this member (its compose service name), EMBOUX_ETCD_MEMBERS every
# member's name, space separated. Plain http on the compose network only (no
# port is published); the data stays in the member's volume, so a restarted
# member rejoins with its identity.
set -eu
: "${EMBOUX_ETCD_NAME:?EMBOUX_ETCD_NAME is not set}" "${EMBOUX_ETCD_MEMBERS:?EMBOUX_ETCD_MEMBERS is not set}"
cluster=""
for m in $EMBOUX_ETCD_MEMBERS; do cluster="${cluster:+$cluster,}$m=http://$m:2380"; done
state=new
[ ! -d /var/lib/etcd/member ] || state=existing
exec etcd --name "$EMBOUX_ETCD_NAME" --data-dir /var/lib/etcd \
    --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls "http://$EMBOUX_ETCD_NAME:2379" \
    --listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls "http://$EMBOUX_ETCD_NAME:2380" \
    --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token emboux-etcd \
    --heartbeat-interval 200 --election-timeout 2000
