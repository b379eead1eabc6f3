"""The formation study: the order in which the three memories form, scored at every step,
under SGD and AdamW (docs/THEORY.md section 3.6).

The one-step argument of section 3.6 predicts W_O^2, then W_K^2, then W_K^1. An evaluation
every 50 steps cannot order memories that form a few steps apart, so here each optimizer trains
one run from the same seed (the same frozen matrices and training batches) with every step
scored by :func:`track_formation`. A memory's progress is its recall@1 measured from chance,
(recall - chance) / (1 - chance), where chance is the expected recall of random coefficients
under the memory's convention (section 3.3): 0 at chance, 1 at perfect recall, so memories with
N, K or up to T - 1 candidates are on one scale. Its *formation step* is the first step from which
this score stays at or above ``formation.level`` to the end of the run: with every step scored,
a memory with few items (W_K^2 has K rows) crosses a level and falls back in the noise of single
batches, and a crossing it does not keep would decide the order on one batch.

Recall and margin see the direction of a matrix, not its size, so a formation step is when a
memory first points the right way, not when it is large enough to steer attention.
:func:`claims` turns the steps into differences, one claim per predicted pair and optimizer,
each judged over seeds by its 95% t-interval (section 8).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.figure import Figure

from induction_bigram.anymodel.memory_scores import Projection, memory_margin, recall_at_1
from induction_bigram.claims import Claim
from induction_bigram.config import Presets, RunConfig, StudyConfig, preset, section, tiny
from induction_bigram.config.checks import at_least
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.memories.projections import memory_projections
from induction_bigram.model import Model
from induction_bigram.training.loop import MetricsRecord, train_or_load

Optimizer = Literal["sgd", "adamw"]
NAMES = {"sgd": "SGD", "adamw": "AdamW"}
SERIES = ("W_O2", "W_K2", "W_K2 (vocabulary)", "W_K1")
"""The scored memories: W_K^2 among the triggers (its main convention, the one claims use) and
among every token (the keys layer 2's attention actually competes with)."""
ORDER = (("W_O2", "W_K2"), ("W_K2", "W_K1"))  # each pair: (predicted first, predicted second)
TEX = {"W_O2": "W_O^2", "W_K2": "W_K^2", "W_K1": "W_K^1"}


@section("formation")
class FormationSettings:
    """The optimizers and what counts as formed.

    Attributes:
        optimizers: one run per optimizer, from the same seed.
        sgd_lr: SGD's learning rate, as the reference recipe means it (``lr_scaling =
            "reference-code"``, its momentum and weight decay; docs/THEORY.md 2.5).
        adamw_lr: AdamW's, as the ``quick`` preset means it (one rate for every matrix, no
            weight decay).
        level: the chance-normalised recall a memory must reach and keep to have formed.

    The default rates are above the presets' own (0.03 for both), at which W_K^1 does not form
    within a few hundred steps at d = T = 64; at these all three do, on a CPU in minutes.
    """

    optimizers: tuple[Optimizer, ...] = ("sgd", "adamw")
    sgd_lr: float = at_least(0.0, 0.1)
    adamw_lr: float = at_least(0.0, 0.3)
    level: float = at_least(0.0, 0.5)

    def check(self) -> None:
        if not self.optimizers or len(set(self.optimizers)) != len(self.optimizers):
            raise ConfigError(f"formation.optimizers must name each optimizer once, got {self.optimizers!r}")
        if not 0 < self.level <= 1:
            raise ConfigError(f"formation.level is a normalised recall in (0, 1], got {self.level}")


@dataclass(frozen=True)
class FormationConfig(StudyConfig):
    """The run (``task``, ``model``, ``train``) trained once per optimizer: ``train.optimizer``,
    ``lr``, ``lr_scaling``, ``momentum`` and ``weight_decay`` are replaced by each optimizer's
    recipe (:meth:`run_config`); every step is scored, so ``train.eval_every`` must be 1."""

    formation: FormationSettings = FormationSettings()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train.eval_every != 1:
            raise ConfigError(f"formation scores every step: train.eval_every must be 1, got {self.train.eval_every}")
        if self.model.positional != "ape" or self.task.seq_len < 4 or self.task.n_triggers < 3:
            raise ConfigError(
                "formation scores W_K^1 and every margin (two off-target candidates per item): it needs "
                "model.positional='ape', task.seq_len >= 4 and task.n_triggers >= 3"
            )

    def run_config(self, optimizer: Optimizer | None = None) -> RunConfig:
        """The run of ``optimizer`` (default: the sections as they are): SGD takes its settings
        from the ``reference`` preset, AdamW from ``quick``, each at its ``formation`` rate."""
        run = RunConfig(self.task, self.model, self.train)
        if optimizer is None:
            return run
        recipe = preset("reference" if optimizer == "sgd" else "quick").train
        lr = self.formation.sgd_lr if optimizer == "sgd" else self.formation.adamw_lr
        keep = ("optimizer", "lr_scaling", "momentum", "weight_decay")
        train = dataclasses.replace(self.train, lr=lr, **{key: getattr(recipe, key) for key in keep})
        return dataclasses.replace(run, train=train)


def _quick_run(steps: int, batch_size: int) -> RunConfig:
    return preset("quick").with_overrides(
        {"train.steps": steps, "train.batch_size": batch_size, "train.eval_every": 1, "train.eval_batch_size": 64}
    )


def _preset_quick() -> FormationConfig:
    """d = T = 64, K = 5, batch 128, 300 steps, each scored (under a minute per optimizer on one CPU core)."""
    return FormationConfig.of_run(_quick_run(300, 128))


def _preset_full() -> FormationConfig:
    """``quick`` at the reference batch of 512 and 400 steps (less noise per step): the full report's."""
    return FormationConfig.of_run(_quick_run(400, 512))


def _preset_test() -> FormationConfig:
    """A tiny run per optimizer, a few steps (seconds; for tests)."""
    return FormationConfig.of_run(tiny(preset("quick"), steps=6).with_overrides({"train.eval_every": 1}))


PRESETS: Presets[FormationConfig] = Presets(
    "formation", {"quick": _preset_quick, "full": _preset_full, "test": _preset_test}
)


def chance_recall(projection: Projection) -> float:
    """The expected recall@1 of random coefficients: the mean over items of 1 / (number of
    allowed candidates) (1/N for W_O^2, 1/K for W_K^2 among the triggers, the mean of 1/t over
    rows t for W_K^1)."""
    return (1.0 / projection.candidates.sum(-1).double()).mean().item()


def normalised_recall(recall: float, chance: float) -> float:
    """(recall - chance) / (1 - chance): 0 at chance, 1 at perfect recall."""
    return (recall - chance) / (1.0 - chance)


def track_formation(model: Model, task: TriggerTask) -> dict[str, Any]:
    """A training tracker: recall, its chance level and margin of each of :data:`SERIES`."""
    projections = memory_projections(model, task.shared_triggers, task.cfg.seq_len)
    w_k2 = projections["W_K2"]
    projections["W_K2 (vocabulary)"] = Projection(
        w_k2.coefficients, w_k2.targets, torch.ones_like(w_k2.candidates), True
    )
    scores = {}
    for name in SERIES:
        projection = projections[name]
        scores[name] = {
            "recall": recall_at_1(projection),
            "chance": chance_recall(projection),
            "margin": memory_margin(projection),
        }
    return {"formation": scores}


def formation_step(steps: list[int], scores: list[float], level: float) -> int | None:
    """The first step from which ``scores`` stay >= ``level`` to the last one (None: below
    the level at the last step)."""
    formed = None
    for step, score in zip(steps, scores):
        formed = (step if formed is None else formed) if score >= level else None
    return formed


@dataclass(frozen=True)
class OptimizerRun:
    """One optimizer's run, every step.

    Attributes:
        optimizer, lr: the recipe.
        steps: the scored steps (0 = untrained).
        in_context_accuracy: on the run's evaluation batch, per step.
        chance: per series, the chance recall (fixed by the candidates).
        normalised: per series, the chance-normalised recall per step.
        margin: per series, the margin per step.
        formation: per series, its formation step (None: not formed by the last step).
    """

    optimizer: str
    lr: float
    steps: list[int]
    in_context_accuracy: list[float]
    chance: dict[str, float]
    normalised: dict[str, list[float]]
    margin: dict[str, list[float]]
    formation: dict[str, int | None]

    @classmethod
    def of_metrics(cls, optimizer: str, lr: float, metrics: list[MetricsRecord], level: float) -> "OptimizerRun":
        records = [r for r in metrics if "formation" in r]
        steps = [r["step"] for r in records]
        chance = {name: records[0]["formation"][name]["chance"] for name in SERIES}
        normalised = {
            name: [normalised_recall(r["formation"][name]["recall"], chance[name]) for r in records] for name in SERIES
        }
        return cls(
            optimizer,
            lr,
            steps,
            [r["in_context_accuracy"] for r in records],
            chance,
            normalised,
            {name: [r["formation"][name]["margin"] for r in records] for name in SERIES},
            {name: formation_step(steps, normalised[name], level) for name in SERIES},
        )

    def difference(self, first: str, second: str) -> int | None:
        """Formation step of ``second`` minus that of ``first`` (None if either did not form)."""
        a, b = self.formation[first], self.formation[second]
        return None if a is None or b is None else b - a


@dataclass(frozen=True)
class FormationResult:
    """The config and one :class:`OptimizerRun` per optimizer."""

    config: FormationConfig
    runs: tuple[OptimizerRun, ...]

    def summary(self) -> dict[str, Any]:
        """Per optimizer: formation steps, their differences, the final in-context accuracy."""
        return {
            run.optimizer: {
                "lr": run.lr,
                "formation": run.formation,
                **{f"{b}_minus_{a}": run.difference(a, b) for a, b in ORDER},
                "final_in_context_accuracy": run.in_context_accuracy[-1],
            }
            for run in self.runs
        }

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "runs": [dataclasses.asdict(run) for run in self.runs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FormationResult":
        return cls(FormationConfig.from_dict(data["config"]), tuple(OptimizerRun(**run) for run in data["runs"]))


def run(
    config: FormationConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"
) -> FormationResult:
    """Train (or load, from ``out_dir/run_<optimizer>``) one run per optimizer with every step
    scored; writes ``out_dir/result.json`` when ``out_dir`` is given."""
    return run_in_study_folder(out_dir, "formation", existing, lambda out: _run(config, out, progress))


def _run(config: FormationConfig, out: Path | None, progress: bool) -> FormationResult:
    runs = []
    for optimizer in config.formation.optimizers:
        run_config = config.run_config(optimizer)
        folder = None if out is None else out / f"run_{optimizer}"
        trained = train_or_load(run_config, folder, progress=progress, track=[track_formation])
        runs.append(OptimizerRun.of_metrics(optimizer, run_config.train.lr, trained.metrics, config.formation.level))
    return FormationResult(config, tuple(runs))


def claims(result: FormationResult) -> list[Claim]:
    """Per optimizer and predicted pair (W_O^2 before W_K^2, W_K^2 before W_K^1): the
    difference of their formation steps, > 0 as predicted (docs/THEORY.md sections 3.6, 8). A
    memory that has not formed by the last step leaves the difference undefined in that seed."""
    level = result.config.formation.level
    out = []
    for run in result.runs:
        name = NAMES[run.optimizer]
        steps = ", ".join(f"{series} {step}" for series, step in run.formation.items())
        measured = f"lr {run.lr:g}; formation steps (normalised recall >= {level:g} from then on): {steps}"
        for first, second in ORDER:
            difference = run.difference(first, second)
            out.append(
                Claim(
                    "3.6",
                    f"{TEX[first]} forms before {TEX[second]} ({name})",
                    f"{second} - {first} = {difference}; {measured}",
                    value=None if difference is None else float(difference),
                    threshold=0.0,
                    direction=">",
                    statistic=f"formation step of {TEX[second]} minus that of {TEX[first]} "
                    "(steps, every-step evaluation)",
                )
            )
    return out


def figures(result: FormationResult) -> dict[str, Figure]:
    """``formation.png``: per optimizer (columns), the chance-normalised recall (top: the level
    and each formation step dotted) and the margin (bottom) of every memory against the step,
    linear to step 10 and logarithmic after, so that the first steps stay visible."""
    columns = len(result.runs)
    fig = Figure(figsize=(5.5 * columns, 7), layout="constrained")
    axes = np.asarray(fig.subplots(2, columns, sharex="col", squeeze=False))
    level = result.config.formation.level
    for column, run in enumerate(result.runs):
        recall_ax, margin_ax = axes[:, column]
        for name in SERIES:
            color, style = f"C{SERIES.index(name.split()[0])}", "--" if "vocabulary" in name else "-"
            formed = run.formation[name]
            label = f"{name} (formed at {formed})" if formed is not None else f"{name} (not formed)"
            recall_ax.plot(run.steps, run.normalised[name], style, color=color, label=label)
            margin_ax.plot(run.steps, run.margin[name], style, color=color)
            if formed is not None and style == "-":
                recall_ax.axvline(formed, color=color, linestyle=":", linewidth=1)
        recall_ax.plot(run.steps, run.in_context_accuracy, color="black", linewidth=0.8, label="in-context accuracy")
        recall_ax.axhline(level, color="grey", linestyle=":", linewidth=1)
        recall_ax.set(
            title=f"{NAMES[run.optimizer]}, lr {run.lr:g}",
            ylabel="(recall - chance) / (1 - chance)",
            ylim=(-0.1, 1.05),
        )
        margin_ax.axhline(0, color="grey", linewidth=0.8)
        margin_ax.set(xlabel="training step", ylabel="margin (off-target std)")
        margin_ax.set_xscale("symlog", linthresh=10)
        margin_ax.set_xlim(0, run.steps[-1])
        # the bottom right is empty once the memories have formed; the top has no free corner
        margin_ax.legend(*recall_ax.get_legend_handles_labels(), fontsize=7, loc="lower right")
    return {"formation.png": fig}
