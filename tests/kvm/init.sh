#!/bin/sh
# /init of the kvm test guest (tests/kvm/guest.py): modules, network, rpcbind + statd, then /kvm/run.sh with
# its output on ttyS1 between @@BEGIN and "@@END rc=N", then power off. Kernel messages stay on ttyS0.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec 0</dev/null 1>/dev/console 2>&1
log() { echo "kvm-init: $*"; }

for m in $(cat /etc/kvm-modules); do
  insmod "/lib/modules/$m" || log "insmod $m failed"
done
hostname kvm-guest
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2 \
  || log "network setup failed"
if [ -x /usr/sbin/rpcbind ] && [ -x /usr/sbin/rpc.statd ]; then
  mkdir -p /run/rpcbind
  /usr/sbin/rpcbind || log "rpcbind failed"
  /usr/sbin/rpc.statd --no-notify || log "rpc.statd failed"
fi
log "running /kvm/run.sh"

exec 1>/dev/ttyS1 2>&1
echo "@@BEGIN"
sh /kvm/run.sh
echo "@@END rc=$?"
sync
poweroff -f
