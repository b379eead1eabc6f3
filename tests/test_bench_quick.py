"""benchmarks/bench_quick.py times whole command-line runs, this checkout's and an older
revision's, and reports their accuracy. No time is asserted: the benchmark prints its numbers."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from tests.conftest import REPO, run_benchmark

pytestmark = pytest.mark.benchmark  # make test-fast leaves the benchmarks out


@pytest.mark.slow
@pytest.mark.backend_free("tl4")  # the benchmark's own code; what it times is the backend installed
def test_it_runs_each_variant_and_reports_accuracy_and_ratios():
    out = run_benchmark("bench_quick.py", "--seeds", "1", "--steps", "4", "--baseline", "HEAD")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert set(rows) == {"fused", "forward", "HEAD"}
    assert rows["fused"][-1] == "1.00x"
    assert all(0.0 <= float(row[4]) <= 1.0 for row in rows.values())  # the mean accuracy
    # Only this run's scratch folder counts: CI runs the TL 3 and TL 4 suites at once on one
    # repository, each with its own TMPDIR, so the other suite's worktree may be listed.
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    scratch = os.path.realpath(tempfile.gettempdir())
    ours = [line for line in worktrees.splitlines() if os.path.realpath(line.split()[0]).startswith(scratch)]
    assert not [line for line in ours if "tree-HEAD" in line]  # the baseline's worktree is removed
