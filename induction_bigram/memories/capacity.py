"""The capacity study: trained against theory-built memories across the width d (docs/THEORY.md
section 3).

First a model whose memories are written by
:func:`~induction_bigram.memories.projections.build_theory_model` at the reference shape
(``theory_d_model`` = ``theory_seq_len`` = 256) must solve the task untrained. Then, for each d
of ``capacity.widths``, one model is trained with the recipe (``task``/``model``/``train``, d
replaced) and one is theory-built from the same seed, so both share every frozen random matrix;
both are scored on the same evaluation batch. At small d a memory of N = 65 near-orthogonal
pairs is near capacity: the naive outer-product sum interferes with itself, while training can
find a better-conditioned solution.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from induction_bigram.claims import Claim
from induction_bigram.config import Presets, RunConfig, StudyConfig, preset, section, tiny
from induction_bigram.config.checks import at_least
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.memories.projections import build_theory_model, memory_report
from induction_bigram.model import Model
from induction_bigram.serialise import Record
from induction_bigram.training.metrics import evaluate
from induction_bigram.training.trainer import train_or_load

SOLVES_TASK = 0.98  # in-context accuracy the theory-built reference model must reach (with recall 1)


@section("capacity")
class CapacitySettings:
    """The widths and the theory-built reference model.

    Attributes:
        widths: the d of each trained / theory-built pair.
        eval_batch_size: sequences of the evaluation batch (drawn from ``train.eval_seed``).
        theory_d_model / theory_seq_len: d and T of the theory-built reference model.
    """

    widths: tuple[int, ...] = at_least(2, (16, 32, 64))
    eval_batch_size: int = at_least(1, 512)
    theory_d_model: int = at_least(2, 256)
    theory_seq_len: int = at_least(2, 256)

    def check(self) -> None:
        if not self.widths:
            raise ConfigError("capacity.widths must name at least one width")


@dataclass(frozen=True)
class CapacityConfig(StudyConfig):
    """The training recipe (``task``, ``model``, ``train``; ``model.d_model`` is replaced by each
    width) and the widths."""

    capacity: CapacitySettings = CapacitySettings()

    def __post_init__(self) -> None:
        self.run_config(self.capacity.widths[0])  # the recipe's own checks

    def run_config(self, d_model: int | None = None) -> RunConfig:
        """The recipe at width ``d_model`` (default: the model section's own)."""
        model = self.model if d_model is None else dataclasses.replace(self.model, d_model=d_model)
        return RunConfig(self.task, model, self.train)


def _preset_quick() -> CapacityConfig:
    """d = 16, 32, 64, the ``quick`` recipe cut to 800 steps (minutes on a CPU)."""
    return CapacityConfig.of_run(preset("quick").with_overrides({"train.steps": 800, "train.eval_every": 400}))


def _preset_full() -> CapacityConfig:
    """d = 16 to 256, the ``quick`` recipe at its full 2,500 steps: the full report's."""
    return CapacityConfig.of_run(preset("quick"), capacity=CapacitySettings(widths=(16, 32, 64, 128, 256)))


def _preset_test() -> CapacityConfig:
    """Two tiny widths, a few steps, a small theory-built model (seconds; for tests)."""
    settings = CapacitySettings(widths=(8, 16), eval_batch_size=8, theory_d_model=32, theory_seq_len=16)
    return CapacityConfig.of_run(tiny(preset("quick"), steps=3), capacity=settings)


PRESETS: Presets[CapacityConfig] = Presets(
    "capacity", {"quick": _preset_quick, "full": _preset_full, "test": _preset_test}
)


@dataclass(frozen=True)
class CapacityRow(Record):
    """One width: accuracy and memory scores of the trained and the theory-built model."""

    d_model: int
    trained_accuracy: float
    theory_accuracy: float
    trained: dict[str, dict[str, float]]
    theory: dict[str, dict[str, float]]


@dataclass(frozen=True)
class CapacityResult(Record):
    """The theory-built reference model's accuracy and memory report, and one row per width."""

    config: CapacityConfig
    theory_accuracy: float
    theory_memories: dict[str, dict[str, Any]]
    rows: tuple[CapacityRow, ...]

    def summary(self) -> dict[str, Any]:
        """The numbers without the config (``induction-bigram capacity --json``)."""
        return {key: value for key, value in self.to_dict().items() if key != "config"}


def _scores(model: Model, task: TriggerTask, config: CapacityConfig) -> tuple[float, dict]:
    """In-context accuracy on the evaluation batch, and the memory report without conventions."""
    seed, size = config.train.eval_seed, config.capacity.eval_batch_size
    accuracy = evaluate(model, task, batch_size=size, seed=seed).in_context_accuracy
    return accuracy, memory_report(model, task.shared_triggers, task.cfg.seq_len).to_dict(False)


def run(
    config: CapacityConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"
) -> CapacityResult:
    """The theory-built reference model, then train (or load, from ``out_dir/run_d<d>``) and
    theory-build one model per width; writes ``out_dir/result.json`` when ``out_dir`` is given."""
    return run_in_study_folder(out_dir, "capacity", existing, lambda out: _run(config, out, progress))


def _run(config: CapacityConfig, out: Path | None, progress: bool) -> CapacityResult:
    stats = BigramStats.from_corpus(config.task.corpus)
    settings, device = config.capacity, config.train.device
    reference_task = TriggerTask(stats, dataclasses.replace(config.task, seq_len=settings.theory_seq_len))
    reference_model = dataclasses.replace(
        config.model, d_model=settings.theory_d_model, n_ctx=settings.theory_seq_len, d_vocab=stats.n_tokens
    )
    theory = build_theory_model(reference_model, reference_task.shared_triggers, device=device, vocab=stats.vocab)
    reference = memory_report(theory, reference_task.shared_triggers, settings.theory_seq_len)
    accuracy = evaluate(
        theory, reference_task, batch_size=settings.eval_batch_size, seed=config.train.eval_seed
    ).in_context_accuracy
    rows = []
    for d in settings.widths:
        run_config = config.run_config(d)
        trained = train_or_load(run_config, None if out is None else out / f"run_d{d}", progress=progress)
        task = TriggerTask(stats, run_config.task, next(trained.model.parameters()).device)
        theory = build_theory_model(trained.config.model, task.shared_triggers, device=device, vocab=stats.vocab)
        trained_accuracy, trained_memories = _scores(trained.model, task, config)
        theory_accuracy, theory_memories = _scores(theory, task, config)
        rows.append(CapacityRow(d, trained_accuracy, theory_accuracy, trained_memories, theory_memories))
    return CapacityResult(config, accuracy, reference.to_dict(), tuple(rows))


def claims(result: CapacityResult) -> list[Claim]:
    """The theory-built reference model solves the task untrained (yes/no: accuracy >= SOLVES_TASK
    and every recall 1; the accuracy is shown as its value); where trained memories beat the naive
    ideal form near capacity (reported) (docs/THEORY.md sections 3, 8)."""
    settings = result.config.capacity
    d, T = settings.theory_d_model, settings.theory_seq_len
    shape = f"d = T = {d}" if d == T else f"d = {d}, T = {T}"
    recalls = {name: score["recall"] for name, score in result.theory_memories.items()}
    beats = [r.d_model for r in result.rows if r.trained_accuracy > r.theory_accuracy]
    return [
        Claim(
            "3",
            f"memories written from the theory solve the task without training ({shape})",
            f"in-context accuracy {result.theory_accuracy:.3f}, recalls {recalls}",
            result.theory_accuracy >= SOLVES_TASK and all(v == 1.0 for v in recalls.values()),
            value=result.theory_accuracy,
            statistic=f"in-context accuracy >= {SOLVES_TASK} and every recall 1",
        ),
        Claim(
            "3",
            "near capacity (small d) trained memories can beat the naive ideal form",
            f"trained accuracy above theory-built at d = {beats or 'none'}",
            reported=True,
        ),
    ]
