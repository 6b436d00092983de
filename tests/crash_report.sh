#!/usr/bin/env bash
# Runs pytest (the arguments, as a command) so that a native crash says where it happened.
#
# A segfault in a native library (a decoder's thread, say) kills pytest with a Python stack of every
# thread at best, often cut short in a CI log, and no word of the test or the native code at fault. Here
# the core is kept, and after a death by signal this prints the test that was running (the plugin
# tests/_current_test.py writes its id to $BABYFAST_TEST_CURRENT) and the crashing thread's native
# stack (gdb, where installed). The exit status is the command's.
set -u
work=$(mktemp -d "${TMPDIR:-/tmp}/babyfast-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
export BABYFAST_TEST_CURRENT="$work/current"
touch "$work/started"
ulimit -c unlimited 2>/dev/null || true

"$@"  # in the foreground: a background job of a script would ignore Ctrl-C
rc=$?

# cores written since the start, in this folder (kernel.core_pattern "core" or "core.PID")
cores=$(find . -maxdepth 1 -type f \( -name core -o -name 'core.[0-9]*' \) -newer "$work/started" 2>/dev/null)
if [ "$rc" -gt 128 ]; then
  echo
  echo "== $1 died of signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
  if [ -s "$BABYFAST_TEST_CURRENT" ]; then
    echo "== in test: $(cat "$BABYFAST_TEST_CURRENT")"
  fi
  core=""
  [ -n "$cores" ] && core=$(ls -t $cores | head -n 1)  # the newest: pytest's own, not a child's
  if [ -z "$core" ]; then
    echo "== no core file here (kernel.core_pattern: $(cat /proc/sys/kernel/core_pattern 2>/dev/null))"
  elif ! command -v gdb >/dev/null 2>&1; then
    echo "== core kept in $core; install gdb for its stack"
    cores=$(echo "$cores" | grep -vxF "$core")
  else
    echo "== native stack of the crashing thread (gdb):"
    gdb -batch -nx -q -ex "bt 30" "$(command -v "$1")" "$core" 2>&1 | grep -E "^(#|\[Current thread)" | cut -c1-240
  fi
fi
# cores are gigabytes: drop those this run left (a kept one is named above)
[ -n "$cores" ] && echo "$cores" | xargs rm -f
exit "$rc"
