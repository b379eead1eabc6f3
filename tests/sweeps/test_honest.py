"""Sweeps that cannot lie or hang (issue 32, item 4): a grid value given twice is refused (it
made two runs share one folder and count twice), resources no node has are refused at once with
both numbers, ``--json`` prints only JSON on stdout, and Ray's own notes stay out of our lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from induction_bigram.errors import ConfigError
from induction_bigram.sweeps import SweepSpec
from tests.conftest import REPO
from tests.test_cli import TINY, run


@pytest.mark.parametrize(
    "grid, message",
    [
        (["model.d_model=16,16"], "grid key 'model.d_model' lists the value '16' twice"),
        (["train.lr=0.1,1e-1"], "are the same config"),
    ],
)
def test_a_grid_value_given_twice_is_refused_before_anything_runs(grid, message, tmp_path, capsys):
    argv = ["sweep", "train", "--out", str(tmp_path / "s"), "--no-progress", *TINY]
    code, out, err = run(capsys, *argv, *(f"--grid={g}" for g in grid))
    assert code == 2 and out == "" and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()


def test_a_sweep_file_with_a_repeated_value_is_refused_too():
    with pytest.raises(ConfigError, match="lists the value '32' twice"):
        SweepSpec.from_dict({"grid": {"model.d_model": [32, 64, 32]}})


def test_more_cpus_per_run_than_the_machine_has_is_refused_at_once(tmp_path, capsys):
    code, _, err = run(capsys, "sweep", "train", "--out", str(tmp_path / "s"), "--cpus-per-run", "100000", *TINY)
    assert code == 2 and "--cpus-per-run 100000 is more than this machine's" in err
    assert f"{os.cpu_count()} CPUs" in err and not (tmp_path / "s").exists()


def _sweep(tmp_path, *argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "induction_bigram", "sweep", "train", "--out", str(tmp_path / "s"), *TINY]
    return subprocess.run(
        [*command, "--no-progress", *argv], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.backend_free("tl3")
def test_json_is_the_only_thing_on_stdout_when_a_run_fails_and_ray_adds_no_lines(tmp_path):
    done = _sweep(tmp_path, "--json", "--grid", "train.device=cpu,cuda:7")  # the second fails where it runs
    assert done.returncode == 2, done.stderr
    summary = json.loads(done.stdout)  # stdout is one JSON object and nothing else
    assert summary["runs"] == 2 and len(summary["failed"]) == 1
    lines = done.stderr.strip().splitlines()
    assert any("failed" in line for line in lines) and lines[-1].startswith("induction-bigram: error: 1 of 2 runs")
    assert "Token authentication" not in done.stderr


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.backend_free("tl3")
def test_gpus_no_node_has_are_refused_at_once_with_both_numbers(tmp_path):
    done = _sweep(tmp_path, "--gpus-per-run", "1")
    assert done.returncode == 2
    if "largest has 0" not in done.stderr:
        pytest.skip("this machine has a GPU")
    assert "--gpus-per-run 1: no node of the Ray cluster has that many GPUs (the largest has 0)" in done.stderr
