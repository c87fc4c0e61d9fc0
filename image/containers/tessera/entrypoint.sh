#!/bin/sh
# Entrypoint of the service image. The store is at $TESSERA_DATA (default /data).
#   serve [ARGS]  make the store on first start (or, for --role s3|nfs|smb, wait for it), then `tessera serve ARGS`
#   node-init     the appliance's one-shot step before its service containers start: make the store, or
#                 add the targets of newly attached disks, then ensure the users listed one per line
#                 ("NAME ACCESS_KEY SECRET_KEY [PASSWORD]", "-" for generated keys; the password, for SMB and
#                 NFS logons, is set again each time) in $TESSERA_USERS_FILE
#   anything else `tessera ARGS`
# TESSERA_TARGETS: target directories (one or more per disk), TESSERA_DOMAINS: their fault domains,
# TESSERA_EC: K+M. Without TESSERA_TARGETS the targets are directories under the store.
set -eu
DATA=${TESSERA_DATA:-/data}
export TESSERA_DATA="$DATA"

make_store() {
  if [ -f "$DATA/meta/meta.db" ]; then
    set -- ${TESSERA_DOMAINS:-}
    for t in ${TESSERA_TARGETS:-}; do  # a disk attached since the store was made: its targets join
      dom=${1:-}; [ $# -eq 0 ] || shift
      [ -f "$t/target.json" ] || tessera target add "$t" ${dom:+--domain "$dom"}
    done
    return 0
  fi
  set --
  for t in ${TESSERA_TARGETS:-}; do set -- "$@" --target "$t"; done
  for d in ${TESSERA_DOMAINS:-}; do set -- "$@" --target-domain "$d"; done
  [ -z "${TESSERA_EC:-}" ] || set -- "$@" --ec "$TESSERA_EC"
  tessera init --data "$DATA" "$@"
}

sync_users() {
  [ -n "${TESSERA_USERS_FILE:-}" ] && [ -f "$TESSERA_USERS_FILE" ] || return 0
  while read -r name ak sk pw; do
    [ -n "$name" ] || continue
    if [ "$ak" = "-" ]; then
      tessera user add "$name" --exist-ok >/dev/null
    else
      tessera user add "$name" --access-key "$ak" --secret-key "$sk" --exist-ok >/dev/null
    fi
    [ -z "$pw" ] || printf '%s\n' "$pw" | tessera user modify "$name" --password-stdin >/dev/null  # not in argv
    echo "user $name ready"
  done < "$TESSERA_USERS_FILE"
}

wait_store() {  # protocol roles never make the store: they wait for the core role (or node-init) to
  i=0
  while [ ! -f "$DATA/meta/meta.db" ] || [ ! -f "$DATA/tessera.yaml" ]; do  # init writes it once the metadata is whole
    [ "$i" -lt "${TESSERA_STORE_WAIT:-300}" ] || { echo "no store in $DATA after ${i} s" >&2; exit 1; }
    [ "$i" -gt 0 ] || echo "waiting for the store in $DATA"
    sleep 1; i=$((i + 1))
  done
}

case "${1:-serve}" in
  serve)
    shift || true
    case " $* " in
      *" --role s3 "* | *" --role nfs "* | *" --role smb "*) wait_store ;;
      *) make_store ;;
    esac
    exec tessera serve --config "${TESSERA_CONFIG:-/etc/tessera/tessera.yaml}" "$@" ;;
  node-init) make_store; sync_users ;;
  *) exec tessera "$@" ;;
esac
