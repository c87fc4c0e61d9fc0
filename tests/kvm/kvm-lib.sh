# Helpers for the kvm test guest's scripts (sourced before /kvm/run.sh; see tests/kvm/guest.py).

# step NAME <<'EOF' ... EOF : run the body with sh -e (stops at the first failing command), its output
# bracketed by "@@STEP-BEGIN NAME" and "@@STEP-END NAME rc=N"; the script goes on whatever the status.
# stderr and an xtrace go to /tmp/step.NAME.trace; a failed step prints the trace's last lines.
step() {
  cat > "/tmp/step.$1"
  echo "@@STEP-BEGIN $1"
  sh -e -x -c ". /etc/kvm-lib.sh; . /tmp/step.$1" </dev/null 2>"/tmp/step.$1.trace"
  _rc=$?
  if [ $_rc -ne 0 ]; then echo "-- trace (last lines) --"; tail -n 15 "/tmp/step.$1.trace"; fi
  echo "@@STEP-END $1 rc=$_rc"
}

# await_line FILE LINE [SECONDS=60] : poll FILE (e.g. on a mount, written by the host) until it holds LINE
await_line() {
  _n=$(( ${3:-60} * 5 ))
  while [ "$_n" -gt 0 ]; do
    grep -qxF "$2" "$1" 2>/dev/null && return 0
    usleep 200000
    _n=$((_n - 1))
  done
  echo "await_line: no line '$2' in $1 after ${3:-60} s"
  return 1
}

# host_event NAME : tell the host something happened (Guest.wait_output("@@HOST NAME"))
host_event() { echo "@@HOST $1"; }

# as_user CMD... : run a shell command line as uid/gid 1000 ("user")
as_user() { su user -s /bin/sh -c "$*"; }

# fails_with TEXT CMD... : CMD must fail and print TEXT (e.g. "Permission denied")
fails_with() {
  _want=$1; shift
  if _out=$("$@" 2>&1); then echo "expected a failure ($_want), it worked: $*"; return 1; fi
  case "$_out" in *"$_want"*) return 0 ;; esac
  echo "expected '$_want' from: $*; got: $_out"
  return 1
}

# The checks the NFS and SMB kernel-client workloads share (tests/protocols/*/kernel_workload.sh), each run
# in the current directory on the mount; called as a plain command in a step, so sh -e stops at the first
# failing line inside.

# check_files : write, append, overwrite in place, truncate down and up (zeros), rewrite f1; copy 4 MiB of
# random bytes from /tmp/big (made here) to big
check_files() {
  printf 'hello\n' > f1
  printf 'world\n' >> f1
  [ "$(cat f1)" = "$(printf 'hello\nworld')" ]
  printf 'HE' | dd of=f1 bs=1 seek=0 conv=notrunc 2>/dev/null
  [ "$(head -n 1 f1)" = HEllo ]
  truncate -s 3 f1
  [ "$(cat f1)" = HEl ]
  [ "$(stat -c %s f1)" = 3 ]
  truncate -s 100000 f1
  [ "$(stat -c %s f1)" = 100000 ]
  [ "$(tail -c 5 f1 | od -An -tx1 | tr -d ' ')" = 0000000000 ]
  printf 'short' > f1
  [ "$(cat f1)" = short ]
  dd if=/dev/urandom of=/tmp/big bs=64k count=64 2>/dev/null
  cp /tmp/big big
}

# check_rename : a file and a directory moved across directories, a file moved over another
check_rename() {
  mkdir -p d1/sub d2
  echo r > d1/a
  echo s > d1/sub/inner
  mv d1/a d2/b
  [ ! -e d1/a ]
  [ "$(cat d2/b)" = r ]
  mv d1/sub d2/sub2
  [ ! -e d1/sub ]
  [ "$(cat d2/sub2/inner)" = s ]
  echo x > d2/c
  mv d2/b d2/c
  [ ! -e d2/b ]
  [ "$(cat d2/c)" = r ]
  [ "$(ls d1 | wc -l)" = 0 ]
  [ "$(ls d2 | tr '\n' ' ')" = "c sub2 " ]
}

# check_bigdir [ls-l] : 2,000 empty files in many/, all listed (with ls-l: ls -l shows each as -rw...), removed
check_bigdir() {
  mkdir many
  i=0
  while [ $i -lt 2000 ]; do : > many/f$i; i=$((i + 1)); done
  [ "$(ls many | wc -l)" = 2000 ]
  if [ "${1:-}" = ls-l ]; then
    [ "$(ls -l many | grep -c '^-rw')" = 2000 ]
  fi
  ls many | sort > /tmp/got
  i=0; while [ $i -lt 2000 ]; do echo f$i; i=$((i + 1)); done | sort > /tmp/want
  cmp /tmp/got /tmp/want
  rm -r many
  [ ! -e many ]
}
