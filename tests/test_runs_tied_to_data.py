"""Runs tied to their data (issue 32, item 5): a standard run stores its text's absolute path and
content hash; resuming on an edited text is refused, the same text by another path is not;
a resume names the wrong kind of folder, suggests --overwrite for a run without a checkpoint,
and an empty --out is refused."""

from __future__ import annotations

import json
import os

import pytest

from tests.test_cli import TINY, run

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40
STANDARD = ["--preset", "standard-test", "--no-progress", "--set", "train.steps=2"]


@pytest.fixture
def standard_run(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text(TEXT)
    out = tmp_path / "standard"
    old = os.getcwd()
    os.chdir(tmp_path)  # --text as a user gives it: relative
    try:
        assert run(capsys, "standard", "--text", "corpus.txt", "--out", "standard", *STANDARD)[0] == 0
    finally:
        os.chdir(old)
    return text, out


def test_a_standard_run_stores_its_texts_absolute_path_and_hash(standard_run):
    import hashlib

    text, out = standard_run
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["text"] == str(text.resolve()) and data["sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()


def test_resume_from_elsewhere_finds_the_text_and_more_steps_are_no_conflict(standard_run, capsys):
    _, out = standard_run
    code, _, err = run(capsys, "standard", "--out", str(out), "--resume", "--no-progress", "--set", "train.steps=4")
    assert code == 0, err


def test_the_same_text_by_another_path_is_accepted(standard_run, tmp_path, capsys):
    text, out = standard_run
    copy = tmp_path / "elsewhere" / "same.txt"
    copy.parent.mkdir()
    copy.write_text(TEXT)
    code, _, err = run(capsys, "standard", "--out", str(out), "--resume", "--text", str(copy), "--no-progress")
    assert code == 0, err


def test_resume_on_an_edited_text_is_refused(standard_run, capsys):
    text, out = standard_run
    text.write_text(TEXT.replace("cat", "act"))  # the same characters: only the hash can tell
    code, _, err = run(capsys, "standard", "--out", str(out), "--resume", "--no-progress", "--set", "train.steps=4")
    assert code == 2 and "is not the one it was trained on" in err and "--overwrite" in err, err
    assert "train.steps" not in err


def test_a_different_config_lists_only_what_may_not_change(standard_run, capsys):
    _, out = standard_run
    code, _, err = run(
        capsys, "standard", "--out", str(out), "--resume", "--no-progress", "--set", "train.steps=4",
        "--set", "train.lr=0.5",
    )  # fmt: skip
    assert code == 2 and "train.lr" in err and "train.steps" not in err, err


def test_standard_resume_on_a_training_run_says_wrong_kind_of_folder(tmp_path, capsys):
    assert run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)[0] == 0
    code, _, err = run(capsys, "standard", "--out", str(tmp_path), "--resume", "--no-progress")
    assert code == 2 and "is a run of `train`, the wrong kind of folder for `standard`" in err, err


def test_train_resume_on_a_standard_run_says_wrong_kind_of_folder(standard_run, capsys):
    _, out = standard_run
    code, _, err = run(capsys, "train", "--out", str(out), "--resume", "--no-progress")
    assert code == 2 and "is a run of `standard`, the wrong kind of folder for `train`" in err, err


@pytest.mark.parametrize("command", ["evaluate", "memories"])
def test_a_circuit_analysis_of_a_standard_run_names_the_family(standard_run, command, capsys):
    _, out = standard_run
    code, _, err = (
        run(capsys, command, str(out), "--no-progress") if command == "memories" else run(capsys, command, str(out))
    )
    assert code == 2 and "is a run of `standard`, not of `train`" in err, err


def test_resume_of_a_run_without_its_first_checkpoint_suggests_overwrite(tmp_path, capsys):
    assert run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)[0] == 0
    (tmp_path / "checkpoint.pt").unlink()  # as a first checkpoint that failed (disk full, killed) leaves it
    code, _, err = run(capsys, "train", "--out", str(tmp_path), "--resume", "--no-progress")
    assert code == 2 and "holds no checkpoint.pt" in err and "--overwrite" in err, err
    assert run(capsys, "train", "--out", str(tmp_path), "--overwrite", "--no-progress", *TINY)[0] == 0


@pytest.mark.parametrize("command", [["train"], ["lengths"], ["sweep", "train"], ["reproduce"]])
def test_an_empty_out_is_refused_not_taken_as_the_current_folder(command, capsys):
    code, out, err = run(capsys, *command, "--out", "")
    assert code == 2 and out == "" and "argument --out: an empty path" in err
