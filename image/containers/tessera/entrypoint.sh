#!/bin/sh
# First start: make the store (targets under /data/targets unless TESSERA_TARGETS names
# directories, e.g. one per mounted disk), then run the requested role.
set -e
if [ ! -f /data/meta/meta.db ]; then
  if [ -n "${TESSERA_TARGETS:-}" ]; then
    set -- "$@" ; args=""
    for t in $TESSERA_TARGETS; do args="$args --target $t"; done
    # shellcheck disable=SC2086
    tessera init --data /data $args ${TESSERA_EC:+--ec $TESSERA_EC}
  else
    tessera init --data /data ${TESSERA_EC:+--ec $TESSERA_EC}
  fi
fi
case "$1" in
  serve) shift; exec tessera serve --config /etc/tessera/tessera.yaml "$@" ;;
  *) exec tessera "$@" ;;
esac
