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

**The grid** (``formation.grid_lr_factors``, the ``grid`` preset; claims 35-38; docs/THEORY.md
section 3.6 says why): each optimizer trained again at ``grid_lr_factors`` times its preset's rate
(``reference``'s for SGD, ``quick``'s for AdamW; ``sgd_lr`` and ``adamw_lr`` are 3.3x and 10x
those), each run read at every level of ``grid_levels`` with W_K^2 among the triggers and among
every token. The comparison is not of like with like (W_K^2 has K = 5 items, W_O^2 N = 65; under
AdamW W_K^2 reaches level 0.5, 3 of 5 triggers, on its first nonzero step): the grid judges the
order under each of these choices, and a seed's statistic is its smallest difference over the
cells. A memory not formed by the last step counts as formed one step after it, a bound that
never turns a failed order into a held one (neither formed: undefined).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from induction_bigram.anymodel.memory_scores import Projection, memory_margin, recall_at_1
from induction_bigram.claims import Claim
from induction_bigram.config import Presets, RunConfig, StudyConfig, preset, section, tiny
from induction_bigram.config.checks import at_least
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.memories.projections import memory_projections
from induction_bigram.model import Model
from induction_bigram.serialise import Record
from induction_bigram.training.checkpoint import MetricsRecord
from induction_bigram.training.trainer import train_or_load

Optimizer = Literal["sgd", "adamw"]
NAMES = {"sgd": "SGD", "adamw": "AdamW"}
RECIPES = {"sgd": "reference", "adamw": "quick"}  # the preset each optimizer's recipe and preset rate come from
SERIES = ("W_O2", "W_K2", "W_K2 (vocabulary)", "W_K1")
"""The scored memories: W_K^2 among the triggers (its main convention, the one claims use) and
among every token (the keys layer 2's attention actually competes with)."""
ORDER = (("W_O2", "W_K2"), ("W_K2", "W_K1"))  # each pair: (predicted first, predicted second)
TEX = {"W_O2": "W_O^2", "W_K2": "W_K^2", "W_K1": "W_K^1"}
CONVENTIONS = {"triggers": "W_K2", "every token": "W_K2 (vocabulary)"}  # W_K^2's two recall conventions
GRID_STATISTIC = (
    "smallest over the grid's 8 cells (learning rate 1x and 3x the preset's, level 0.5 and 0.8, W_K^2 among "
    "the triggers and among every token) of the formation step of {second} minus that of {first} (steps, "
    "every-step evaluation; a memory not formed by the last step counts as formed one step after it)"
)


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
        grid_lr_factors: the grid's learning rates, as multiples of each optimizer's preset rate
            (module doc); empty: no grid.
        grid_levels: the grid's levels.

    The default rates are 3.3x (SGD) and 10x (AdamW) the presets' 0.03, at which AdamW's W_K^1
    does not form within 300 steps at d = T = 64; the grid judges the order at the presets' rates.
    """

    optimizers: tuple[Optimizer, ...] = ("sgd", "adamw")
    sgd_lr: float = at_least(0.0, 0.1)
    adamw_lr: float = at_least(0.0, 0.3)
    level: float = at_least(0.0, 0.5)
    grid_lr_factors: tuple[float, ...] = ()
    grid_levels: tuple[float, ...] = (0.5, 0.8)

    def check(self) -> None:
        if not self.optimizers or len(set(self.optimizers)) != len(self.optimizers):
            raise ConfigError(f"formation.optimizers must name each optimizer once, got {self.optimizers!r}")
        for name, level in [("level", self.level), *(("grid_levels", v) for v in self.grid_levels)]:
            if not 0 < level <= 1:
                raise ConfigError(f"formation.{name} is a normalised recall in (0, 1], got {level}")
        if any(f <= 0 for f in self.grid_lr_factors) or len(set(self.grid_lr_factors)) != len(self.grid_lr_factors):
            raise ConfigError(f"formation.grid_lr_factors must be distinct and > 0, got {self.grid_lr_factors!r}")
        if self.grid_lr_factors and not self.grid_levels:
            raise ConfigError("formation.grid_levels must name at least one level when the grid has rates")


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

    def run_config(self, optimizer: Optimizer | None = None, lr: float | None = None) -> RunConfig:
        """The run of ``optimizer`` (default: the sections as they are): SGD takes its settings
        from the ``reference`` preset, AdamW from ``quick``, each at ``lr`` (default: its
        ``formation`` rate)."""
        run = RunConfig(self.task, self.model, self.train)
        if optimizer is None:
            return run
        recipe = preset(RECIPES[optimizer]).train
        if lr is None:
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


def _preset_grid() -> FormationConfig:
    """``quick`` at 600 steps, plus the grid (module doc): each optimizer also at 1x and 3x its
    preset's rate, read at levels 0.5 and 0.8 (six runs a seed: 8.5 to 20 minutes a seed on CPU
    cores shared with other jobs, docs/report-formation-grid/formation/runs.csv)."""
    return FormationConfig.of_run(
        _quick_run(600, 128), formation=FormationSettings(grid_lr_factors=(1.0, 3.0), grid_levels=(0.5, 0.8))
    )


def _preset_test() -> FormationConfig:
    """A tiny run per optimizer, a few steps (seconds; for tests)."""
    return FormationConfig.of_run(tiny(preset("quick"), steps=6).with_overrides({"train.eval_every": 1}))


PRESETS: Presets[FormationConfig] = Presets(
    "formation", {"quick": _preset_quick, "full": _preset_full, "grid": _preset_grid, "test": _preset_test}
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

    def bounded_difference(self, first: str, second: str, level: float) -> int | None:
        """Formation step of ``second`` minus that of ``first`` at ``level``, an unformed memory
        counted as formed one step after the last (module doc; None when neither formed)."""
        after = self.steps[-1] + 1
        a, b = (formation_step(self.steps, self.normalised[name], level) for name in (first, second))
        if a is None and b is None:
            return None
        return (after if b is None else b) - (after if a is None else a)


@dataclass(frozen=True)
class FormationResult(Record):
    """The config, one :class:`OptimizerRun` per optimizer and, with a grid, one per optimizer
    and grid rate (``grid``, in the order of ``optimizers`` then ``grid_lr_factors``)."""

    config: FormationConfig
    runs: tuple[OptimizerRun, ...]
    grid: tuple[OptimizerRun, ...] = ()

    def summary(self) -> dict[str, Any]:
        """Per optimizer: formation steps, their differences, the final in-context accuracy; with
        a grid, each cell's bounded differences (``grid``, keyed ``lr <lr>, level <level>, W_K2
        among <convention>``)."""
        summary = {
            run.optimizer: {
                "lr": run.lr,
                "formation": run.formation,
                **{f"{b}_minus_{a}": run.difference(a, b) for a, b in ORDER},
                "final_in_context_accuracy": run.in_context_accuracy[-1],
            }
            for run in self.runs
        }
        for optimizer, cells in self.grid_cells().items():
            summary[optimizer]["grid"] = cells
        return summary

    def grid_cells(self) -> dict[str, dict[str, dict[str, int | None]]]:
        """Per optimizer, per grid cell, the bounded difference (:meth:`OptimizerRun.bounded_difference`)
        of each predicted pair, W_K^2 read in the cell's convention."""
        cells: dict[str, dict[str, dict[str, int | None]]] = {}
        for run in self.grid:
            for level in self.config.formation.grid_levels:
                for convention, w_k2 in CONVENTIONS.items():
                    rename = {"W_K2": w_k2}
                    cells.setdefault(run.optimizer, {})[f"lr {run.lr:g}, level {level:g}, W_K2 among {convention}"] = {
                        f"{b}_minus_{a}": run.bounded_difference(rename.get(a, a), rename.get(b, b), level)
                        for a, b in ORDER
                    }
        return cells


