"""A claim of docs/THEORY.md, the number that tests it, and whether it held.

Each study defines its claims, thresholds included, next to the code that measures them
(``claims(result)`` in its ``study.py``); :mod:`induction_bigram.report` only collects and
renders them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Claim:
    """One statement and its verdict.

    Attributes:
        section: the docs/THEORY.md section (or sections, ``"4, 5.6"``) that makes it.
        statement: the claim in words, with its threshold.
        measured: the number(s) that test it, in words.
        held: ``True`` / ``False`` against the threshold; ``None`` when it is only reported.
    """

    section: str
    statement: str
    measured: str
    held: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Claim":
        return cls(**data)
