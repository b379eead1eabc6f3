"""The memory study: train the induction head, then read its three memories (docs/THEORY.md
section 3).

One run (``quick``, or ``reference`` for the full report) is trained with
:func:`~induction_bigram.memories.projections.track_memories`, so each evaluation records the
memories' recall as they form. :func:`analyse` takes the trained model and its metrics to a
:class:`MemoriesResult`: the final memory report, the coefficient matrices C[i, j] = u_i^T W v_j
the figures draw, the first step at which each memory's recall reaches ``formation_level``
(the order the theory predicts: W_O^2, W_K^2, then W_K^1, its early positions first; section
3.6), and both heads' attention on a Shakespeare prompt. :func:`claims` judges them.

The order of the three memories is only reported here: at the evaluation interval two memories
that form within one interval tie, and raw recall starts from different chance levels (1/N,
1/K, ~ln T / T). :mod:`induction_bigram.memories.formation` judges it, every step scored from
chance, under SGD and AdamW; one judge per claim, so that two verdicts cannot disagree.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from induction_bigram.anymodel.memory_scores import FIRST_POSITIONS, Projection
from induction_bigram.claims import Claim
from induction_bigram.config import Presets, StudyConfig, preset, section, tiny
from induction_bigram.config.checks import at_least
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.figures.views import attention_patterns, token_labels
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.memories.projections import memory_projections, memory_report, track_memories
from induction_bigram.model import Model
from induction_bigram.serialise import Record, hook
from induction_bigram.training.checkpoint import MetricsRecord
from induction_bigram.training.trainer import train_or_load

PROMPT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak."
LEARNS_TASK = 0.95  # final in-context accuracy that counts as "learns the task"


@section("memories")
class MemoriesSettings:
    """What the analysis reads off the trained run.

    Attributes:
        formation_level: the recall@1 whose first evaluated step orders the memories' formation
            (half way is a level every memory reaches, whatever its final recall).
        first_positions: W_K^1's early positions (``recall_first<n>``; the coefficient figure
            shows these positions of W_K^1).
        prompt: the text of the circuitsvis attention view (cut to ``task.seq_len`` tokens).
    """

    formation_level: float = at_least(0.0, 0.5)
    first_positions: int = at_least(2, FIRST_POSITIONS)
    prompt: str = PROMPT

    def check(self) -> None:
        if self.formation_level > 1:
            raise ConfigError(f"memories.formation_level is a recall, at most 1, got {self.formation_level}")
        if not self.prompt:
            raise ConfigError("memories.prompt must not be empty")


@dataclass(frozen=True)
class MemoriesConfig(StudyConfig):
    """The run to train (``task``, ``model``, ``train``, as in ``RunConfig``) and its analysis."""

    memories: MemoriesSettings = MemoriesSettings()


def _preset_quick() -> MemoriesConfig:
    """The ``quick`` run, evaluated every 50 steps so the formation order shows (minutes on a CPU)."""
    return MemoriesConfig.of_run(preset("quick").with_overrides({"train.eval_every": 50}))


def _preset_reference() -> MemoriesConfig:
    """The reference run (d = T = 256, SGD, 1,000 steps): the full report's."""
    return MemoriesConfig.of_run(preset("reference"))


def _preset_test() -> MemoriesConfig:
    """A tiny run for tests (seconds)."""
    return MemoriesConfig.of_run(tiny(_preset_quick().run_config()), memories=MemoriesSettings(first_positions=8))


PRESETS: Presets[MemoriesConfig] = Presets(
    "memories", {"quick": _preset_quick, "reference": _preset_reference, "test": _preset_test}
)


@dataclass(frozen=True)
class MemoriesResult(Record):
    """Everything the memory figures and claims need.

    Attributes:
        config: the study config.
        final: the last metrics record of the run.
        memories: the final :class:`~induction_bigram.memories.projections.MemoryReport` as a dict.
        history: ``step``, ``in_context_accuracy`` and ``memories`` of every evaluation that
            scored the memories.
        formation: per memory, the first evaluated step with recall >= ``formation_level``
            (None: never).
        projections: W_O2, W_K2 and W_K1 (its first ``first_positions`` positions) as
            coefficient matrices.
        vocab: the characters, by token id.
        prompt: the labels of the attention view's tokens.
        attention: its patterns, [layer, query, key].
    """

    config: MemoriesConfig
    final: dict[str, Any]
    memories: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]
    formation: dict[str, int | None]
    projections: dict[str, Projection]
    vocab: tuple[str, ...]
    prompt: tuple[str, ...]
    attention: Tensor = field(metadata=hook(functools.partial(torch.tensor, dtype=torch.float32)))

    def summary(self) -> dict[str, Any]:
        """The numbers without the matrices (``induction-bigram memories --json``)."""
        return {"final": self.final, "memories": self.memories, "formation": self.formation}


