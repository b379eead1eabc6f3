import json
import subprocess
import sys
from pathlib import Path

import pytest

from induction_bigram import train
from induction_bigram.cli import main
from induction_bigram.errors import RunFolderError
from tests.conftest import tiny_config

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
        (["train", "--out", "x", "--preset", "giant"], "unknown run preset 'giant'"),
        (["train", "--out", "nowhere", "--resume"], "nothing to resume"),
        (["evaluate", "no/such/run"], "no checkpoint at"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_on_stderr(argv, message, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.backend_free("tl4")  # the error comes before any model is built
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
    assert code == 0 and [Path(f).name for f in figures] == [
        "memories_coefficients.png",
        "memories_training.png",
        "attention.html",
    ]
    for figure in figures[:2]:
        assert open(figure, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "<html>" in Path(figures[2]).read_text()


def test_incontext_reports_theory_patching_and_hijack(tmp_path, capsys):
    run(capsys, "train", "--preset", "amt", "--out", str(tmp_path), "--no-progress", *TINY)
    code, out, _ = run(capsys, "incontext", str(tmp_path), "--json", "--set", "incontext.per_cell=3")
    summary = json.loads(out)
    assert code == 0
    assert isinstance(summary["theory_r2"], float) or summary["theory_r2"] is None
    # a model trained a few steps may leave a clean/corrupted gap within noise: then no fraction (null)
    measurable = summary["patching"]["replace_outputs"]["gap_measurable"]
    assert (
        isinstance(summary["patch_restore_layer2_head"], float)
        if measurable
        else summary["patch_restore_layer2_head"] is None
    )
    assert summary["hijack_threshold"] is None or isinstance(summary["hijack_threshold"], int)
    assert {r["name"] for r in summary["theory"]["rungs"]} == {
        "counts",
        "projections",
        "projections_fitted",
        "measured_attention",
    }
    assert len(summary["figures"]) == 5 and all(open(f, "rb").read(4) == b"\x89PNG" for f in summary["figures"])
    paths = summary["paths"]
    assert paths["in_context_share_direct"] + paths["in_context_share_through_ffn"] == pytest.approx(1.0)
    assert set(paths["by_path"]["L1H0"]) == {"direct", "mlp"}


def test_incontext_needs_a_two_layer_model(tmp_path, capsys):
    run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY, "--set", "model.positional=nope")
    code, _, err = run(capsys, "incontext", str(tmp_path))
    assert code == 2 and "needs a 2-layer model" in err


def test_lengths_prints_the_accuracy_by_length_of_every_variant(tmp_path, capsys):
    code, out, _ = run(capsys, "lengths", "--out", str(tmp_path), "--preset", "test", "--no-progress", "--json")
    variants = json.loads(out)["variants"]
    assert code == 0 and set(variants) == {"ape", "rpe", "rope", "nope", "rpe-clipped", "rpe-logn"}
    for variant in variants.values():
        assert set(variant["accuracy_by_length"]) == {"1x", "2x", "3x", "4x", "6x", "8x"}
    assert (tmp_path / "result.json").is_file() and (tmp_path / "figures" / "lengths_attention.html").is_file()
    assert len(list((tmp_path / "figures").glob("lengths_*.png"))) == 3


def test_reproduce_refuses_an_unknown_study(tmp_path, capsys):
    code, _, err = run(capsys, "reproduce", "--out", str(tmp_path), "--only", "everything")
    assert code == 2 and "unknown study 'everything'" in err


# -- issue 11: no silent wrong answers, no lost or clobbered files ----------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One finished tiny run, shared by the error cases that only read it."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--out", str(run_dir), "--no-progress", *TINY]) == 0
    return run_dir


def _ours(folder, kind, **files):
    """A folder marked as the package's ``kind`` holding ``files`` (name -> text)."""
    from induction_bigram.files import claim_folder

    with claim_folder(folder, kind):
        for name, text in files.items():
            (folder / name.replace("_", ".")).write_text(text)
    return folder


def _user_config(tmp, run):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "config.json").write_text('{"my": "own settings"}')
    return ["train", "--out", str(tmp / "mine"), *TINY], ["--out", "mine", "not empty", "config.json"]


def _lengths_into_a_run(tmp, run):
    return ["lengths", "--out", str(run), "--preset", "test"], [str(run), "training run folder", "lengths study"]


def _lengths_again(tmp, run):
    _ours(tmp / "study", "lengths", result_json="{}")
    return ["lengths", "--out", str(tmp / "study"), "--preset", "test"], ["already holds a lengths study", "--resume"]


def _reproduce_into_a_run(tmp, run):
    return ["reproduce", "--out", str(run), "--preset", "test"], [str(run), "training run folder"]


def _train_into_a_run(tmp, run):
    return ["train", "--out", str(run), *TINY], [str(run), "already holds a run", "--overwrite"]


def _out_is_a_file(tmp, run):
    (tmp / "file").write_text("x")
    return ["train", "--out", str(tmp / "file"), *TINY], ["--out", str(tmp / "file"), "is a file"]


def _out_unwritable(tmp, run):
    (tmp / "file").write_text("x")
    return ["train", "--out", str(tmp / "file" / "run"), *TINY], ["cannot create --out", str(tmp / "file")]


def _set(key_value):
    def case(tmp, run):
        return ["train", "--out", str(tmp / "new"), "--no-progress", *TINY, "--set", key_value], [
            "--set",
            key_value.split("=")[0],
        ]

    return case


def _diverges(tmp, run):
    argv = [
        "train",
        "--out",
        str(tmp / "new"),
        "--no-progress",
        *TINY,
        "--set",
        "train.lr=1e30",
        "--set",
        "train.checkpoint_every=1",
    ]
    return argv, ["training diverged at step 2", "train.lr=1e+30", "last good checkpoint (step 1)"]


def _memories_of_a_file(tmp, run):
    return ["memories", str(run / "checkpoint.pt")], ["memories takes a run folder", "checkpoint.pt", str(run)]


def _incontext_of_a_file(tmp, run):
    return ["incontext", str(run / "checkpoint.pt")], ["incontext takes a run folder", "checkpoint.pt"]


def _resume_config(text):
    def case(tmp, run):
        _ours(tmp / "r", "run", config_json=text)
        return ["train", "--out", str(tmp / "r"), "--resume"], ["--resume", str(tmp / "r" / "config.json")]

    return case


def _torn_in_the_middle(tmp, run):
    import shutil

    shutil.copytree(run, tmp / "r")
    lines = (tmp / "r" / "metrics.jsonl").read_text().splitlines()
    (tmp / "r" / "metrics.jsonl").write_text("\n".join([lines[0][:20], *lines[1:]]) + "\n")
    return ["memories", str(tmp / "r")], [str(tmp / "r" / "metrics.jsonl"), "line 1"]


ISSUE_11_CASES = {
    "train into the user's own folder": _user_config,
    "lengths into a training run": _lengths_into_a_run,
    "lengths over an earlier study": _lengths_again,
    "reproduce into a training run": _reproduce_into_a_run,
    "train over an earlier run": _train_into_a_run,
    "--out is a file": _out_is_a_file,
    "--out cannot be created": _out_unwritable,
    "lr=inf": _set("train.lr=inf"),
    "lr=nan": _set("train.lr=nan"),
    "momentum=nan": _set("train.momentum=nan"),
    "weight_decay=-inf": _set("train.weight_decay=-inf"),
    "seed too big": _set("train.seed=99999999999999999999"),
    "loss becomes non-finite": _diverges,
    "memories of a checkpoint file": _memories_of_a_file,
    "incontext of a checkpoint file": _incontext_of_a_file,
    "garbage config.json on --resume": _resume_config("{not json"),
    "config section null on --resume": _resume_config('{"train": null}'),
    "torn line inside metrics.jsonl": _torn_in_the_middle,
    "--seed too big": lambda tmp, run: (
        ["evaluate", str(run), "--seed", "99999999999999999999"],
        ["--seed", "99999999999999999999"],
    ),
    "--device banana": lambda tmp, run: (["evaluate", str(run), "--device", "banana"], ["--device", "'banana'"]),
    "--resume and --overwrite": lambda tmp, run: (
        ["train", "--out", str(run), "--resume", "--overwrite"],
        ["--overwrite", "--resume"],
    ),
}


@pytest.mark.parametrize("case", list(ISSUE_11_CASES))
def test_user_errors_exit_2_with_one_line_naming_the_culprit(case, tmp_path, trained_run, capsys):
    argv, needles = ISSUE_11_CASES[case](tmp_path, trained_run)
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert err.startswith("induction-bigram: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and ".tmp" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom induction_bigram.files import claim_folder\n"
            f"with claim_folder({str(tmp_path / 'run')!r}, 'run') as run:\n"
            "    (run / 'config.json').write_text('{}')  # a run under way\n"
            "    print('held', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for flags in ([], ["--resume"], ["--overwrite"]):
            code, _, err = run(capsys, "train", "--out", str(tmp_path / "run"), "--no-progress", *TINY, *flags)
            assert code == 2 and f"PID {holder.pid}" in err and err.count("\n") == 1, (flags, err)
        with pytest.raises(RunFolderError, match=f"PID {holder.pid}"):
            train(tiny_config(), tmp_path / "run", overwrite=True, progress=False)
    finally:
        holder.kill()
        holder.wait()
    # a killed holder leaves no stale lock
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "run"), "--overwrite", "--no-progress", *TINY)
    assert code == 0, err


