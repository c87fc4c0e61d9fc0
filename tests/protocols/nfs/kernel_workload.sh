# The Linux kernel NFSv3 client's workload (tests/protocols/nfs/test_kernel_client.py), one boot, one step per
# check. Set before this text: N_SRC and Q_SRC (server:/export), N_OPTS and Q_OPTS (mount options),
# TLOCK (1 when the tlock helper is in the guest), TEST_SEES_HOST_LOCKS (1: check F_GETLK).
# /mnt/n: rw, no root squash, NLM locks; /mnt/q: rw, root squashed to 65534, nolock. The host answers through the file ctl in /mnt/n (see await_line).
# Each step runs with sh -e: every line is a check (no a && b lists: sh -e ignores a failure before &&).

step mount <<'EOF'
mkdir -p /mnt/n /mnt/q
mount -t nfs -o "$N_OPTS" "$N_SRC" /mnt/n
mount -t nfs -o "$Q_OPTS" "$Q_SRC" /mnt/q
grep ' /mnt/n ' /proc/mounts | grep -q 'vers=3'
grep ' /mnt/q ' /proc/mounts | grep -q 'nolock'
if grep ' /mnt/n ' /proc/mounts | grep -q nolock; then echo "/mnt/n should lock through NLM"; exit 1; fi
grep ' /mnt/' /proc/mounts
EOF
grep -q ' /mnt/n ' /proc/mounts || { echo "no mount: nothing else to run"; exit 1; }

step files <<'EOF'
cd /mnt/n
check_files
sync
echo 3 > /proc/sys/vm/drop_caches
[ "$(md5sum < big)" = "$(md5sum < /tmp/big)" ]
printf 'big-md5 %s\n' "$(md5sum < big | cut -c 1-32)"
EOF

step rename <<'EOF'
cd /mnt/n
check_rename
EOF

step links <<'EOF'
cd /mnt/n
echo data > orig
ln orig hard
[ "$(stat -c %h orig)" = 2 ]
[ "$(stat -c %i orig)" = "$(stat -c %i hard)" ]
ln -s orig sym
ln -s d2/sub2/inner deep
[ "$(readlink sym)" = orig ]
[ "$(cat sym)" = data ]
[ "$(cat deep)" = s ]
[ -L sym ]
[ "$(stat -c %F sym)" = "symbolic link" ]
rm orig
[ "$(cat hard)" = data ]
[ "$(stat -c %h hard)" = 1 ]
[ -L sym ]
[ ! -e sym ]
EOF

step perms_root <<'EOF'
cd /mnt/n
echo s > secret
chmod 600 secret
echo p > public
chmod 644 public
[ "$(stat -c %a:%u:%g secret)" = 600:0:0 ]
mkdir userdir
chown 1000:1000 userdir
[ "$(stat -c %u:%g userdir)" = 1000:1000 ]
echo g > given
chown 1000:50 given
[ "$(stat -c %u:%g given)" = 1000:50 ]
chmod 4755 given
[ "$(stat -c %a given)" = 4755 ]
chmod 0640 given
[ "$(stat -c %a given)" = 640 ]
EOF

step perms_user <<'EOF'
cd /mnt/n
as_user 'echo mine > userdir/mine'
[ "$(stat -c %u:%g userdir/mine)" = 1000:1000 ]
as_user 'chmod 600 userdir/mine'
[ "$(stat -c %a userdir/mine)" = 600 ]
[ "$(as_user 'cat public')" = p ]
fails_with 'Permission denied' as_user 'cat secret'
fails_with 'Permission denied' as_user 'echo x >> public'
fails_with 'Permission denied' as_user 'echo x > newfile'
fails_with 'Operation not permitted' as_user 'chown 0 userdir/mine'
fails_with 'Operation not permitted' as_user 'chmod 777 public'
as_user 'chgrp 1000 given'
[ "$(stat -c %g given)" = 1000 ]
fails_with 'Operation not permitted' as_user 'chgrp 0 given'
as_user 'mv userdir/mine userdir/mine2'
[ -e userdir/mine2 ]
fails_with 'Permission denied' as_user 'rm public'
EOF