def first_step(
    history: Sequence[MetricsRecord], value: Callable[[MetricsRecord], float | None], level: float
) -> int | None:
    """The first evaluated step at which ``value(record) >= level`` (None if never)."""
    return next((r["step"] for r in history if (v := value(r)) is not None and v >= level), None)


def formation_steps(history: Sequence[MetricsRecord], settings: MemoriesSettings) -> dict[str, int | None]:
    """The first evaluated step at which each memory's recall reaches ``formation_level``:
    W_O2, W_K2, W_K1 on its first positions and on all of them."""
    first = f"recall_first{settings.first_positions}"
    series = {
        "W_O2": ("W_O2", "recall"),
        "W_K2": ("W_K2", "recall"),
        f"W_K1 (first {settings.first_positions})": ("W_K1", first),
        "W_K1 (all)": ("W_K1", "recall"),
    }
    return {
        label: first_step(history, lambda r, m=m, k=k: r["memories"].get(m, {}).get(k), settings.formation_level)
        for label, (m, k) in series.items()
    }


@torch.no_grad()
def analyse(
    model: Model,
    stats: BigramStats,
    config: MemoriesConfig,
    metrics: Sequence[MetricsRecord],
    *,
    progress: bool = False,
) -> MemoriesResult:
    """The memory study of a trained two-layer model and its metrics records (``metrics.jsonl``).
    ``progress`` is there for the interface every study's ``analyse`` shares: this one takes
    seconds and shows no bar."""
    settings, seq_len = config.memories, config.task.seq_len
    triggers = TriggerTask(stats, config.task).shared_triggers
    report = memory_report(model, triggers, seq_len, settings.first_positions)
    projections = memory_projections(model, triggers, min(seq_len, settings.first_positions))
    history = [
        {"step": r["step"], "in_context_accuracy": r["in_context_accuracy"], "memories": r["memories"]}
        for r in metrics
        if "memories" in r
    ]
    tokens = stats.encode(settings.prompt)[:seq_len]
    return MemoriesResult(
        config=config,
        final=dict(metrics[-1]),
        memories=report.to_dict(),
        history=history,
        formation=formation_steps(history, settings),
        projections={
            name: Projection(p.coefficients.cpu(), p.targets.cpu(), p.candidates.cpu(), p.by_row)
            for name, p in projections.items()
        },
        vocab=tuple(stats.vocab),
        prompt=tuple(token_labels(stats, tokens)),
        attention=attention_patterns(model, tokens),
    )


def run(
    config: MemoriesConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"
) -> MemoriesResult:
    """Train (or load) the run in ``out_dir/run`` with the memories tracked, analyse it, and
    write ``out_dir/result.json`` (nothing on disk when ``out_dir`` is None)."""
    track = functools.partial(track_memories, first_positions=config.memories.first_positions)

    def train_and_analyse(out: Path | None) -> MemoriesResult:
        trained = train_or_load(
            config.run_config(), None if out is None else out / "run", progress=progress, track=[track]
        )
        return analyse(trained.model, trained.stats, config, trained.metrics)

    return run_in_study_folder(out_dir, "memories", existing, train_and_analyse)


def claims(result: MemoriesResult) -> list[Claim]:
    """It learns the task (a threshold on the accuracy); W_K^1 learns its early positions first
    (yes/no; a tie at the evaluation interval is undecided; only reported when T <=
    first_positions); the memories' formation steps at the evaluation interval (reported: the
    formation study judges their order) (docs/THEORY.md sections 2, 3.6, 8)."""
    settings, seq_len = result.config.memories, result.config.task.seq_len
    acc = result.final["in_context_accuracy"]
    rise, level = result.formation, settings.formation_level
    early_key = f"W_K1 (first {settings.first_positions})"
    early, late = rise[early_key], rise["W_K1 (all)"]
    testable = seq_len > settings.first_positions  # else the early positions are all of them
    return [
        Claim(
            "2",
            "the two-layer model learns the in-context task",
            f"in-context accuracy {acc:.3f}",
            value=acc,
            threshold=LEARNS_TASK,
            direction=">=",
            statistic="final in-context accuracy",
            bounds=(0.0, 1.0),
        ),
        Claim(
            "3",
            "the memories' formation steps at the evaluation interval (their order: the formation study)",
            f"first evaluated step with recall >= {level}: " + ", ".join(f"{k} {v}" for k, v in rise.items()),
            reported=True,
        ),
        Claim(
            "3",
            "W_K^1 learns early positions first",
            f"first {settings.first_positions} positions at step {early}, all {seq_len} positions at step {late}",
            (early is not None and (late is None or early < late)) if testable else None,
            reported=not testable,
            statistic=f"first {settings.first_positions} reach the level before all" if testable else None,
        ),
    ]