def test_overwrite_replaces_only_the_files_we_wrote(tmp_path, capsys):
    run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)
    (tmp_path / "notes.txt").write_text("mine")
    code, out, err = run(
        capsys,
        "train",
        "--out",
        str(tmp_path),
        "--overwrite",
        "--no-progress",
        "--json",
        *TINY,
        "--set",
        "train.steps=3",
    )
    assert code == 0, err
    assert json.loads(out)["step"] == 3 and (tmp_path / "notes.txt").read_text() == "mine"
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [0, 3]


def test_zero_steps_writes_a_checkpoint_that_evaluates_and_resumes(tmp_path, capsys):
    code, out, _ = run(
        capsys, "train", "--out", str(tmp_path), "--no-progress", "--json", *TINY, "--set", "train.steps=0"
    )
    assert code == 0 and json.loads(out)["step"] == 0
    code, out, _ = run(capsys, "evaluate", str(tmp_path), "--json", "--batch-size", "8")
    assert code == 0 and json.loads(out)["step"] == 0
    code, out, _ = run(
        capsys, "train", "--out", str(tmp_path), "--resume", "--no-progress", "--json", "--set", "train.steps=3"
    )
    assert code == 0 and json.loads(out)["step"] == 3


def test_a_torn_last_metrics_line_is_dropped_with_a_warning_on_resume(tmp_path, capsys):
    run(capsys, "train", "--out", str(tmp_path), "--no-progress", *TINY)
    metrics = tmp_path / "metrics.jsonl"
    with open(metrics, "a") as handle:
        handle.write('{"step": 9, "train_lo')  # killed while appending
    code, out, err = run(capsys, "memories", str(tmp_path), "--json")
    assert code == 0 and "dropped a torn last line" in err and str(metrics) in err
    code, out, err = run(capsys, "train", "--out", str(tmp_path), "--resume", "--no-progress", "--set", "train.steps=9")
    assert code == 0 and "torn last line" in err
    records = [json.loads(line) for line in metrics.read_text().splitlines()]  # whole again
    assert [r["step"] for r in records] == [0, 3, 6, 9]


