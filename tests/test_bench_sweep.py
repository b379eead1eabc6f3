"""benchmarks/bench_sweep.py runs the same runs in its three modes; its ``--quick`` smoke version
runs end to end. No time is asserted: the benchmark prints its numbers."""

from __future__ import annotations

import pytest

from benchmarks.bench_sweep import _jobs, sweep_spec
from tests.conftest import run_benchmark

pytestmark = pytest.mark.benchmark  # make test-fast leaves the benchmarks out


def test_the_sweep_is_eight_shortened_quick_runs_and_every_mode_gets_the_same_list(tmp_path):
    spec = sweep_spec(500, ["32", "64"], 4)
    runs = spec.runs()  # what run_sweep (the Ray mode) expands the spec to
    assert len(runs) == 8 and len({run.name for run in runs}) == 8
    assert {(run.config.model.d_model, run.seed) for run in runs} == {(d, s) for d in (32, 64) for s in range(4)}
    for run in runs:
        train = run.config.train
        assert (train.steps, train.eval_every, train.checkpoint_every, train.device) == (500, 500, 500, "cpu")
    jobs = _jobs(spec, runs, tmp_path)  # what the sequential and pool modes run
    assert [(target, config, path) for target, config, path in jobs] == [
        ("train", run.config.to_dict(), str(tmp_path / "runs" / run.name)) for run in runs
    ]


@pytest.mark.slow
@pytest.mark.backend_free("tl3")
def test_the_quick_smoke_version_runs_all_three_modes():
    out = run_benchmark("bench_sweep.py", "--quick")
    for label in ("sequential, 1 process", "ray, ", "naive pool"):
        assert label in out
    assert "sequential vs pool (same threads): largest difference 0: agree exactly" in out
    assert "sequential vs ray" in out
