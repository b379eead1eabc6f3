"""Phases of training: which strategy the model is nearest to, and when that changes
(docs/THEORY.md section 9.3; Edelman et al. 2024 track the same distances).

The criterion, on the KL curves from each strategy to the model, record by record:

1. **Leader.** A record's leader is the strategy with the smallest KL, provided it is clearly
   the smallest: at most (1 - ``margin``) times the runner-up's KL. Otherwise the record has no
   leader (two strategies are equally near, or the model is near none in particular).
2. **Persistence.** A run of consecutive records with the same leader counts only if it holds
   at least ``min_records`` records; shorter runs (a single noisy evaluation) are ignored.
3. **Phases.** A phase is a counted run, merged with the next counted run when both have the
   same leader (whatever lies between them was too short or undecided to count).
4. **Transitions.** Between two consecutive phases of different strategies, the transition's
   step is the first record of the later phase (the move happened after the previous phase's
   last record and by this step).

With one phase there is no transition; with no counted run there is no phase, and the result
says that no strategy was clearly nearest rather than naming one.

:func:`head_formation_step` dates the circuit itself rather than the strategy: the first record
whose best previous-token and best statistical induction heads both clear the head finder's floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from induction_bigram.anymodel.circuit import chance_floor
from induction_bigram.errors import DataError

if TYPE_CHECKING:
    from induction_bigram.dynamics.measure import DynamicsPoint

MARGIN = 0.1
MIN_RECORDS = 3


@dataclass(frozen=True)
class Phase:
    """Records ``start``..``end`` (steps, inclusive) in which ``strategy`` led."""

    strategy: str
    start: int
    end: int


@dataclass(frozen=True)
class Transition:
    """The model moved from ``before`` to ``after`` after step ``last_before`` and by ``step``."""

    step: int
    last_before: int
    before: str
    after: str


@dataclass(frozen=True)
class Phases:
    """The phases and transitions of one run, with the criterion's settings (module doc)."""

    phases: tuple[Phase, ...]
    margin: float
    min_records: int

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(
            Transition(later.start, earlier.end, earlier.strategy, later.strategy)
            for earlier, later in zip(self.phases, self.phases[1:])
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "phases": [vars(p) for p in self.phases],
            "transitions": [vars(t) for t in self.transitions],
            "margin": self.margin,
            "min_records": self.min_records,
        }

    def __str__(self) -> str:
        if not self.phases:
            return (
                f"no phase: no strategy was the nearest by a margin of {self.margin:.0%} "
                f"for {self.min_records} records in a row"
            )
        if not self.transitions:
            only = self.phases[0]
            return f"no transition: nearest to {only.strategy} throughout (steps {only.start}-{only.end})"
        lines = [f"{len(self.transitions)} transition(s):"]
        lines += [f"  {t.before} -> {t.after} at step {t.step} (after {t.last_before})" for t in self.transitions]
        return "\n".join(lines)


def detect_phases(
    steps: Sequence[int],
    kl: Mapping[str, Sequence[float]],
    *,
    margin: float = MARGIN,
    min_records: int = MIN_RECORDS,
) -> Phases:
    """The phases and transitions of the KL curves ``kl[strategy][i]`` at ``steps[i]`` (module doc).

    Args:
        steps: the record steps, strictly increasing.
        kl: per strategy, KL(strategy || model) at each step (>= 0; infinite allowed).
        margin: how much nearer than the runner-up the leader must be, in (0, 1).
        min_records: how many consecutive records a leader must hold, >= 1.
    """
    steps = [int(s) for s in steps]
    if len(kl) < 2:
        raise DataError(f"phase detection needs the curves of at least 2 strategies, got {len(kl)}")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise DataError("steps must be strictly increasing")
    for name, curve in kl.items():
        if len(curve) != len(steps):
            raise DataError(f"the KL curve of {name!r} has {len(curve)} values for {len(steps)} steps")
        if any(math.isnan(v) or v < 0 for v in curve):
            raise DataError(f"the KL curve of {name!r} holds a NaN or negative value")
    if not 0 < margin < 1 or min_records < 1:
        raise DataError(f"need 0 < margin < 1 and min_records >= 1, got {margin}, {min_records}")
    leaders = [_leader({name: curve[i] for name, curve in kl.items()}, margin) for i in range(len(steps))]
    runs: list[tuple[str, int, int]] = []  # (leader, first index, last index)
    for i, leader in enumerate(leaders):
        if leader is not None and runs and runs[-1][0] == leader and runs[-1][2] == i - 1:
            runs[-1] = (leader, runs[-1][1], i)
        elif leader is not None:
            runs.append((leader, i, i))
    phases: list[Phase] = []
    for leader, first, last in runs:
        if last - first + 1 < min_records:
            continue
        if phases and phases[-1].strategy == leader:
            phases[-1] = Phase(leader, phases[-1].start, steps[last])
        else:
            phases.append(Phase(leader, steps[first], steps[last]))
    return Phases(tuple(phases), margin, min_records)


def _leader(values: Mapping[str, float], margin: float) -> str | None:
    ranked = sorted(values.items(), key=lambda item: item[1])
    (best, low), (_, second) = ranked[0], ranked[1]
    return best if low <= (1 - margin) * second and low < second else None


def head_formation_step(steps: Sequence[int], points: Sequence[DynamicsPoint]) -> int | None:
    """The first of ``steps`` whose point's best previous-token head (below the last layer) and
    best statistical induction head (last layer) both reach :func:`~induction_bigram.anymodel.
    circuit.chance_floor` of their chance levels, the floors :func:`~induction_bigram.anymodel.
    find_head_pairs` holds a pair to; ``None`` when no record has both (no head formed)."""
    if len(steps) != len(points):
        raise DataError(f"{len(steps)} steps for {len(points)} dynamics points")
    for step, point in zip(steps, points):
        heads = (point.previous_token, point.statistical_induction)
        if all(h.score >= chance_floor(h.chance) for h in heads):
            return int(step)
    return None
