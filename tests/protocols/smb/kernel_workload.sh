# The Linux kernel SMB client's workload (tests/protocols/smb/test_kernel_client.py), one boot, one step per
# check. Set before this text: SRC (//10.0.2.2/data), OPTS (port, user, password, vers=3.1.1), TLOCK (1 when
# the tlock helper is in the guest), PLAIN and SEALED (contents the host looks for in the captured traffic).
# /mnt/s: the everyday mount (signed, leases on); /mnt/e: the same share with seal (encrypted);
# /mnt/l: its own connection (nosharesock) with cache=none: reads of ctl (the host's answers) always go to
# the server. The locks step turns the client's oplocks off (cifs reads enable_oplocks at each open) so its
# byte-range locks go to the server instead of being kept under a lease.
# Each step runs with sh -e: every line is a check (no a && b lists: sh -e ignores a failure before &&).

step mount <<'EOF'
mkdir -p /mnt/s /mnt/e /mnt/l
mount -t cifs "$SRC" /mnt/s -o "$OPTS"
mount -t cifs "$SRC" /mnt/l -o "$OPTS,nosharesock,cache=none"
grep ' /mnt/s ' /proc/mounts | grep -q 'vers=3.1.1'
grep -q 'Dialect 0x311 signed' /proc/fs/cifs/DebugData
grep ' /mnt/' /proc/mounts
[ -e /mnt/l/ctl ]
EOF
grep -q ' /mnt/s ' /proc/mounts || { echo "no mount: nothing else to run"; exit 1; }

step files <<'EOF'
cd /mnt/s
check_files
printf 'tail' >> big
cat /tmp/big > /tmp/bigt
printf 'tail' >> /tmp/bigt
sync
echo 3 > /proc/sys/vm/drop_caches
[ "$(stat -c %s big)" = 4194308 ]
[ "$(md5sum < big)" = "$(md5sum < /tmp/bigt)" ]
printf 'big-md5 %s\n' "$(md5sum < big | cut -c 1-32)"
printf '%s' "$PLAIN" > plain
EOF

step rename <<'EOF'
cd /mnt/s
check_rename
EOF

step remove <<'EOF'
cd /mnt/s
echo gone > gone
rm gone
[ ! -e gone ]
mkdir -p rmd/in
echo x > rmd/in/f
if rmdir rmd 2>/dev/null; then echo "rmdir of a non-empty directory worked"; exit 1; fi
rm -r rmd
[ ! -e rmd ]
mkdir empty
rmdir empty
[ ! -e empty ]
[ "$(ls | grep -c -e '^gone$' -e '^rmd$' -e '^empty$')" = 0 ]
EOF

step bigdir <<'EOF'
cd /mnt/s
check_bigdir
EOF

step delete_on_close <<'EOF'
cd /mnt/s
echo 'still here' > doomed
exec 3< doomed
# delete pending until the last handle closes (the name may still show meanwhile, as on Samba)
rm doomed
[ "$(cat <&3)" = 'still here' ]
exec 3<&-
[ ! -e doomed ]
[ "$(ls | grep -c '^doomed$')" = 0 ]
echo again > doomed
[ "$(cat doomed)" = again ]
rm doomed
EOF

if [ "$TLOCK" = 1 ]; then
step locks <<'EOF'
# lk ARGS... : tlock with a time limit
lk() { timeout -s KILL 30 tlock "$@"; }
echo 0 > /sys/module/cifs/parameters/enable_oplocks
trap 'echo 1 > /sys/module/cifs/parameters/enable_oplocks' EXIT
cd /mnt/l
[ -w locked ]
# the host holds an exclusive core.fs (NFS-style) lock on bytes 0-99 of "locked"
[ "$(lk locked w 0 10)" = conflict ]
[ "$(lk locked r 50 1)" = conflict ]
[ "$(lk locked w 100 10)" = locked ]
[ "$(lk locked f 0 0)" = conflict ]
echo lock > glock
# hold bytes 0-9 of glock while the host tries them
timeout -s KILL 90 tlock glock w 0 10 sh -c '. /etc/kvm-lib.sh; host_event locked; await_line /mnt/l/ctl checked 60'
[ "$(lk glock w 0 10)" = locked ]
# the host lets go of its lock: the same request now succeeds
host_event release
await_line /mnt/l/ctl released 60
[ "$(lk locked w 0 10)" = locked ]
[ "$(lk locked f 0 0)" = locked ]
EOF

step leased_locks <<'EOF'
# through the everyday mount (leases on): the host holds bytes 0-99 of "locked2"; a server that granted a
# caching lease on a file other protocols hold locks on would let the client keep this lock to itself
cd /mnt/s
[ "$(timeout -s KILL 30 tlock locked2 w 200 10)" = locked ]
[ "$(timeout -s KILL 30 tlock locked2 w 0 10)" = conflict ]
EOF
fi

step seal <<'EOF'
mount -t cifs "$SRC" /mnt/e -o "$OPTS,seal"
grep ' /mnt/e ' /proc/mounts | grep -q seal
cd /mnt/e
printf '%s' "$SEALED" > sealed
[ "$(cat sealed)" = "$SEALED" ]
[ "$(cat f1)" = short ]
mkdir sdir
echo in > sdir/x
[ "$(ls sdir)" = x ]
cd /
umount /mnt/e
EOF

step restart <<'EOF'
cd /mnt/s
echo before > restart-before
sync
host_event restart
await_line /mnt/l/ctl restarted 120
[ "$(cat restart-before)" = before ]
echo after > restart-after
sync
echo 3 > /proc/sys/vm/drop_caches
[ "$(cat restart-after)" = after ]
[ "$(md5sum < big)" = "$(md5sum < /tmp/bigt)" ]
ls > /dev/null
EOF

step umount <<'EOF'
umount /mnt/s
umount /mnt/l
if grep ' /mnt/[sel] ' /proc/mounts; then exit 1; fi
EOF
