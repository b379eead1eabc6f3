"""Resource errors are the user's (issue 32, item 3): a size that cannot fit is refused before
it is tried, with the number and the machine's; running out of memory anyway, or out of disk
space on any write, is a one-line error (exit 2) that says so and names the file."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.test_cli import TINY, run


@pytest.mark.parametrize("setting", ["model.d_model=10000000", "train.batch_size=10000000000", "model.n_ctx=1000000"])
def test_an_impossible_size_from_the_config_is_refused_before_it_is_tried(setting, tmp_path, capsys):
    began = time.perf_counter()
    code, out, err = run(capsys, "train", "--out", str(tmp_path / "run"), "--no-progress", "--set", setting)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "GiB of memory" in err and "this machine has" in err and "internal error" not in err
    assert time.perf_counter() - began < 30 and not (tmp_path / "run").exists()


def test_running_out_of_memory_where_the_config_does_not_say_is_a_user_error(tmp_path, capsys):
    assert run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)[0] == 0
    code, _, err = run(capsys, "evaluate", str(tmp_path), "--batch-size", str(10**13))
    assert code == 2 and "out of memory" in err and "internal error" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("metrics", [None, ""])
def test_memories_on_a_run_without_metrics_records_is_a_clear_error(metrics, tmp_path, capsys):
    assert run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)[0] == 0
    if metrics is None:
        (tmp_path / "metrics.jsonl").unlink()
    else:
        (tmp_path / "metrics.jsonl").write_text(metrics)
    code, _, err = run(capsys, "memories", str(tmp_path), "--no-progress")
    assert code == 2 and "metrics.jsonl is missing or holds no record" in err and "--overwrite" in err, err


@pytest.fixture
def small_disk(tmp_path):
    """A real 32 KiB file system (tmpfs), where a tiny run's config fits and its checkpoint or a
    figure does not; skipped where mounting is not allowed (not root, or a locked-down container)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_while_writing_a_checkpoint_says_no_space_left_and_which_file(small_disk, capsys):
    out = small_disk / "run"
    code, _, err = run(capsys, "train", "--out", str(out), "--no-progress", *TINY, "--set", "model.d_model=64")
    assert code == 2 and "no space left on the device" in err and "internal error" not in err, err
    assert str(out / "checkpoint.pt") in err and err.count("\n") == 1
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no half-written file left


def test_a_full_disk_while_writing_figures_says_no_space_left(small_disk, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(capsys, "train", "--out", str(run_dir), "--no-progress", *TINY)[0] == 0
    code, _, err = run(capsys, "memories", str(run_dir), "--out", str(small_disk / "figs"), "--no-progress")
    assert code == 2 and "no space left on the device" in err and str(small_disk / "figs") in err, err
