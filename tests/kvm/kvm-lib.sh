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
