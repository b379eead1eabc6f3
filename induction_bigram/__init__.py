"""induction-bigram: induction heads against global bigrams in TransformerLens.

The package is the pipeline, one folder per stage::

    data/ (BigramStats, TriggerTask, PromptDesigner) -> model/ + hooks/ (build_model)
    -> training/ (train, load) -> memories/ (memory_report; the memory and capacity studies)
    -> incontext/ (decompose_logits, patching, theory; the in-context study) -> lengths/
    anymodel/ (find_head_pairs, pair_memory_report: the same analyses on any HookedTransformer)
    -> figures/ (shared style, circuitsvis views) -> report/ (reproduce, REPORT.md)

Every study folder has the same parts: a config with presets (``PRESETS``), ``run`` from
config to result, a result that converts to and from JSON, ``figures`` and ``claims``;
:mod:`induction_bigram.studies` lists them.

Quick start::

    import induction_bigram as ib
    result = ib.train(ib.preset("quick"), "runs/quick", track=[ib.track_memories])
    model = ib.load("runs/quick")            # a HookedTransformer (TransformerBridge on TL 4)
    logits, cache = model.run_with_cache(result.stats.encode("First Citizen:")[None])
"""

from induction_bigram.anymodel import find_head_pairs, pair_memory_report
from induction_bigram.config import ModelConfig, RunConfig, TaskConfig, TrainConfig, preset
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.data.tokenizer import character_tokenizer
from induction_bigram.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InductionBigramError,
    ModelShapeError,
    RunFolderError,
    TrainingDivergedError,
)
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
