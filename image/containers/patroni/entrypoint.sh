#!/bin/sh
# Entrypoint of tessera-patroni (starts as root): the PostgreSQL home ($TESSERA_PG_HOME, on the node's disk)
# and a private copy of Patroni's config (/run/tessera/patroni.yml, written by tessera-node) go to the
# postgres user, then Patroni runs as postgres and starts PostgreSQL itself.
set -eu
: "${TESSERA_PG_HOME:?TESSERA_PG_HOME is not set (the appliance writes it to /run/tessera/patroni.env)}"
CFG=${TESSERA_PATRONI_CONFIG:-/run/tessera/patroni.yml}
mkdir -p "$TESSERA_PG_HOME"
chown postgres:postgres "$TESSERA_PG_HOME"
chmod 0700 "$TESSERA_PG_HOME"
install -o postgres -g postgres -m 0600 "$CFG" "$TESSERA_PG_HOME/patroni.yml"
cd "$TESSERA_PG_HOME"
exec setpriv --reuid postgres --regid postgres --init-groups env HOME="$TESSERA_PG_HOME" \
  patroni "$TESSERA_PG_HOME/patroni.yml"