step squash <<'EOF'
cd /mnt/q
echo r > byroot
[ "$(stat -c %u:%g byroot)" = 65534:65534 ]
fails_with 'Operation not permitted' chown 1000 byroot
as_user 'echo u > byuser'
[ "$(stat -c %u:%g byuser)" = 1000:1000 ]
EOF

step bigdir <<'EOF'
cd /mnt/n
check_bigdir ls-l
EOF

step trash <<'EOF'
cd /mnt/n
printf 'deleted by mistake\n' > trashed
sync
rm trashed
[ ! -e trashed ]
EOF

if [ "$TLOCK" = 1 ]; then
step locks <<'EOF'
# lk ARGS... : tlock with a time limit (without NLM on the server a lock request retries forever)
lk() { timeout -s KILL 30 tlock "$@"; }
cd /mnt/n
# the host holds an exclusive core.fs lock on bytes 0-99 of "locked"
[ "$(lk locked w 0 10)" = conflict ]
[ "$(lk locked r 50 1)" = conflict ]
[ "$(lk locked w 100 10)" = locked ]
[ "$(lk locked w 0 0)" = conflict ]
[ "$(lk locked f 0 0)" = conflict ]
if [ "$TEST_SEES_HOST_LOCKS" = 1 ]; then
  # F_GETLK (NLM TEST) reports the host's lock; Ganesha's TEST looks only at its own lock table
  [ "$(lk locked t 0 10 | cut -d' ' -f1)" = held ]
fi
echo lock > glock
# hold bytes 0-9 of glock while the host tries them
timeout -s KILL 90 tlock glock w 0 10 sh -c '. /etc/kvm-lib.sh; host_event locked; await_line /mnt/n/ctl checked 60'
[ "$(lk glock w 0 10)" = locked ]
echo nolock > /mnt/q/local
[ "$(lk /mnt/q/local w 0 10)" = locked ]
EOF

step blocking_lock <<'EOF'
cd /mnt/n
# F_SETLKW waits while the host holds bytes 0-99; then the host lets go. The server's GRANTED callback
# cannot reach the guest through qemu's NAT: the client asks again after 30 s (NLMCLNT_POLL_TIMEOUT).
timeout -s KILL 75 tlock locked W 0 10 > /tmp/blocked.out &
pid=$!
sleep 3
kill -0 $pid
[ ! -s /tmp/blocked.out ]
host_event blocking
wait $pid
[ "$(cat /tmp/blocked.out)" = locked ]
EOF
fi

step restart <<'EOF'
cd /mnt/n
echo before > restart-before
sync
host_event restart
# writes in flight while the server goes away; the mount is hard: they wait and are resent
cp /tmp/big inflight &
await_line /mnt/n/ctl restarted 120
wait
[ "$(cat restart-before)" = before ]
echo after > restart-after
sync
echo 3 > /proc/sys/vm/drop_caches
[ "$(md5sum < inflight)" = "$(md5sum < /tmp/big)" ]
[ "$(md5sum < big)" = "$(md5sum < /tmp/big)" ]
[ "$(cat restart-after)" = after ]
ls > /dev/null
EOF

step crash <<'EOF'
cd /mnt/n
cat /tmp/big /tmp/big /tmp/big /tmp/big > /tmp/big16
# 16 MiB written (UNSTABLE, partly still in the page cache) through a file left open; the server is killed
# (SIGKILL) and started again; closing the file flushes and COMMITs: the write verifier changed, so the
# client must send again whatever the dead server had not made durable
exec 3> crashed
cat /tmp/big16 >&3
host_event crash
await_line /mnt/n/ctl crashed 120
exec 3>&-
echo 3 > /proc/sys/vm/drop_caches
[ "$(md5sum < crashed)" = "$(md5sum < /tmp/big16)" ]
[ "$(cat restart-after)" = after ]
printf 'crashed-md5 %s\n' "$(md5sum < crashed | cut -c 1-32)"
EOF

step umount <<'EOF'
umount /mnt/n
umount /mnt/q
if grep ' /mnt/[nq] ' /proc/mounts; then exit 1; fi
EOF
