#!/usr/bin/env bash
# The real-kernel tier, as .ci/run calls it after the fallback suite:
#
#   tools/realkernel/ci.sh [PYTEST ARGS...]
#
# 1. builds the guest kernel, or finds it in the cache (build-kernel.sh);
# 2. runs "$PYTHON -m pytest $RK_PYTEST_ARGS" inside the VM (run-in-vm.sh) from the repository root.
# Fails when pytest fails, when it collects nothing (exit 5), and when no test passed (all skipped):
# a tier that runs no test must not look green.
#
# Environment:
#   PYTHON          interpreter (default: the real path behind python3, never a pyenv shim)
#   RK_PYTEST_ARGS  pytest arguments (default below); arguments given to ci.sh replace them
#   RK_TIMEOUT      VM time limit in seconds (default 600)
#   RK_CI_OUT       directory for console.log, junit.xml, rc (default: a fresh mktemp dir,
#                   removed after a green run)
#   (PYTEST_DISABLE_PLUGIN_AUTOLOAD is set to 1: load plugins with -p in your own arguments)
set -euo pipefail
RK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$RK_DIR/../.."

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[realkernel-ci] %s\n' "$*" >&2; }

t0=$(now)
if [[ -z ${PYTHON:-} ]]; then
    py=python3
    [[ -n ${VIRTUAL_ENV:-} && -x $VIRTUAL_ENV/bin/python ]] && py=$VIRTUAL_ENV/bin/python
    PYTHON=$("$py" -c 'import sys; print(sys.executable)')
fi
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
log "python: $PYTHON"

default_args="-p xeclient.pytest_plugin -p pytest_timeout -m realkernel tests/realkernel -q -rs"
if (($#)); then
    pytest_args=("$@")
else
    read -r -a pytest_args <<<"${RK_PYTEST_ARGS:-$default_args}"
fi

kdir=$("$RK_DIR/build-kernel.sh" | tail -n 1)
t1=$(now)
log "kernel: $kdir/bzImage ($(secs "$t0" "$t1") s to build or find)"

out=${RK_CI_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/xeclient-rk-ci.XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/junit.xml"
# Autoloaded plugins (hypothesis, benchmark) cost seconds under TCG; the default arguments load the
# two we need with -p, and -p of an entry-point plugin that also autoloads is an error.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1

rc=0
"$RK_DIR/run-in-vm.sh" --kernel "$kdir" --timeout "${RK_TIMEOUT:-600}" --out "$out" -- \
    "$PYTHON" -m pytest "${pytest_args[@]}" --junitxml="$out/junit.xml" || rc=$?
t2=$(now)

if ((rc == 5)); then
    log "FAIL: pytest collected no test in the VM (exit 5)"
    rc=1
elif ((rc == 0)); then
    passed=$("$PYTHON" - "$out/junit.xml" <<'PY' || echo error
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
n = sum(int(s.get(k, 0)) * (1 if k == "tests" else -1)
        for s in suites for k in ("tests", "skipped", "failures", "errors"))
print(n)
PY
)
    if [[ $passed == error || $passed -le 0 ]]; then
        log "FAIL: no test passed in the VM (everything skipped, or no junit report)"
        rc=1
    else
        log "$passed test(s) passed in the VM"
    fi
fi
log "wall times: kernel $(secs "$t0" "$t1") s, VM run $(secs "$t1" "$t2") s, total $(secs "$t0" "$t2") s; exit $rc"
if [[ -z ${RK_CI_OUT:-} && $rc == 0 ]]; then
    rm -rf "$out"
else
    log "artifacts (console.log, junit.xml): $out"
fi
exit "$rc"
