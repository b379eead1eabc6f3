"""docs/extending.md, "A new study", followed once: a toy study written here (its config and
presets, run, result, figures, claims and REPORT.md section: what a study folder holds) and one
entry in the registry make it a command, a ``reproduce --only`` study and a report section, with
no other file edited. No ``from __future__ import annotations`` here: a config section's
annotations must be types, as in every study's config module."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest

from induction_bigram import BigramStats, TriggerTask
from induction_bigram.claims import Claim, ClaimOverSeeds
from induction_bigram.cli import main
from induction_bigram.config import Presets, StudyConfig, at_least, preset, section, tiny
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.serialise import Record
from induction_bigram.studies import STUDIES, Command, Parts, Study
from induction_bigram.training.metrics import evaluate
from induction_bigram.training.trainer import train

# -- the toy study's folder ----------------------------------------------------------------------


@section("toy")
class ToySettings:
    """The toy study's own keys (``--set toy.eval_batch_size=16``).

    Attributes:
        eval_batch_size: sequences of the batch its trained model is scored on.
    """

    eval_batch_size: int = at_least(1, 8)


@dataclass(frozen=True)
class ToyConfig(StudyConfig):
    """One run's recipe (``task``, ``model``, ``train``) and the toy's own section."""

    toy: ToySettings = ToySettings()


def _quick() -> ToyConfig:
    """The quick recipe, tiny."""
    return ToyConfig.of_run(tiny(preset("quick"), steps=8))


def _test() -> ToyConfig:
    """Four steps of a tiny model."""
    return ToyConfig.of_run(tiny(preset("quick"), steps=4), toy=ToySettings(eval_batch_size=4))


PRESETS: Presets[ToyConfig] = Presets("toy", {"quick": _quick, "test": _test})


@dataclass(frozen=True)
class ToyResult(Record):
    """The trained model's in-context accuracy on a fresh batch."""

    config: ToyConfig
    in_context_accuracy: float

    def summary(self) -> dict[str, Any]:
        return {"in_context_accuracy": self.in_context_accuracy}


