"""A claim of docs/THEORY.md, the number that tests it, and whether it held; and the verdict
over seeds (docs/THEORY.md section 8).

Each study defines its claims, thresholds included, next to the code that measures them
(``claims(result)`` in its ``study.py``); :mod:`induction_bigram.report` only collects and
renders them. A claim is one of three kinds:

- ``"threshold"``: a statistic ``value`` compared with ``threshold`` in ``direction``; ``held``
  is computed here (:func:`compare`, the one place that does the comparison), ``None`` when the
  statistic is undefined in this seed (``value`` None or NaN).
- ``"yes/no"``: a statistic such as an order, given as ``held`` (``None``: a tie, undecided in
  this seed); ``value`` may carry a number shown beside it.
- ``"reported"``: measured and shown, not judged (``held`` None).

:func:`aggregate_claims` judges each claim over seeds: a threshold claim holds when the whole
95% t-interval of its value over seeds clears the threshold, fails when the whole interval lies
on the wrong side, and is undecided otherwise; a yes/no claim holds when it held in every seed,
fails when it failed in every seed, and is undecided otherwise. The interval is the t interval
of per-seed means (:mod:`induction_bigram.intervals`: over training seeds, each seed's value
already a mean over its prompts), clipped to the statistic's range where the claim gives one
(``bounds``).

**The registry** (``claims_registry.json``, :func:`registry`): every claim a study makes is
registered with an id, its statement, statistic, threshold and direction, its role (a *finding*,
which could go either way, or a *sanity* check, true by construction and shown apart) and the
date and commit that registered it, before its first run. An entry is never edited: a changed
statement, statistic, threshold or direction is a new claim with a new id, and the old entry
stays, marked ``superseded_by`` with its last verdict (a test compares every entry with its
first version in git). :func:`registered` finds a claim's entry and refuses one edited in place.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from induction_bigram.intervals import mean_interval
from induction_bigram.serialise import Record

Direction = Literal[">=", "<=", ">", "<"]
Kind = Literal["threshold", "yes/no", "reported"]
Role = Literal["finding", "sanity"]
REGISTRY = Path(__file__).with_name("claims_registry.json")
_COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_OPPOSITE = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


def compare(value: float, direction: Direction, threshold: float) -> bool:
    """Whether ``value direction threshold`` (``0.95 >= 0.95`` is True)."""
    return bool(_COMPARE[direction](value, threshold))


@dataclass(frozen=True)
class Claim(Record):
    """One statement and its verdict in one run (one seed).

    Attributes:
        section: the docs/THEORY.md section (or sections, ``"4, 5.6"``) that makes it.
        statement: the claim in words, with its threshold.
        measured: the number(s) that test it, in words.
        held: ``True`` / ``False`` / ``None`` (undecided in this seed, or only reported);
            computed from value, direction and threshold when a threshold is given.
        value: the statistic the claim is judged on (``None`` when it has none or it is undefined).
        threshold, direction: the claim holds when ``value direction threshold``.
        statistic: what ``value`` is, in the words the report prints before the threshold
            (``"held-out R^2 per prompt"`` gives ``held-out R^2 per prompt >= 0.9``); required
            with a threshold, so a threshold is never shown without what it bounds; for a
            yes/no claim, the test that gives ``held``.
        reported: measured and shown only, not judged.
        bounds: the statistic's range, ``(low, high)`` (an accuracy ``(0, 1)``; ``None``:
            unbounded); the interval over seeds is clipped to it.
    """

    section: str
    statement: str
    measured: str
    held: bool | None = None
    value: float | None = None
    threshold: float | None = None
    direction: Direction | None = None
    reported: bool = False
    statistic: str | None = None
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        value = None if self.value is None or math.isnan(self.value) else float(self.value)
        object.__setattr__(self, "value", value)
        if (self.threshold is None) != (self.direction is None):
            raise ValueError(f"claim {self.statement!r}: give both threshold and direction, or neither")
        if self.direction is not None and self.direction not in _COMPARE:
            raise ValueError(f"claim {self.statement!r}: unknown direction {self.direction!r}")
        if self.threshold is not None and not self.statistic:
            raise ValueError(f"claim {self.statement!r}: a threshold needs the statistic it bounds")
        if self.reported and (self.held is not None or self.threshold is not None):
            raise ValueError(f"claim {self.statement!r}: a reported claim has no threshold and no verdict")
        if self.threshold is not None:
            held = None if value is None else compare(value, self.direction, self.threshold)
            if self.held is not None and self.held != held:
                raise ValueError(f"claim {self.statement!r}: held={self.held} contradicts its value {value}")
            object.__setattr__(self, "held", held)

    @property
    def kind(self) -> Kind:
        if self.threshold is not None:
            return "threshold"
        return "reported" if self.reported else "yes/no"


def _held_in_every_seed(helds: list[bool | None]) -> bool | None:
    """docs/THEORY.md section 8's rule for a yes/no statistic."""
    if helds and all(h is True for h in helds):
        return True
    if helds and all(h is False for h in helds):
        return False
    return None


