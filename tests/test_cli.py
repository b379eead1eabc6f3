import json
import subprocess
import sys

import pytest

from induction_bigram.cli import main

TINY = [
    "--set",
    "model.d_model=16",
    "--set",
    "model.n_ctx=16",
    "--set",
    "task.seq_len=16",
    "--set",
    "train.steps=6",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.eval_every=3",
    "--set",
    "train.eval_batch_size=8",
    "--set",
    "train.device=cpu",
]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_evaluate_json(tmp_path, capsys):
    code, out, _ = run(capsys, "train", "--preset", "quick", "--out", str(tmp_path), "--no-progress", "--json", *TINY)
    assert code == 0 and json.loads(out)["step"] == 6
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 6
    code, out, _ = run(capsys, "evaluate", str(tmp_path), "--json", "--seed", "3", "--batch-size", "16")
    summary = json.loads(out)
    assert code == 0
    assert isinstance(summary["in_context_accuracy"], float) and isinstance(summary["bigram_loss"], float)
    assert summary["batch_size"] == 16 and summary["seed"] == 3
    code, out, _ = run(capsys, "evaluate", str(tmp_path))
    assert code == 0 and "in_context_accuracy" in out


def test_resume_continues_from_the_run_folder(tmp_path, capsys):
    run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)
    code, out, _ = run(
        capsys, "train", "--out", str(tmp_path), "--resume", "--no-progress", "--json", "--set", "train.steps=9"
    )
    assert code == 0 and json.loads(out)["step"] == 9


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--out", "x", "--set", "model.d_model=0"], "model.d_model must be >= 2, got 0"),
        (["train", "--out", "x", "--set", "model.layers=3"], "unknown config key 'model.layers'"),
        (["train", "--out", "x", "--preset", "giant"], "unknown preset 'giant'"),
        (["train", "--out", "nowhere", "--resume"], "nothing to resume"),
        (["evaluate", "no/such/run"], "no checkpoint at"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_on_stderr(argv, message, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_python_dash_m_entry_point_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = subprocess.run(
        [sys.executable, "-m", "induction_bigram", "evaluate", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("induction-bigram: error:") and "Traceback" not in proc.stderr


def test_evaluate_reports_the_memories_and_memories_writes_figures(tmp_path, capsys):
    run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)
    code, out, _ = run(capsys, "evaluate", str(tmp_path), "--json")
    memories = json.loads(out)["memories"]
    assert code == 0 and set(memories) == {"W_O2", "W_K2", "W_K1"}
    for entry in memories.values():
        assert isinstance(entry["recall"], float) and "margin" in entry and "cosine" in entry
    assert {"recall_causal", "recall_first64"} <= set(memories["W_K1"])
    code, out, _ = run(capsys, "memories", str(tmp_path), "--json")
    figures = json.loads(out)["figures"]
    assert code == 0 and len(figures) == 2
    for figure in figures:
        assert open(figure, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_logits_reports_theory_patching_and_hijack(tmp_path, capsys):
    run(capsys, "train", "--preset", "amt-quick", "--out", str(tmp_path), "--no-progress", *TINY)
    code, out, _ = run(capsys, "logits", str(tmp_path), "--json", "--per-cell", "3")
    summary = json.loads(out)
    assert code == 0
    assert isinstance(summary["theory_r2"], float) or summary["theory_r2"] is None
    assert isinstance(summary["patch_restore_layer2_head"], float)
    assert summary["hijack_threshold"] is None or isinstance(summary["hijack_threshold"], int)
    assert {r["name"] for r in summary["theory"]["rungs"]} == {
        "counts",
        "projections",
        "projections_fitted",
        "measured_attention",
    }
    assert len(summary["figures"]) == 4 and all(open(f, "rb").read(4) == b"\x89PNG" for f in summary["figures"])


def test_logits_needs_a_two_layer_model(tmp_path, capsys):
    run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY, "--set", "model.positional=nope")
    code, _, err = run(capsys, "logits", str(tmp_path))
    assert code == 2 and "needs a 2-layer model" in err


def test_lengths_prints_the_accuracy_by_length_of_every_variant(tmp_path, capsys):
    code, out, _ = run(capsys, "lengths", "--out", str(tmp_path), "--preset", "test", "--no-progress", "--json")
    variants = json.loads(out)["variants"]
    assert code == 0 and set(variants) == {"ape", "rpe", "rope", "nope"}
    for variant in variants.values():
        assert set(variant["accuracy_by_length"]) == {"1x", "2x", "3x", "4x"}
    assert (tmp_path / "lengths.json").is_file() and (tmp_path / "lengths_attention.html").is_file()
    assert len(list((tmp_path / "figures").glob("lengths_*.png"))) == 3


def test_reproduce_refuses_an_unknown_study(tmp_path, capsys):
    code, _, err = run(capsys, "reproduce", "--out", str(tmp_path), "--only", "everything")
    assert code == 2 and "unknown study 'everything'" in err
