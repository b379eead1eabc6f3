"""Student-t intervals over seeds, for judging a claim (docs/THEORY.md section 8).

Which interval: the t interval of per-seed means. Each seed contributes one number (its
statistic, itself a mean or a fit over that seed's evaluation prompts), and the interval is
mean -+ t s / sqrt(n) over those n numbers. A sweep's seed draws its own evaluation prompts as
well as its own training (:mod:`induction_bigram.sweeps.spec`), so the spread between seeds
holds both the training and the sampling of prompts, and the interval covers both. Where the statistic
has a range (an accuracy in [0, 1], a rank correlation in [-1, 1], an R^2 at most 1) the interval
is clipped to it (``bounds``): the t interval is symmetric and can run past a bound that no seed
can cross. Clipping moves only an end that lies outside the range, where no threshold inside the
range lies, so it never changes a verdict.

No scipy: the t quantile is computed here. For integer degrees of freedom up to 1000 the
central probability P(|T| <= t) has a closed form as a finite sum in theta = atan(t / sqrt(df))
(Abramowitz & Stegun 26.7.3-4), inverted by bisection to float precision; beyond that the
Cornish-Fisher expansion in 1 / df around the normal quantile (A&S 26.7.5) is exact to
well below 1e-9.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import NamedTuple

EXACT_DF_MAX = 1000  # above this the asymptotic expansion is used

RANGES: dict[str, tuple[float, float]] = {
    "*accuracy*": (0.0, 1.0),
    "*recall*": (0.0, 1.0),
    "*mass*": (0.0, 1.0),
    "*cosine*": (-1.0, 1.0),
    "*spearman*": (-1.0, 1.0),
    "*r2*": (-math.inf, 1.0),
    "*loss": (0.0, math.inf),
    "*_kl": (0.0, math.inf),
    "*hijack_threshold*": (0.0, math.inf),
    "*n_star*": (0.0, math.inf),  # counts, and the markov study's mean |n*_model - n*_Bayes|
    "*has_head*": (0.0, 1.0),
    "*_step": (0.0, math.inf),  # training steps (e.g. the markov study's head_step)
}
"""The range of a number a study reports, by the pattern of its dotted name (``fnmatch``): the
bounds a sweep's table clips its intervals to (:func:`range_of`); claims give theirs."""


class Interval(NamedTuple):
    """A mean and its two-sided interval; ``low == high == mean`` for a single value."""

    mean: float
    low: float
    high: float


def _central_probability(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) tan(theta)) for Student's t with ``df`` degrees of freedom (A&S 26.7.3-4)."""
    s, c = math.sin(theta), math.cos(theta)
    c2, total = c * c, 0.0
    if df % 2:  # odd: (2/pi) (theta + sin cos [1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...]), (df - 1) / 2 terms
        term = s * c
        for j in range((df - 1) // 2):
            total += term
            term *= c2 * (2 * j + 2) / (2 * j + 3)
        return 2 / math.pi * (theta + total)
    term = s  # even: sin [1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...], df / 2 terms
    for j in range(df // 2):
        total += term
        term *= c2 * (2 * j + 1) / (2 * j + 2)
    return total


def _asymptotic(p: float, df: int) -> float:
    """Cornish-Fisher expansion of the t quantile in powers of 1 / df (A&S 26.7.5)."""
    z = NormalDist().inv_cdf(p)
    g = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` (a positive integer) degrees of freedom,
    e.g. ``t_quantile(0.975, 2) == 4.3027``."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer, got {df}")
    df = int(df)
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if p == 0.5:
        return 0.0
    if df > EXACT_DF_MAX:
        return _asymptotic(p, df)
    level, low, high = 2 * p - 1, 0.0, math.pi / 2
    for _ in range(200):  # bisection on theta; stops when the bracket no longer shrinks
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if _central_probability(mid, df) < level:
            low = mid
        else:
            high = mid
    return math.sqrt(df) * math.tan((low + high) / 2)


def range_of(name: str) -> tuple[float, float] | None:
    """The range of the number called ``name`` (:data:`RANGES`; None: unbounded)."""
    return next((bounds for pattern, bounds in RANGES.items() if fnmatch.fnmatchcase(name, pattern)), None)


def mean_interval(values: Sequence[float], level: float = 0.95, bounds: tuple[float, float] | None = None) -> Interval:
    """Mean of ``values`` (one per seed) and its two-sided Student-t interval at ``level``:
    mean -+ t_{(1 + level) / 2, n - 1} s / sqrt(n) (docs/THEORY.md section 8), clipped to
    ``bounds`` (the statistic's range, e.g. ``(0, 1)`` for an accuracy; module doc). One value
    gives the zero-width interval (v, v, v): a single seed, no interval."""
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_interval needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"mean_interval needs finite values, got {values}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, mean, mean)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high)
