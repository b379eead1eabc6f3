"""Whether a model has an induction circuit, and which heads form it (docs/THEORY.md section 3.8).

:func:`find_head_pairs` scores every head (:func:`~.heads.score_heads`), ranks the (previous-token
head, induction head) pairs (:func:`~.heads.head_pairs`) and gives a verdict: a pair is a circuit
only when both of its heads clear a floor set by what a head *without* the behaviour scores on the
same prompts (a head attending uniformly over the keys it may see: :attr:`~.heads.HeadScores.chance`).
The answer says so when no pair clears it, and names the best candidate, instead of returning a
best guess: an untrained model's heads sit near chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from induction_bigram.anymodel.heads import HeadPair, HeadScores, head_pairs, score_heads
from induction_bigram.errors import ModelShapeError, NoCircuitError
from induction_bigram.model import Model

GAP_FRACTION = 0.25
"""A head shows a behaviour when its score closes at least this fraction of the gap between a
uniform head's score on the same prompts (:attr:`HeadScores.chance`) and a perfect head's 1."""


def circuit_floor(scores: HeadScores, kind: str) -> float:
    """The score a head of ``kind`` must reach to count: :func:`chance_floor` of its chance level.
    An untrained model's heads sit near chance (an induction score of about 0.04 on 25-token
    halves, against a floor of 0.28), a formed head near 1; on short prompts (a few triggers
    repeated) chance is higher and so is the floor."""
    return chance_floor(scores.chance[kind])


def chance_floor(chance: float) -> float:
    """chance + :data:`GAP_FRACTION` x (1 - chance): the score that counts as the behaviour."""
    return chance + GAP_FRACTION * (1.0 - chance)


@dataclass(frozen=True)
class HeadPairSearch:
    """The answer of :func:`find_head_pairs`: whether the model has an induction circuit, and
    the candidates it was judged on.

    Attributes:
        candidates: the best (previous-token head, induction head) pairs, circuit or not, best first.
        floors: per kind (``previous_token``, ``induction``), the score a head must reach.
        scores: every head's scores, with the chance level the floors come from.
    """

    candidates: tuple[HeadPair, ...]
    floors: dict[str, float]
    scores: HeadScores

    def clears(self, pair: HeadPair) -> bool:
        """Whether both heads of ``pair`` reach their floors."""
        return (
            pair.previous_token_score >= self.floors["previous_token"]
            and pair.induction_score >= self.floors["induction"]
        )

    @property
    def circuits(self) -> tuple[HeadPair, ...]:
        """The candidates whose heads both reach their floors, best first (empty: no circuit)."""
        return tuple(p for p in self.candidates if self.clears(p))

    @property
    def found(self) -> bool:
        return bool(self.circuits)

    @property
    def best(self) -> HeadPair:
        """The best pair that is a circuit; :class:`NoCircuitError` when none is."""
        if not self.found:
            raise NoCircuitError(str(self))
        return self.circuits[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "floors": dict(self.floors),
            "chance": dict(self.scores.chance),
            "candidates": [{**p.to_dict(), "circuit": self.clears(p)} for p in self.candidates],
        }

    def __str__(self) -> str:
        floors = (
            f"floors: previous-token {self.floors['previous_token']:.3f}, induction {self.floors['induction']:.3f} "
            f"(a uniform head's score + {GAP_FRACTION:g} of its gap to 1)"
        )
        if self.found:
            return f"induction circuit: {self.best}; {floors}"
        best = f"best candidate {self.candidates[0]}" if self.candidates else "no candidate pair"
        return f"no induction circuit: no pair has both heads above their floors ({best}); {floors}"


def find_head_pairs(model: Model, top: int | None = 3, **probe: Any) -> HeadPairSearch:
    """Score every head (:func:`score_heads`, keyword arguments ``probe``) and say whether the
    model has an induction circuit: the best ``top`` pairs as candidates (every pair when
    ``None``), and the verdict (``.found``, ``.best``, which raises :class:`NoCircuitError`
    when no pair clears the floors of :func:`circuit_floor`). Needs two layers or more."""
    if model.cfg.n_layers < 2:
        raise ModelShapeError(f"an induction circuit needs 2 layers or more; the model has {model.cfg.n_layers}")
    scores = score_heads(model, **probe)
    floors = {kind: circuit_floor(scores, kind) for kind in ("previous_token", "induction")}
    return HeadPairSearch(tuple(head_pairs(scores, top)), floors, scores)
