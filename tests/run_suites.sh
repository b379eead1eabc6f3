#!/usr/bin/env bash
# make test: the suite on both TransformerLens versions at once, TL 3.9 in .venv and TL 4.3 in
# .venv-tl4, one core and one torch thread each (the suites train small models, for which one
# thread is as fast as two: they would only contend), each in a temporary folder of its own.
# A test marked backend_free runs in the one suite it names (tests/conftest.py), every other test
# in both. Each log is printed whole when both have ended, with its slowest tests (where the wall
# time goes). Exits non-zero when either suite fails; pytest exits non-zero when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
logs=$(mktemp -d)
suite() {  # suite NAME PYTHON [PYTEST ARGS...]: the suite into logs/NAME.log, its exit status into logs/NAME.rc
    local name=$1 python=$2 tmp rc=0
    shift 2
    tmp=$(mktemp -d)
    TMPDIR=$tmp INDUCTION_BIGRAM_SUITE=$name "$python" -m pytest --durations=20 "$@" >"$logs/$name.log" 2>&1 || rc=$?
    echo "$rc" >"$logs/$name.rc"
    rm -rf "$tmp"
}
suite tl3 .venv/bin/python &
suite tl4 .venv-tl4/bin/python -p tests.tl4.known_failures &
wait
status=0
for name in tl3 tl4; do
    echo "=== TransformerLens ${name#tl}: $(tail -n 1 "$logs/$name.log")"
    cat "$logs/$name.log"
    [ "$(cat "$logs/$name.rc")" = 0 ] || status=1
done
rm -rf "$logs"
exit $status