def test_diverged_run_keeps_strict_json_and_its_last_good_checkpoint(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path), "--no-progress", *TINY, "--set", "train.lr=1e30"]
    code, _, err = run(capsys, *argv, "--set", "train.checkpoint_every=1")
    assert code == 2 and "diverged" in err

    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")

    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
    code, out, _ = run(capsys, "evaluate", str(tmp_path), "--json", "--batch-size", "8")
    assert code == 0 and json.loads(out)["step"] == 1


def test_study_folders_refuse_runs_and_take_resume(tmp_path, capsys):
    from induction_bigram.files import folder_kind

    _ours(tmp_path / "study", "lengths", lengths_json="{}")
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "study"), *TINY)
    assert code == 2 and "is a lengths study folder, not a training run folder" in err
    assert folder_kind(tmp_path / "study") == "lengths"


def test_every_flag_has_help():
    from induction_bigram.cli import build_parser

    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for name, sub in subcommands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    train_help = subcommands.choices["train"].format_help()
    assert "induction-bigram presets NAME" in train_help and "task.corpus=path/to/text.txt" in train_help


def test_every_command_and_flag_the_guide_shows_exists():
    """The user guide's command table and the parser agree, both ways for the commands."""
    import re

    from induction_bigram.cli import build_parser
    from tests.conftest import REPO

    guide = (REPO / "docs" / "guide.md").read_text()
    table = guide.split("## Command line")[1].split("\n\n")[2]
    rows = re.findall(r"^\| `([a-z-]+)([^`]*)` \|", table, flags=re.M)
    subparsers = next(a for a in build_parser()._actions if a.choices and isinstance(a.choices, dict))
    assert {command for command, _ in rows} == set(subparsers.choices)
    for command, usage in rows:
        known = {flag for action in subparsers.choices[command]._actions for flag in action.option_strings}
        assert set(re.findall(r"--[a-z-]+", usage)) <= known, command
        for name in re.findall(r"--preset ([a-z][a-z-]*)", usage):
            assert name in _presets_of(command), (command, name)