def run(config: ToyConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"):
    def compute(folder: Path | None) -> ToyResult:
        trained = train(config.run_config(), None if folder is None else folder / "run", progress=False)
        task = TriggerTask(BigramStats.from_corpus(config.task.corpus), config.task)
        scores = evaluate(trained.model, task, batch_size=config.toy.eval_batch_size, seed=config.train.eval_seed)
        return ToyResult(config, scores.in_context_accuracy)

    return run_in_study_folder(out_dir, "toy", existing, compute)


def figures(result: ToyResult) -> dict[str, Any]:
    figure, ax = plt.subplots(figsize=(2, 2))
    ax.bar(["in-context"], [result.in_context_accuracy])
    return {"toy_accuracy.png": figure}


def claims(result: ToyResult) -> list[Claim]:
    accuracy = result.in_context_accuracy
    return [
        Claim(
            "toy",
            "the toy model scores an in-context accuracy >= 0",
            f"accuracy {accuracy:.3f}",
            value=accuracy,
            threshold=0.0,
            direction=">=",
            statistic="in-context accuracy",
        )
    ]


SECTION_LINE = "The toy model's in-context accuracy, first seed:"


def toy_section(results: Sequence[ToyResult], claims: list[ClaimOverSeeds]) -> list[str]:
    result = results[0]  # the first seed's details; the claims cover every seed
    return [f"{SECTION_LINE} {result.in_context_accuracy:.3f} (judged over {claims[0].n_seeds} seeds)."]


# -- its registry entry --------------------------------------------------------------------------


def _parts() -> Parts:
    return Parts(PRESETS, run, ToyResult, figures, claims, toy_section)


TOY = Study(
    "toy",
    "A toy study",
    Command("toy", "a toy study: a tiny model trained and scored", "toy.eval_batch_size=16"),
    {"quick": "quick", "test": "test"},
    _parts,
)


def register_toy() -> None:
    """Add the toy to the registry: the Ray workers that ``reproduce`` runs its seeds in call
    this at start (their registry is their own)."""
    STUDIES["toy"] = TOY


# -- docs/extending.md's steps, checked ----------------------------------------------------------


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(STUDIES, "toy", TOY)
    return TOY


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:  # --help
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_without_its_entry_the_toy_is_no_command(capsys):
    code, _, err = _cli(capsys, "toy", "--help")
    assert code == 2 and "invalid choice: 'toy'" in err


def test_the_command_line_lists_the_toy_and_runs_it_into_its_folder(toy, tmp_path, capsys):
    code, out, _ = _cli(capsys, "--help")
    assert code == 0 and "a toy study: a tiny model trained and scored" in out
    code, out, _ = _cli(capsys, "toy", "--help")
    assert code == 0 and "--set toy.eval_batch_size=16" in " ".join(out.split())
    code, out, _ = _cli(capsys, "presets", "toy")
    assert code == 0 and "toy presets" in out and "Four steps of a tiny model." in out

    folder = tmp_path / "toy"
    code, out, err = _cli(capsys, "toy", "--out", str(folder), "--preset", "test", "--no-progress", "--json")
    assert code == 0, err
    printed = json.loads(out)
    result = ToyResult.from_dict(json.loads((folder / "result.json").read_text()))
    assert result.config == PRESETS["test"] and printed["in_context_accuracy"] == result.in_context_accuracy
    assert printed["figures"] == [str(folder / "figures" / "toy_accuracy.png")]
    code, _, err = _cli(capsys, "toy", "--out", str(folder), "--preset", "test", "--no-progress")
    assert code == 2 and "already holds a toy study" in err  # the folder rules hold for it too


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.backend_free("tl4")
def test_reproduce_only_the_toy_writes_its_section_and_numbers(toy, tmp_path, capsys):
    import ray

    from tests.conftest import REPO

    # Ray's workers import the package afresh: this checkout's, with the toy registered at start
    hook = {"env_vars": {"PYTHONPATH": str(REPO)}, "worker_process_setup_hook": f"{__name__}.register_toy"}
    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False, num_cpus=2, runtime_env=hook)
    try:
        argv = ["reproduce", "--out", str(tmp_path), "--preset", "test", "--only", "toy", "--no-progress", "--json"]
        code, out, err = _cli(capsys, *argv)
    finally:
        ray.shutdown()
    assert code == 0, err
    report = Path(json.loads(out)["report"]).read_text()
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert [name for name in numbers if name in STUDIES] == ["toy"]
    assert ToyConfig.from_dict(numbers["config"]["toy"]) == PRESETS["test"]
    (claim,) = numbers["toy"]["claims"]
    assert claim["n_seeds"] == 2 and claim["id"] is None  # a toy's claim is never registered
    assert "## A toy study" in report and f"{SECTION_LINE} " in report and "(judged over 2 seeds)" in report
    assert "![toy_accuracy.png](toy/figures/toy_accuracy.png)" in report
    assert (tmp_path / "toy" / "figures" / "toy_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    for seed in (0, 1):
        assert ToyResult.from_dict(json.loads((tmp_path / "toy" / "runs" / f"seed={seed}" / "result.json").read_text()))


def test_render_writes_the_toys_section_under_its_title(toy):
    from induction_bigram.report.render import StudySection, render_report

    result = ToyResult(PRESETS["test"], 0.25)
    text = render_report([StudySection(toy, result, ["toy/figures/toy_accuracy.png"])], "test")
    section = text.split("## A toy study\n", 1)[1]
    assert section.startswith(f"\n{SECTION_LINE} 0.250 (judged over 1 seeds).\n")
    assert "| unregistered | toy | the toy model scores an in-context accuracy >= 0 |" in text


def test_a_study_entry_names_quick_for_the_report(toy):
    from induction_bigram.report.reproduce import PRESETS as REPORT

    assert REPORT["quick"].toy == PRESETS["quick"]  # every report preset holds the toy's config
    assert REPORT["full"].toy == PRESETS["quick"] and "toy" not in REPORT["full"].reproduce.studies
    assert REPORT["test"].toy == PRESETS["test"] and REPORT["test"].reproduce.studies == ()
