#!/usr/bin/env bash
# make test: the suite on both TransformerLens versions at once, TL 3.9 in .venv and TL 4.3 in
# .venv-tl4, one core and one torch thread each (the suites train small models, for which one
# thread is as fast as two: they would only contend), each in a temporary folder of its own.
# Each suite first builds its venv and writes its bytecode (make VENV/.warm) and starts as soon as
# that is done, without waiting for the other's; the browser is installed beside them.
# A test marked backend_free runs in the one suite it names (tests/conftest.py), every other test
# in both. Each log is printed whole when both have ended, with its slowest tests (where the wall
# time goes). Exits non-zero when either suite fails; pytest exits non-zero when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
unset PYTHONDONTWRITEBYTECODE  # as the Makefile: bytecode is written once, then read by every process
logs=$(mktemp -d)
{ make -s --no-print-directory browser; touch "$logs/browser.done"; } >"$logs/browser.log" 2>&1 &
suite() {  # suite NAME VENV [PYTEST ARGS...]: the suite into logs/NAME.log, its exit status into logs/NAME.rc
    local name=$1 venv=$2 tmp rc=0
    shift 2
    make -s --no-print-directory "$venv/.warm" >"$logs/$name.log" 2>&1 || rc=$?
    while [ ! -e "$logs/browser.done" ]; do sleep 1; done  # the browser test needs it
    if [ "$rc" = 0 ]; then
        tmp=$(mktemp -d)
        TMPDIR=$tmp INDUCTION_BIGRAM_SUITE=$name "$venv/bin/python" -m pytest --durations=20 "$@" >"$logs/$name.log" 2>&1 || rc=$?
        rm -rf "$tmp"
    fi
    echo "$rc" >"$logs/$name.rc"
}
suite tl3 .venv &
suite tl4 .venv-tl4 -p tests.tl4.known_failures &
wait
status=0
cat "$logs/browser.log"
for name in tl3 tl4; do
    echo "=== TransformerLens ${name#tl}: $(tail -n 1 "$logs/$name.log")"
    cat "$logs/$name.log"
    [ "$(cat "$logs/$name.rc")" = 0 ] || status=1
done
rm -rf "$logs"
exit $status