def run(
    config: FormationConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"
) -> FormationResult:
    """Train (or load, from ``out_dir/run_<optimizer>``) one run per optimizer with every step
    scored; writes ``out_dir/result.json`` when ``out_dir`` is given."""
    return run_in_study_folder(out_dir, "formation", existing, lambda out: _run(config, out, progress))


def _run(config: FormationConfig, out: Path | None, progress: bool) -> FormationResult:
    settings = config.formation

    def trained(optimizer: Optimizer, lr: float | None, name: str) -> OptimizerRun:
        run_config = config.run_config(optimizer, lr)
        folder = None if out is None else out / name
        metrics = train_or_load(run_config, folder, progress=progress, track=[track_formation]).metrics
        return OptimizerRun.of_metrics(optimizer, run_config.train.lr, metrics, settings.level)

    runs = tuple(trained(optimizer, None, f"run_{optimizer}") for optimizer in settings.optimizers)
    grid = tuple(
        trained(optimizer, factor * preset(RECIPES[optimizer]).train.lr, f"grid_{optimizer}_x{factor:g}")
        for optimizer in settings.optimizers
        for factor in settings.grid_lr_factors
    )
    return FormationResult(config, runs, grid)


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
    return out + _grid_claims(result)


def _grid_claims(result: FormationResult) -> list[Claim]:
    """Claims 35-38 (module doc): per optimizer and predicted pair, the smallest bounded difference
    over the grid's cells, > 0 as predicted; none without a grid, and another grid is refused."""
    settings = result.config.formation
    if not settings.grid_lr_factors:
        return []
    if tuple(sorted(settings.grid_lr_factors)) != (1.0, 3.0) or tuple(sorted(settings.grid_levels)) != (0.5, 0.8):
        raise ConfigError(
            "claims 35-38 are registered for formation.grid_lr_factors=1,3 and formation.grid_levels=0.5,0.8, "
            f"got {settings.grid_lr_factors} and {settings.grid_levels}"
        )
    out = []
    for optimizer, cells in result.grid_cells().items():
        for first, second in ORDER:
            key = f"{second}_minus_{first}"
            values = {cell: differences[key] for cell, differences in cells.items()}
            smallest = None if any(v is None for v in values.values()) else min(values.values())
            out.append(
                Claim(
                    "3.6",
                    f"{TEX[first]} forms before {TEX[second]} over the whole grid ({NAMES[optimizer]})",
                    f"smallest {second} - {first} = {smallest}; by cell: "
                    + "; ".join(f"{cell}: {value}" for cell, value in values.items()),
                    value=None if smallest is None else float(smallest),
                    threshold=0.0,
                    direction=">",
                    statistic=GRID_STATISTIC.format(first=TEX[first], second=TEX[second]),
                )
            )
    return out