@dataclass(frozen=True)
class ClaimOverSeeds(Record):
    """One claim judged over seeds (docs/THEORY.md section 8).

    Attributes:
        section, statement, kind, threshold, direction, statistic: as in every seed's :class:`Claim`.
        n_seeds: how many seeds made the claim.
        mean, low, high: mean of the value over the seeds that define it and its 95% t-interval
            of per-seed means, clipped to ``bounds`` (``None`` when no seed has a value;
            ``low == high`` for one seed).
        n_values: how many seeds define the value.
        held_per_seed: each seed's verdict.
        measured: each seed's ``measured`` text.
        held: the verdict over seeds; ``None`` is undecided (or only reported).
        id, role: the claim's registry id (``None``: not registered) and role (:data:`REGISTRY`).
    """

    section: str
    statement: str
    kind: Kind
    n_seeds: int
    mean: float | None
    low: float | None
    high: float | None
    n_values: int
    threshold: float | None
    direction: Direction | None
    held_per_seed: tuple[bool | None, ...]
    measured: tuple[str, ...]
    held: bool | None
    level: float = 0.95
    statistic: str | None = None
    id: int | None = None
    role: Role = "finding"
    bounds: tuple[float, float] | None = None

    @property
    def verdict(self) -> str:
        """``yes`` / ``no`` / ``undecided`` / ``reported``."""
        if self.kind == "reported":
            return "reported"
        return {True: "yes", False: "no", None: "undecided"}[self.held]

    @property
    def value_text(self) -> str:
        """e.g. ``0.994 [0.990, 0.998] over 3 seeds``, ``0.994 over 1 seed (no interval)``; ``""``
        without a value."""
        if self.mean is None:
            return ""
        if self.n_seeds == 1:
            return f"{self.mean:.3f} over 1 seed (no interval)"
        seeds = f"{self.n_values} of {self.n_seeds} seeds" if self.n_values < self.n_seeds else f"{self.n_values} seeds"
        if self.n_values == 1:
            return f"{self.mean:.3f} over {seeds} (no interval)"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}] over {seeds}"

    @property
    def threshold_text(self) -> str:
        """e.g. ``in-context accuracy >= 0.95``; for a yes/no claim its test and ``in every seed``;
        ``""`` for a reported one."""
        if self.kind == "threshold":
            return f"{self.statistic or 'value'} {self.direction} {self.threshold:g}"
        if self.kind == "yes/no":
            return f"{self.statistic}, in every seed" if self.statistic else "in every seed"
        return ""

    def derived(self) -> dict[str, str]:
        """The verdict and the value's text, written beside the fields (``numbers.json``)."""
        return {"verdict": self.verdict, "text": self.value_text}


def _judge(mean_low_high: tuple[float, float, float], direction: Direction, threshold: float) -> bool | None:
    """Whole interval on the claimed side: True; wholly on the other side: False; else None."""
    _, low, high = mean_low_high
    if compare(low, direction, threshold) and compare(high, direction, threshold):
        return True
    opposite = _OPPOSITE[direction]
    if compare(low, opposite, threshold) and compare(high, opposite, threshold):
        return False
    return None