def _presets_of(command):
    from induction_bigram.config import PRESETS
    from induction_bigram.report.reproduce import PRESETS as REPORT
    from induction_bigram.studies import STUDIES

    studies = {study.command.name: study.presets for study in STUDIES.values()}
    return {"train": PRESETS, "reproduce": REPORT, **studies}[command]


def test_figures_into_a_run_being_written_are_refused_naming_the_holder(trained_run, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom induction_bigram.files import claim_folder\n"
            f"with claim_folder({str(trained_run)!r}, 'run', existing='resume'):\n"
            "    print('held', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run(capsys, "memories", str(trained_run))
        assert code == 2 and f"PID {holder.pid}" in err and err.count("\n") == 1, err
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run(capsys, "memories", str(trained_run))
    assert code == 0, err


# -- issue 12: one config system, --preset/--set everywhere, --json prints only JSON ----------


def test_capacity_takes_preset_and_set_and_prints_only_json(tmp_path, capsys):
    code, out, err = run(
        capsys, "capacity", "--out", str(tmp_path), "--preset", "test", "--set", "capacity.widths=8", "--json"
    )
    summary = json.loads(out)  # nothing but the JSON object on stdout
    assert code == 0 and [row["d_model"] for row in summary["rows"]] == [8]
    assert (tmp_path / "result.json").is_file() and Path(summary["figures"][0]).name == "capacity.png"


def test_formation_scores_every_step_and_prints_only_json(tmp_path, capsys):
    code, out, _ = run(
        capsys, "formation", "--out", str(tmp_path), "--preset", "test", "--set", "formation.optimizers=adamw", "--json"
    )
    summary = json.loads(out)
    assert code == 0 and set(summary) == {"adamw", "figures"} and "W_K1_minus_W_K2" in summary["adamw"]
    assert (tmp_path / "result.json").is_file() and Path(summary["figures"][0]).name == "formation.png"
    code, _, err = run(capsys, "formation", "--out", str(tmp_path / "x"), "--set", "train.eval_every=50")
    assert code == 2 and "train.eval_every must be 1" in err and err.count("\n") == 1


@pytest.mark.ray
@pytest.mark.backend_free("tl4")
def test_reproduce_json_prints_only_json(tmp_path, capsys):
    code, out, _ = run(capsys, "reproduce", "--out", str(tmp_path), "--preset", "test", "--only", "capacity", "--json")
    assert code == 0 and Path(json.loads(out)["report"]).read_text().startswith("# induction-bigram")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lengths", "--out", "x", "--set", "lengths.multiple=1,2"], "did you mean lengths.multiples?"),
        (["lengths", "--out", "x", "--set", "lengths.multiples=2,3"], "lengths.multiples must"),
        (["capacity", "--out", "x", "--preset", "huge"], "--preset: unknown capacity preset 'huge'"),
        (["reproduce", "--out", "x", "--set", "incontext.incontext.per_cell=0"], "incontext.incontext.per_cell must"),
        (["presets", "lengths", "huge"], "unknown lengths preset 'huge'"),
    ],
)
def test_every_study_command_reports_a_bad_preset_or_key_in_one_line(argv, message, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("command", ["memories", "incontext"])
def test_run_analyses_take_only_their_studys_keys(command, trained_run, capsys):
    code, _, err = run(capsys, command, str(trained_run), "--set", "train.lr=0.1")
    assert code == 2 and "--set train.lr=0.1" in err and "run's own task, model and train" in err


def test_presets_lists_every_study_and_prints_any_preset_as_json(capsys):
    from induction_bigram.report.reproduce import PRESETS as REPORT
    from induction_bigram.studies import STUDIES

    code, out, _ = run(capsys, "presets")
    assert code == 0
    for study in STUDIES.values():  # under its command's name (the markov study's is hijack)
        name = study.command.name
        assert f"{name} presets" in out and all(preset in out for preset in study.presets)
        code, out_one, _ = run(capsys, "presets", name, study.default_preset)
        config = type(study.presets[study.default_preset]).from_dict(json.loads(out_one))
        assert code == 0 and config == study.presets[study.default_preset]
    code, out, _ = run(capsys, "presets", "reproduce", "quick")
    assert code == 0 and type(REPORT["quick"]).from_dict(json.loads(out)) == REPORT["quick"]


def test_the_readable_summary_of_an_analysis_shows_its_numbers(trained_run, capsys, tmp_path):
    code, out, _ = run(capsys, "memories", str(trained_run), "--out", str(tmp_path))
    assert code == 0 and "\n  memories.W_O2.recall " in out and "\n  final.in_context_accuracy " in out
