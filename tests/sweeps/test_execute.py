"""Sweeps on a real Ray: local, on a simulated two-node cluster, killed and resumed, with a
failing run. Every run is a shortened ``quick`` training on one thread, so that the same run
gives bitwise the same numbers in any process."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from induction_bigram.sweeps import SweepSpec, run_sweep
from induction_bigram.sweeps.table import TIMING
from induction_bigram.training.checkpoint import load_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.backend_free("tl3")]

SHORT = (
    "task.seq_len=16",
    "model.n_ctx=16",
    "train.steps=300",
    "train.batch_size=16",
    "train.eval_every=100",
    "train.eval_batch_size=32",
    "train.checkpoint_every=100",
    "train.device=cpu",
)
SPEC = SweepSpec(preset="quick", overrides=SHORT, grid={"model.d_model": ("16", "32")}, seeds=3)


def _numbers(table):
    """The rows without what measures the machine (times, which node ran it)."""
    return [{k: v for k, v in row.items() if k not in (*TIMING, "seconds")} for row in table.rows]


@pytest.fixture
def own_ray(uninterrupted):
    """For a test that starts a Ray of its own, after the module's sweep: the module's local Ray is
    stopped first, since its idle processes slow the other down. A later test's ``run_sweep``
    starts a Ray itself."""
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def uninterrupted(local_ray, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    return folder, run_sweep(SPEC, folder, progress=False)


def test_a_sweep_writes_one_ordinary_run_folder_per_run_and_the_tables(uninterrupted):
    folder, table = uninterrupted
    assert [row["status"] for row in table.rows] == ["done"] * 6
    for row in table.rows:
        ckpt = load_checkpoint(folder / "runs" / row["run"], "cpu")  # `evaluate`, `memories`... work on it
        assert ckpt.step == 300 and ckpt.config.model.d_model == int(row["model.d_model"])
        assert ckpt.config.train.seed == row["seed"] == ckpt.config.model.seed
    aggregate = json.loads((folder / "aggregate.json").read_text())
    assert [p["n"] for p in aggregate["points"]] == [3, 3]
    for point in aggregate["points"]:
        assert (
            point["in_context_accuracy.low"] <= point["in_context_accuracy.mean"] <= point["in_context_accuracy.high"]
        )
    assert (folder / "runs.csv").read_text().count("\n") == 7


def test_asking_again_runs_nothing(uninterrupted):
    folder, table = uninterrupted
    records = (folder / "runs.jsonl").read_text()
    again = run_sweep(SPEC, folder, progress=False)
    assert _numbers(again) == _numbers(table) and (folder / "runs.jsonl").read_text() == records


def test_a_failing_run_is_recorded_and_the_others_complete(local_ray, tmp_path):
    spec = SweepSpec(preset="quick", overrides=SHORT, grid={"train.lr": ("0.03", "1e30")}, seeds=1)
    table = run_sweep(spec, tmp_path, progress=False)
    done, failed = table.rows
    assert done["status"] == "done" and failed["status"] == "failed"
    assert "TrainingDivergedError" in failed["error"]
    first = (tmp_path / "runs" / done["run"] / "checkpoint.pt").stat().st_mtime_ns
    run_sweep(spec, tmp_path, progress=False)  # reruns the failed run only
    assert (tmp_path / "runs" / done["run"] / "checkpoint.pt").stat().st_mtime_ns == first


def test_another_sweep_into_the_same_folder_is_refused(uninterrupted):
    folder, _ = uninterrupted
    other = SweepSpec(preset="quick", overrides=(*SHORT, "train.lr=0.1"), grid=SPEC.grid, seeds=3)
    with pytest.raises(Exception, match="made with another config"):
        run_sweep(other, folder, progress=False)


def test_a_record_without_a_setting_added_since_is_the_same_config(uninterrupted):
    """A record written before a setting existed reads back with its default: the same sweep."""
    folder, table = uninterrupted
    path = folder / "runs.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    older = [
        {**r, "config": {**r["config"], "model": {k: v for k, v in r["config"]["model"].items() if k != "ffn_reads"}}}
        for r in records
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in older))
    try:
        assert _numbers(run_sweep(SPEC, folder, progress=False)) == _numbers(table)
    finally:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_two_node_cluster_runs_the_same_sweep_to_the_same_table(uninterrupted, own_ray, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        table = run_sweep(SPEC, tmp_path, address=cluster.address, progress=False)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert _numbers(table) == _numbers(uninterrupted[1])
    records = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len({r["node"] for r in records}) == 2  # both nodes ran some


def test_ctrl_c_keeps_the_finished_runs_and_the_same_command_finishes_the_sweep(uninterrupted, own_ray, tmp_path):
    argv = [sys.executable, "-m", "induction_bigram", "sweep", "train", "--out", str(tmp_path), "--preset", "quick"]
    argv += [arg for item in SHORT for arg in ("--set", item)] + ["--grid", "model.d_model=16,32", "--seeds", "3"]
    argv += ["--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    records = tmp_path / "runs.jsonl"
    deadline = time.monotonic() + 240
    while not (records.exists() and records.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    finished = [json.loads(line) for line in records.read_text().splitlines()]
    assert proc.returncode == 130 and 1 <= len(finished) < 6, (proc.returncode, len(finished), proc.stderr.read())
    done = subprocess.run(argv + ["--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["failed"] == []
    rows = [dict(r) for r in __import__("csv").DictReader((tmp_path / "runs.csv").open())]
    expected = [dict(r) for r in __import__("csv").DictReader((uninterrupted[0] / "runs.csv").open())]
    drop = (*TIMING, "seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in expected
    ]
