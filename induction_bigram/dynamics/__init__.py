"""Training dynamics, general across tasks (docs/THEORY.md section 9.3): a model measured against
reference strategies at each evaluation, the phases it passes through, and their figure.

- :mod:`.measure`: :func:`measure_dynamics`, one :class:`DynamicsPoint` (loss, KL from each
  strategy, excess loss over Bayes, in-context score, best previous-token, induction and
  statistical induction heads); :func:`track_dynamics`, one per evaluation of a markov run,
  :func:`track_trigger_dynamics` of a trigger-task run (``ib.train(..., track=[...])``);
  :func:`kl_curves` of a run's points;
- :mod:`.phases`: :func:`detect_phases`, the steps where the nearest strategy changes (the
  criterion is in the module doc), and :func:`head_formation_step`, when the circuit's heads form;
- :mod:`.analyses`: :func:`~.analyses.analyse_markov_model`, the any-model analyses (head
  pairs, memories, paths, patching) on a model trained on Markov chains, and
  :func:`~.analyses.occurrence_attention`, how a head spreads its attention over the earlier
  occurrences of the current token;
- :mod:`.figures`: :func:`plot_dynamics`; :func:`run_dynamics` and :func:`plot_run_dynamics` read a
  run's ``metrics.jsonl``.

The strategies themselves are data: :mod:`induction_bigram.data.strategies`.
"""

from induction_bigram.dynamics.figures import plot_dynamics, plot_run_dynamics, run_dynamics
from induction_bigram.dynamics.measure import (
    DynamicsPoint,
    HeadSummary,
    kl_curves,
    measure_dynamics,
    track_dynamics,
    track_trigger_dynamics,
)
from induction_bigram.dynamics.phases import Phase, Phases, Transition, detect_phases, head_formation_step

__all__ = [
    "DynamicsPoint",
    "HeadSummary",
    "Phase",
    "Phases",
    "Transition",
    "detect_phases",
    "head_formation_step",
    "kl_curves",
    "measure_dynamics",
    "plot_dynamics",
    "plot_run_dynamics",
    "run_dynamics",
    "track_dynamics",
    "track_trigger_dynamics",
]
