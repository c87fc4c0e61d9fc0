#!/bin/sh
# Entrypoint of tessera-etcd: the data directory ($ETCD_DATA_DIR, on the node's disk) belongs to the etcd
# user, and etcd runs as that user; everything else comes from ETCD_* variables.
set -eu
: "${ETCD_DATA_DIR:?ETCD_DATA_DIR is not set (the appliance writes it to /run/tessera/etcd.env)}"
mkdir -p "$ETCD_DATA_DIR"
chown etcd:etcd "$ETCD_DATA_DIR"
chmod 0700 "$ETCD_DATA_DIR"
exec setpriv --reuid etcd --regid etcd --init-groups /usr/bin/etcd "$@"
