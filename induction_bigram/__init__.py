"""induction-bigram: induction heads against global bigrams in TransformerLens.

The package is the pipeline, one folder per stage::

    data/ (BigramStats, TriggerTask, PromptDesigner) -> model/ + hooks/ (build_model)
    -> training/ (train, load) -> memories/ (memory_report; the memory and capacity studies)
    -> incontext/ (decompose_logits, patching, theory; the in-context study) -> lengths/
    anymodel/ (find_head_pairs, pair_memory_report: the same analyses on any TL model)
    -> figures/ (shared style, circuitsvis views) -> report/ (reproduce, REPORT.md)

Every study folder has the same parts: a config with presets (``PRESETS``), ``run`` from
config to result, a result that converts to and from JSON, ``figures`` and ``claims``;
:mod:`induction_bigram.studies` lists them.

Quick start::

    import induction_bigram as ib
    result = ib.train(ib.preset("quick"), "runs/quick", track=[ib.track_memories])
    model = ib.load("runs/quick")            # a TransformerBridge on TL 4 (a HookedTransformer on TL 3)
    logits, cache = model.run_with_cache(result.stats.encode("First Citizen:")[None])

The names below load on first use (module ``__getattr__``), so that ``import induction_bigram``
and the command line's ``--help`` do not pay for torch and TransformerLens until a name that
needs them is touched.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from induction_bigram.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InductionBigramError,
    ModelShapeError,
    RunFolderError,
    TrainingDivergedError,
)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time _WHERE loads them on first use
    from induction_bigram.anymodel import find_head_pairs, pair_memory_report
    from induction_bigram.config import ModelConfig, RunConfig, TaskConfig, TrainConfig, preset
    from induction_bigram.data.stats import BigramStats
    from induction_bigram.data.task import TaskBatch, TriggerTask
    from induction_bigram.data.tokenizer import character_tokenizer
    from induction_bigram.incontext.decompose import decompose_logits
    from induction_bigram.incontext.repeated import RepeatedSequenceReport, repeated_sequence_report
    from induction_bigram.memories.projections import build_theory_model, memory_report, track_memories
    from induction_bigram.model import (
        build_model,
        check_vocabulary,
        describe,
        get_paper_matrix,
        load_weights,
        model_vocab,
        set_paper_matrix,
        swap_convention,
    )
    from induction_bigram.pretrained import load_pretrained, pretrained_task
    from induction_bigram.training.checkpoint import Checkpoint, load, load_checkpoint
    from induction_bigram.training.loop import TrainResult, train
    from induction_bigram.training.metrics import (
        TaskMetrics,
        evaluate,
        in_context_accuracy,
        in_context_loss,
        in_context_patching_metric,
    )

_WHERE = {
    "induction_bigram.anymodel": ("find_head_pairs", "pair_memory_report"),
    "induction_bigram.config": ("ModelConfig", "RunConfig", "TaskConfig", "TrainConfig", "preset"),
    "induction_bigram.data.stats": ("BigramStats",),
    "induction_bigram.data.task": ("TaskBatch", "TriggerTask"),
    "induction_bigram.data.tokenizer": ("character_tokenizer",),
    "induction_bigram.incontext.decompose": ("decompose_logits",),
    "induction_bigram.incontext.repeated": ("RepeatedSequenceReport", "repeated_sequence_report"),
    "induction_bigram.memories.projections": ("build_theory_model", "memory_report", "track_memories"),
    "induction_bigram.model": (
        "build_model",
        "check_vocabulary",
        "describe",
        "get_paper_matrix",
        "load_weights",
        "model_vocab",
        "set_paper_matrix",
        "swap_convention",
    ),
    "induction_bigram.pretrained": ("load_pretrained", "pretrained_task"),
    "induction_bigram.training.checkpoint": ("Checkpoint", "load", "load_checkpoint"),
    "induction_bigram.training.loop": ("TrainResult", "train"),
    "induction_bigram.training.metrics": (
        "TaskMetrics",
        "evaluate",
        "in_context_accuracy",
        "in_context_loss",
        "in_context_patching_metric",
    ),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # ib.model.portable_state_dict, as before
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BigramStats",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InductionBigramError",
    "ModelConfig",
    "ModelShapeError",
    "RepeatedSequenceReport",
    "RunConfig",
    "RunFolderError",
    "TaskBatch",
    "TaskConfig",
    "TaskMetrics",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "TriggerTask",
    "build_model",
    "build_theory_model",
    "character_tokenizer",
    "check_vocabulary",
    "describe",
    "decompose_logits",
    "evaluate",
    "find_head_pairs",
    "get_paper_matrix",
    "in_context_accuracy",
    "in_context_loss",
    "in_context_patching_metric",
    "load",
    "load_checkpoint",
    "load_pretrained",
    "load_weights",
    "memory_report",
    "model_vocab",
    "pair_memory_report",
    "preset",
    "pretrained_task",
    "repeated_sequence_report",
    "set_paper_matrix",
    "swap_convention",
    "track_memories",
    "train",
]