def _over_seeds(seeds: list[Claim], level: float) -> ClaimOverSeeds:
    first = seeds[0]
    for c in seeds[1:]:
        key = lambda claim: (claim.kind, claim.threshold, claim.direction, claim.statistic, claim.bounds)  # noqa: E731
        if key(c) != key(first):
            raise ValueError(f"claim ({first.section}) {first.statement!r} differs in kind or threshold across seeds")
    helds = [c.held for c in seeds]
    values = [c.value for c in seeds if c.value is not None]
    interval = mean_interval(values, level, first.bounds) if values else None
    if first.kind == "reported":
        held = None
    elif first.kind == "threshold" and interval is not None and len(values) == len(seeds):
        held = _judge(interval, first.direction, first.threshold)
    else:  # yes/no, or a statistic undefined in some seed: every seed must agree
        held = _held_in_every_seed(helds)
    mean, low, high = interval if interval is not None else (None, None, None)
    return ClaimOverSeeds(
        first.section,
        first.statement,
        first.kind,
        len(seeds),
        mean,
        low,
        high,
        len(values),
        first.threshold,
        first.direction,
        tuple(helds),
        tuple(c.measured for c in seeds),
        held,
        level,
        first.statistic,
        bounds=first.bounds,
    )


def aggregate_claims(per_seed: list[list[Claim]], level: float = 0.95) -> list[ClaimOverSeeds]:
    """Judge each claim over seeds (docs/THEORY.md section 8). ``per_seed[i]`` is seed i's
    claims; claims are matched by (section, statement), in the first seed's order; a claim
    missing from some seed (or made twice in one) is an error that names it."""
    if not per_seed:
        raise ValueError("aggregate_claims needs the claims of at least one seed")
    keyed = []
    for i, claims in enumerate(per_seed):
        by_key: dict[tuple[str, str], Claim] = {}
        for c in claims:
            if (c.section, c.statement) in by_key:
                raise ValueError(f"seed {i} makes claim ({c.section}) {c.statement!r} twice")
            by_key[(c.section, c.statement)] = c
        keyed.append(by_key)
    every = {key for by_key in keyed for key in by_key}
    for key in sorted(every):
        missing = [i for i, by_key in enumerate(keyed) if key not in by_key]
        if missing:
            raise ValueError(f"claim ({key[0]}) {key[1]!r} is missing from seed(s) {missing}")
    return [_over_seeds([by_key[key] for by_key in keyed], level) for key in keyed[0]]


# -- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredClaim:
    """A claim as registered before its first run (module doc).

    Attributes:
        id: its number (docs/THEORY.md section 8 lists the claims by it).
        study: the study that makes it.
        section, statement, statistic, threshold, direction, kind: as its :class:`Claim` has them.
        role: ``finding`` (could go either way) or ``sanity`` (true by construction).
        registered: the date it was registered, or ``before <date>`` for a claim older than the
            registry, whose registration the history does not record.
        commit: the commit that registered it (``None`` for those older claims).
        superseded_by: the id of the claim that replaced it, if any.
        last_verdict: a superseded claim's last verdict (``yes`` / ``no`` / ``undecided`` / ``reported``).
        note: what a reader should know of how it was registered (what was seen before).
    """

    id: int
    study: str
    section: str
    statement: str
    statistic: str | None
    threshold: float | None
    direction: Direction | None
    kind: Kind
    role: Role
    registered: str
    commit: str | None
    superseded_by: int | None = None
    last_verdict: str | None = None
    note: str = ""


@functools.cache
def registry() -> dict[int, RegisteredClaim]:
    """Every registered claim by id, from :data:`REGISTRY`."""
    entries = json.loads(REGISTRY.read_text(encoding="utf-8"))["claims"]
    known = {f.name for f in fields(RegisteredClaim)}
    return {e["id"]: RegisteredClaim(**{k: v for k, v in e.items() if k in known}) for e in entries}


def registered(study: str, claim: Claim | ClaimOverSeeds) -> RegisteredClaim:
    """The registry entry of a claim that ``study`` makes, matched by section and statement;
    ``ValueError`` when there is none (a new or reworded claim: register it first) or when its
    statistic, threshold, direction or kind differ from the registration (edited in place)."""
    matches = [
        r
        for r in registry().values()
        if (r.study, r.section, r.statement) == (study, claim.section, claim.statement) and r.superseded_by is None
    ]
    if not matches:
        raise ValueError(
            f"claim ({claim.section}) {claim.statement!r} of the {study} study is not registered: add it to "
            f"{REGISTRY.name} with a new id before its first run"
        )
    entry = matches[0]
    for name in ("statistic", "threshold", "direction", "kind"):
        if getattr(entry, name) != getattr(claim, name):
            raise ValueError(
                f"claim {entry.id} ({claim.section}) {claim.statement!r}: its {name} {getattr(claim, name)!r} differs "
                f"from its registration {getattr(entry, name)!r}; register a new claim instead of editing it"
            )
    return entry
