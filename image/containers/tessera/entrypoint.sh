#!/bin/sh
# Entrypoint of the service image. The store is at $TESSERA_DATA (default /data).
#   serve [ARGS]  make the store on first start (or, for --role s3|nfs|smb, wait for it), then `tessera serve ARGS`
#   node-init     the appliance's one-shot step before its service containers start: make the store, or
#                 add the targets of newly attached disks, then ensure the users listed one per line
#                 ("NAME ACCESS_KEY SECRET_KEY [PASSWORD]", "-" for generated keys; the password, for SMB and
#                 NFS logons, is set again each time) in $TESSERA_USERS_FILE
#   cluster-status  (cluster nodes) wait until this node is up in `tessera cluster status`, then print it
#                 as one line: "tessera cluster status: {JSON}" (the appliance shows it on the console)
#   anything else `tessera ARGS`
# TESSERA_TARGETS: target directories (one or more per disk), TESSERA_DOMAINS: their fault domains,
# TESSERA_EC: K+M. Without TESSERA_TARGETS the targets are directories under the store.
# A cluster node (TESSERA_CLUSTER=1; the appliance's /run/tessera/cluster.env) never makes a one-node store:
# the node with TESSERA_CLUSTER_INIT=1 waits until the PostgreSQL at TESSERA_META_URL accepts writes and runs
# `tessera cluster init` with the store key in TESSERA_KEY_FILE (or joins, if the metadata already holds a
# store); every other node waits until the store exists there and runs `tessera node join`. Names, address:
# TESSERA_CLUSTER_NAME, TESSERA_CLUSTER_ADDR; init only: TESSERA_CLUSTER_EC (K+M), TESSERA_CLUSTER_EXPECT.
# TESSERA_META_WAIT: seconds to wait for the metadata (default 1500).
set -eu
DATA=${TESSERA_DATA:-/data}
export TESSERA_DATA="$DATA"

meta_wait() {  # $1 = writable: until PostgreSQL accepts writes; store: until it holds a store. Prints which.
  python3 - "$1" <<'PY'
import os, sys, time
import psycopg
url, what = os.environ["TESSERA_META_URL"], sys.argv[1]
limit = float(os.environ.get("TESSERA_META_WAIT", "1500"))
start, last = time.monotonic(), ""
while True:
    try:
        with psycopg.connect(url, connect_timeout=5) as c:
            if c.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                has = c.execute("SELECT to_regclass('info') IS NOT NULL").fetchone() == (True,)
                if has:
                    has = c.execute("SELECT count(*) FROM info WHERE key = 'store_id'").fetchone() != (0,)
                if what == "writable" or has:
                    print("store" if has else "empty")
                    sys.exit(0)
                err = "no store yet"
            else:
                err = "read-only"
    except psycopg.Error as e:
        err = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    if err != last:
        print(f"metadata not ready ({err}); waiting", file=sys.stderr, flush=True)
        last = err
    if time.monotonic() - start > limit:
        sys.exit(f"the metadata at the cluster's meta peers was not ready after {limit:.0f} s: {err}")
    time.sleep(2)
PY
}

cluster_store() {
  : "${TESSERA_META_URL:?}" "${TESSERA_CLUSTER_NAME:?}" "${TESSERA_CLUSTER_ADDR:?}" "${TESSERA_KEY_FILE:?}"
  if [ -f "$DATA/meta/url" ]; then
    echo "cluster node $TESSERA_CLUSTER_NAME: store present"  # (targets of disks added later: tessera target add)
    return 0
  fi
  set --
  for t in ${TESSERA_TARGETS:-}; do set -- "$@" --target "$t"; done
  if [ "${TESSERA_CLUSTER_INIT:-0}" = 1 ]; then
    echo "cluster node $TESSERA_CLUSTER_NAME: waiting for the metadata to accept writes, to make the cluster"
    state=$(meta_wait writable) || exit 1
    if [ "$state" = empty ]; then
      mkdir -p "$DATA/meta" && chmod 0700 "$DATA/meta"
      [ -f "$DATA/meta/store.key" ] || install -m 0600 "$TESSERA_KEY_FILE" "$DATA/meta/store.key"
      [ -z "${TESSERA_CLUSTER_EC:-}" ] || set -- "$@" --ec "$TESSERA_CLUSTER_EC"
      tessera cluster init --data "$DATA" --meta "$TESSERA_META_URL" --name "$TESSERA_CLUSTER_NAME" \
        --addr "$TESSERA_CLUSTER_ADDR" --expect "${TESSERA_CLUSTER_EXPECT:-3}" "$@"
      return 0
    fi
    echo "cluster node $TESSERA_CLUSTER_NAME: the metadata already holds a cluster store; joining it"
  else
    echo "cluster node $TESSERA_CLUSTER_NAME: waiting for the cluster store (made by the node with cluster.init)"
    meta_wait store >/dev/null || exit 1
  fi
  tessera node join --data "$DATA" --meta "$TESSERA_META_URL" --key "$TESSERA_KEY_FILE" \
    --name "$TESSERA_CLUSTER_NAME" --addr "$TESSERA_CLUSTER_ADDR" "$@"
}

cluster_report() {  # until this node is up (its serve heartbeats), then its `cluster status --json` on one line
  i=0
  while :; do
    if out=$(tessera cluster status --data "$DATA" --json 2>/dev/null) && printf '%s' "$out" | python3 -c '
import json, os, sys
doc = json.loads(sys.stdin.read().strip().splitlines()[-1])
up = [n for n in doc["nodes"] if n["name"] == os.environ["TESSERA_CLUSTER_NAME"] and n["state"] == "up"]
sys.exit(0 if up else 1)
' 2>/dev/null; then
      echo "tessera cluster status: $(printf '%s' "$out" | tail -n 1)"
      return 0
    fi
    if [ "$i" -ge "${TESSERA_STATUS_WAIT:-600}" ]; then
      echo "node $TESSERA_CLUSTER_NAME is not up after $i s:" >&2
      tessera cluster status --data "$DATA" >&2 || true
      exit 1
    fi
    sleep 5; i=$((i + 5))
  done
}

make_store() {
  if [ "${TESSERA_CLUSTER:-0}" = 1 ]; then
    cluster_store
    return 0
  fi
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
  # init writes tessera.yaml once the metadata is whole; meta.db: a one-node store, meta/url: a cluster node
  while { [ ! -f "$DATA/meta/meta.db" ] && [ ! -f "$DATA/meta/url" ]; } || [ ! -f "$DATA/tessera.yaml" ]; do
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
  cluster-status) cluster_report ;;
  *) exec tessera "$@" ;;
esac
