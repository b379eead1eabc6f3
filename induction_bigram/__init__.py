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

``__all__`` holds the names a user reaches for first (the README's quick start and the
notebooks); everything else lives in its stage's subpackage, reachable as an attribute
(``ib.anymodel``, ``ib.config``, ``ib.errors``, ``ib.memories``, ``ib.model``, ``ib.pretrained``, ...)
or imported from it (``from induction_bigram.errors import DataError``).

The names load on first use (module ``__getattr__``), so that ``import induction_bigram``
and the command line's ``--help`` do not pay for torch and TransformerLens until a name that
needs them is touched.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import TYPE_CHECKING, Any

from induction_bigram.errors import InductionBigramError

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time _WHERE loads them on first use
    from induction_bigram.anymodel import find_head_pairs, pair_memory_report
    from induction_bigram.config import preset
    from induction_bigram.data.stats import BigramStats
    from induction_bigram.data.task import TriggerTask
    from induction_bigram.incontext.decompose import decompose_logits
    from induction_bigram.incontext.repeated import repeated_sequence_report
    from induction_bigram.memories.projections import build_theory_model, memory_report, track_memories
    from induction_bigram.model import build_model, describe, get_paper_matrix
    from induction_bigram.pretrained import load_pretrained
    from induction_bigram.training.checkpoint import load
    from induction_bigram.training.metrics import evaluate, in_context_accuracy, in_context_loss
    from induction_bigram.training.trainer import train

_WHERE = {
    "induction_bigram.anymodel": ("find_head_pairs", "pair_memory_report"),
    "induction_bigram.config": ("preset",),
    "induction_bigram.data.stats": ("BigramStats",),
    "induction_bigram.data.task": ("TriggerTask",),
    "induction_bigram.incontext.decompose": ("decompose_logits",),
    "induction_bigram.incontext.repeated": ("repeated_sequence_report",),
    "induction_bigram.memories.projections": ("build_theory_model", "memory_report", "track_memories"),
    "induction_bigram.model": ("build_model", "describe", "get_paper_matrix"),
    "induction_bigram.pretrained": ("load_pretrained",),
    "induction_bigram.training.checkpoint": ("load",),
    "induction_bigram.training.trainer": ("train",),
    "induction_bigram.training.metrics": ("evaluate", "in_context_accuracy", "in_context_loss"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
_SUBPACKAGES = tuple(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
"""The stages and shared modules, each reachable as ``ib.<name>`` (imported on first use)."""


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))


__all__ = [
    "BigramStats",
    "InductionBigramError",
    "TriggerTask",
    "build_model",
    "build_theory_model",
    "decompose_logits",
    "describe",
    "evaluate",
    "find_head_pairs",
    "get_paper_matrix",
    "in_context_accuracy",
    "in_context_loss",
    "load",
    "load_pretrained",
    "memory_report",
    "pair_memory_report",
    "preset",
    "repeated_sequence_report",
    "track_memories",
    "train",
]
