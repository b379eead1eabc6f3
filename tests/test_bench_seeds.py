"""benchmarks/bench_seeds.py: seeds per minute one after another, the batching bound, and vmap
over stacked plain models. No time is asserted; what can fail is the script's own check that a
vmapped seed's gradient is that seed's own backward, and the table it prints."""

from __future__ import annotations

import pytest

from tests.conftest import run_benchmark

pytestmark = pytest.mark.benchmark  # make test-fast leaves the benchmarks out


def test_it_checks_the_vmap_gradients_and_prints_a_row_per_seed_count():
    out = run_benchmark("bench_seeds.py", "--seeds", "1,3", "--repeats", "1", "--threads", "1")
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("1", "3")]
    assert [row[0] for row in rows] == ["1", "3"]
    assert rows[0][3] == "1.00x"  # S = 1: the bound is the sequential step itself
    assert all(row[-1].endswith("x") and float(row[-1][:-1]) > 0 for row in rows)
