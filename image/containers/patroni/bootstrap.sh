#!/bin/sh
# Patroni's post_bootstrap hook, run once on the node that made the cluster (argument: a superuser
# connection string): the role and database Tessera's metadata lives in. Its password comes from
# $TESSERA_DB_PASSWORD (derived from the store key by tessera-node), never from the command line.
set -eu
: "${TESSERA_DB_PASSWORD:?}"
psql "$1" -v ON_ERROR_STOP=1 -q -v pw="$TESSERA_DB_PASSWORD" <<'SQL'
CREATE ROLE tessera LOGIN PASSWORD :'pw';
SQL
psql "$1" -v ON_ERROR_STOP=1 -q -c 'CREATE DATABASE tessera OWNER tessera'
