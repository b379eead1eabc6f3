"""The three associative memories of docs/THEORY.md section 3, and three studies of them.

- :mod:`.projections`: W_O^2, W_K^2, W_K^1 projected onto embedding outer products (recall@1,
  margin, cosine), the theory-built model, and ``track_memories`` for training;
- :mod:`.study`: the memory study (train a run, watch its memories form at the evaluation interval);
- :mod:`.capacity`: trained against theory-built memories across the width d;
- :mod:`.formation`: the order in which the memories form, scored at every step under SGD and
  AdamW (section 3.6), with its figure;
- :mod:`.figures`: the memory and capacity studies' figures;
- :mod:`.markdown`: the three studies' sections of ``REPORT.md``.
"""

from induction_bigram.memories.capacity import CapacityConfig, CapacityResult, CapacitySettings
from induction_bigram.memories.formation import FormationConfig, FormationResult, FormationSettings
from induction_bigram.memories.projections import build_theory_model, memory_projections, memory_report, track_memories
from induction_bigram.memories.study import MemoriesConfig, MemoriesResult, MemoriesSettings

__all__ = [
    "CapacityConfig",
    "CapacityResult",
    "CapacitySettings",
    "FormationConfig",
    "FormationResult",
    "FormationSettings",
    "MemoriesConfig",
    "MemoriesResult",
    "MemoriesSettings",
    "build_theory_model",
    "memory_projections",
    "memory_report",
    "track_memories",
]
