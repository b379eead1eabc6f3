"""The memory-capacity law read off a capacity sweep (docs/THEORY.md section 3.4).

An outer-product memory W = sum_k u_k v_k^T of n pairs in d dimensions recalls its pairs at top-1
once d^2 is of order n log n: the crosstalk on one coefficient is about sqrt(n) / d, and the best
of n wrong candidates sits sqrt(2 ln n) spreads above zero, so recall turns on near
d^2 ~ 2 n ln n (the conjectured sharp transition of outer-product memories). Cabannes, Dohmatob &
Bietti (ICLR 2024, "Scaling laws for associative memories") derive power laws of the error in d
under Zipf data, the setting that ``BigramStats.synthetic`` (``task.corpus=zipf:N:ALPHA:SEED``)
reproduces. This module plots each memory's recall@1 against x = d^2 / (n ln n) (natural log)
for the trained and the theory-built model of a capacity sweep, and measures where and whether
the curves for different n meet.

The stored associations n of each memory (docs/THEORY.md section 3.2):

- W_O2: n = N, one read-out pair per token;
- W_K2: n = K with fixed triggers, N with random ones (``recall``: among the triggers);
- W_K1: n = T - 1, one pair (t, t - 1) per position t >= 1.

Transition: for each seed, memory, model and n, the x at which recall@1 first reaches 0.5 from
below, interpolated linearly in ln x between the two bracketing widths (none when the curve
never crosses inside the measured widths: already above 0.5 at the smallest d, or never reaching
it). A curve is one memory of one model of one run (one n, one seed). A seed's transition for a
memory is the mean of the crossings of its curves (over n, and over the runs that share an n,
such as W_K1's across N); the reported transition is the mean over seeds with its Student-t 95%
interval (``mean_interval``), and each n's likewise over seeds.

Collapse: the curves for different n collapse onto one in x when their crossings agree. The
measure is the spread of the per-n crossings (each the mean of the crossings at that n), their standard deviation
divided by their mean (coefficient of variation), computed in three variables: x = d^2 / (n ln n),
d^2 / n and d^2 alone. The curves collapse when the spread in x is below ``COLLAPSE_SPREAD``; the
other two say how much the rescaling by n ln n gains over none and over n alone. It needs two n
that cross (W_K1 of a sweep at one T has a single n: no verdict).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import ConfigError
from induction_bigram.figures import save_figure
from induction_bigram.files import atomic_write_text, claim_folder, dumps_json
from induction_bigram.intervals import mean_interval
from induction_bigram.memories.capacity import CapacityResult
from induction_bigram.serialise import from_fields

MEMORIES = ("W_O2", "W_K2", "W_K1")
MODELS = ("trained", "theory")
THRESHOLD = 0.5  # recall@1 at the transition
COLLAPSE_SPREAD = 0.25  # largest coefficient of variation of the per-n crossings that counts as a collapse
SIGNIFICANT = 3  # significant figures of every transition number in the JSON (and docs/results.md)
SCALINGS = {"d2_over_n_log_n": lambda d, n: d * d / (n * math.log(n)), "d2_over_n": lambda d, n: d * d / n}
SCALINGS["d2"] = lambda d, n: float(d * d)


def rounded(value: float | None, digits: int = SIGNIFICANT) -> float | None:
    """``value`` to ``digits`` significant figures (idempotent; None stays None)."""
    return None if value is None or not math.isfinite(value) else float(f"{value:.{digits}g}")


def _crossing(x: float | None) -> str:
    return "none" if x is None else f"{x:g}"


def law_x(d: int, n: int) -> float:
    """x = d^2 / (n ln n)."""
    return SCALINGS["d2_over_n_log_n"](d, n)


@dataclass(frozen=True)
class LawPoint:
    """One memory of one model of one run: width d, stored pairs n, seed, recall@1, x."""

    run: str
    memory: str
    model: str
    d: int
    n: int
    seed: int
    recall: float
    x: float


@dataclass(frozen=True)
class Transition:
    """Where one memory of one model crosses recall@1 = 0.5, in x = d^2 / (n ln n).

    Attributes:
        mean / low / high: mean over seeds of each seed's crossing (the mean over that seed's
            curves, one per n and run) and the 95% interval; None when no seed crossed.
        seeds: how many seeds crossed (of ``of_seeds``).
        per_n: n -> {mean, low, high, seeds, curves}: the crossing at that n, the mean over
            seeds (each seed's the mean over its curves with that n: several when other swept
            keys, e.g. N for W_K1, leave n unchanged) with its 95% interval; ``curves`` counts
            the curves that crossed.
        spread: variable -> coefficient of variation of the per-n crossings in that variable
            (``d2_over_n_log_n``, ``d2_over_n``, ``d2``); None with fewer than two n.
        collapses: spread in x below ``COLLAPSE_SPREAD``; None with fewer than two n.
    """

    memory: str
    model: str
    mean: float | None
    low: float | None
    high: float | None
    seeds: int
    of_seeds: int
    per_n: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    spread: dict[str, float | None] = field(default_factory=dict)
    collapses: bool | None = None


@dataclass(frozen=True)
class CapacityLaw:
    """The points of a capacity sweep and the transition of each memory and model."""

    points: tuple[LawPoint, ...]
    transitions: tuple[Transition, ...]
    runs: int
    threshold: float = THRESHOLD

    def transition(self, memory: str, model: str) -> Transition:
        return next(t for t in self.transitions if (t.memory, t.model) == (memory, model))

    def table(self) -> str:
        """The transitions as a Markdown table: for each memory and model, its n, x* with its
        interval, how many seeds cross, and the spread of the per-n crossings in each variable
        (the collapse test; blank with fewer than two n)."""
        header = "| memory | model | n | x* [95% interval] | seeds that cross | spread in x, d²/n, d² | collapse |"
        rows = [header, "|" + "---|" * header.count(" | ") + "---|"]
        for t in self.transitions:
            where = "no crossing" if t.mean is None else f"{t.mean:g} [{t.low:g}, {t.high:g}]"
            spreads = [t.spread.get(name) for name in SCALINGS]
            spread = "" if spreads[0] is None else ", ".join(f"{v:g}" for v in spreads)
            collapse = {True: "yes", False: "no", None: ""}[t.collapses]
            ns = ", ".join(t.per_n)
            rows.append(
                f"| {t.memory} | {t.model} | {ns} | {where} | {t.seeds} of {t.of_seeds} | {spread} | {collapse} |"
            )
        return "\n".join(rows)

    def per_n_table(self) -> str:
        """Each memory's and model's crossing x* for every n on its own (mean over seeds; the
        collapse test compares these), as a Markdown table."""
        rows = ["| memory | model | x* for each n (mean over seeds) |", "|---|---|---|"]
        for t in self.transitions:
            each = ", ".join(f"n = {n}: {_crossing(v['mean'])}" for n, v in t.per_n.items())
            rows.append(f"| {t.memory} | {t.model} | {each} |")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variable": "d^2 / (n ln n)",
            "threshold": self.threshold,
            "collapse_spread": COLLAPSE_SPREAD,
            "significant_figures": SIGNIFICANT,
            "runs": self.runs,
            "transitions": [asdict(t) for t in self.transitions],
            "points": [asdict(p) for p in self.points],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CapacityLaw":
        """Rebuild from :meth:`to_dict` (the module's constants it writes beside the fields are not read)."""
        return from_fields(
            cls, {k: v for k, v in data.items() if k not in ("variable", "collapse_spread", "significant_figures")}
        )


# -- reading a sweep ----------------------------------------------------------------------------


def stored_pairs(memory: str, result: CapacityResult) -> int:
    """n, the associations ``memory`` stores in the models of ``result`` (module doc)."""
    task = result.config.task
    if memory == "W_K1":
        return task.seq_len - 1
    if memory == "W_K2" and task.trigger_mode == "fixed":
        return task.n_triggers
    vocab = result.config.model.d_vocab
    return vocab if vocab is not None else BigramStats.from_corpus(task.corpus).n_tokens


def points_of(result: CapacityResult, seed: int, run: str = "") -> list[LawPoint]:
    """The (d, n, seed, recall@1) of every memory and model of one capacity result (n >= 2)."""
    points = []
    for memory in MEMORIES:
        n = stored_pairs(memory, result)
        if n < 2:  # n ln n = 0: no x
            continue
        for row in result.rows:
            for model, scores in (("trained", row.trained), ("theory", row.theory)):
                if memory in scores:
                    recall = float(scores[memory]["recall"])
                    points.append(LawPoint(run, memory, model, row.d_model, n, seed, recall, law_x(row.d_model, n)))
    return points


def read_sweep(sweep_dir: str | Path) -> tuple[list[LawPoint], int]:
    """The points of every done run of a capacity sweep folder, and the number of such runs."""
    folder = Path(sweep_dir)
    try:
        lines = (folder / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        raise ConfigError(f"no sweep at {folder} (no runs.jsonl)") from None
    points, runs = [], 0
    for line in lines:
        record = json.loads(line)
        if record.get("status") != "done":
            continue
        path = folder / "runs" / record["run"] / "result.json"
        try:
            result = CapacityResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{path} is not a capacity result ({type(err).__name__}: {err})") from None
        points += points_of(result, int(record["seed"]), record["run"])
        runs += 1
    if not points:
        raise ConfigError(f"{folder} holds no finished capacity run")
    return points, runs


# -- the transition -----------------------------------------------------------------------------


def crossing(xs: Iterable[float], recalls: Iterable[float], threshold: float = THRESHOLD) -> float | None:
    """The x where recall first reaches ``threshold`` from below, interpolated in ln x between
    the bracketing points (sorted by x); None if it never does inside them."""
    curve = sorted(zip(xs, recalls))
    for (x0, r0), (x1, r1) in zip(curve, curve[1:]):
        if r0 < threshold <= r1:
            share = (threshold - r0) / (r1 - r0)
            return math.exp(math.log(x0) + share * (math.log(x1) - math.log(x0)))
    return None


def _interval(values: list[float], count: str) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "low": None, "high": None, count: 0}
    mean, low, high = mean_interval(values)
    return {"mean": rounded(mean), "low": rounded(low), "high": rounded(high), count: len(values)}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _spread(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return rounded(sd / mean)


def transition_of(points: list[LawPoint], memory: str, model: str, threshold: float = THRESHOLD) -> Transition:
    """The transition of one memory and model (module doc)."""
    mine = [p for p in points if (p.memory, p.model) == (memory, model)]
    seeds = sorted({p.seed for p in mine})
    ns = sorted({p.n for p in mine})
    curves: dict[tuple[int, str, int], list[LawPoint]] = {}  # (n, run, seed) -> its points
    for p in mine:
        curves.setdefault((p.n, p.run, p.seed), []).append(p)
    crossings: dict[tuple[int, str, int], float] = {}  # (n, run, seed) -> x*
    for key, curve in curves.items():
        x = crossing([p.x for p in curve], [p.recall for p in curve], threshold)
        if x is not None:
            crossings[key] = x
    of_seed = {seed: [x for (_, _, s), x in crossings.items() if s == seed] for seed in seeds}
    overall = _interval([_mean(xs) for xs in of_seed.values() if xs], "seeds")
    by_n = {n: [x for (m, _, _), x in crossings.items() if m == n] for n in ns}
    per_n = {}
    for n in ns:  # each seed's mean crossing at this n (over the runs that share it), then over seeds
        at_n = [[x for (m, _, s), x in crossings.items() if (m, s) == (n, seed)] for seed in seeds]
        per_n[str(n)] = _interval([_mean(xs) for xs in at_n if xs], "seeds") | {"curves": len(by_n[n])}
    spread = {  # the same crossings in each variable, d*^2 recovered from x* = d*^2 / (n ln n)
        name: _spread([_mean([scale(math.sqrt(x * n * math.log(n)), n) for x in xs]) for n, xs in by_n.items() if xs])
        for name, scale in SCALINGS.items()
    }
    x_spread = spread["d2_over_n_log_n"]
    return Transition(
        memory,
        model,
        overall["mean"],
        overall["low"],
        overall["high"],
        sum(1 for xs in of_seed.values() if xs),
        len(seeds),
        per_n,
        spread,
        None if x_spread is None else x_spread < COLLAPSE_SPREAD,
    )


def capacity_law(points: list[LawPoint], runs: int, threshold: float = THRESHOLD) -> CapacityLaw:
    """The transitions of every memory and model the points hold."""
    present = [(m, k) for m in MEMORIES for k in MODELS if any((p.memory, p.model) == (m, k) for p in points)]
    transitions = tuple(transition_of(points, m, k, threshold) for m, k in present)
    return CapacityLaw(tuple(points), transitions, runs, threshold)


# -- the figure and the files -------------------------------------------------------------------


def plot_capacity_law(law: CapacityLaw) -> Figure:
    """One panel per memory: recall@1 against x = d^2 / (n ln n) on a log axis, the mean over
    seeds with its 95% interval, trained solid and theory-built dashed, one colour per n, and
    the transition of each model marked (a vertical line at its mean, its interval shaded)."""
    memories = [m for m in MEMORIES if any(p.memory == m for p in law.points)]
    fig = Figure(figsize=(4.2 * len(memories), 4.0), layout="constrained")
    axes = fig.subplots(1, len(memories), squeeze=False)[0]
    for ax, memory in zip(axes, memories):
        ns = sorted({p.n for p in law.points if p.memory == memory})
        colours = {n: f"C{i % 10}" for i, n in enumerate(ns)}
        for model, style in (("trained", "-"), ("theory", "--")):
            for n in ns:
                curve = [p for p in law.points if (p.memory, p.model, p.n) == (memory, model, n)]
                if not curve:
                    continue
                xs = sorted({p.x for p in curve})
                stats = [mean_interval(_seed_means([p for p in curve if p.x == x])) for x in xs]
                colour = colours[n]
                ax.errorbar(
                    xs,
                    [s.mean for s in stats],
                    yerr=[[s.mean - s.low for s in stats], [s.high - s.mean for s in stats]],
                    color=colour,
                    linestyle=style,
                    marker="o" if model == "trained" else "s",
                    markersize=3.5,
                    capsize=2,
                    label=f"{'trained' if model == 'trained' else 'theory-built'}, n = {n}",
                )
            t = law.transition(memory, model)
            if t.mean is not None:
                ax.axvline(t.mean, color="k", linestyle=style, linewidth=1)
                low = t.low if t.low > 0 else min(p.x for p in law.points if p.memory == memory)  # log axis
                ax.axvspan(low, t.high, color="k", alpha=0.08 if model == "trained" else 0.05)
        ax.axhline(law.threshold, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xscale("log")
        ax.set(xlabel="x = d² / (n ln n)", ylabel="recall@1", ylim=(-0.03, 1.03), title=_title(law, memory))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6.5, loc="lower right")
    seeds = sorted({p.seed for p in law.points})
    fig.suptitle(
        f"Capacity law: recall@1 against d²/(n ln n), mean and 95% interval over {len(seeds)} seeds; "
        "vertical lines: transition (recall 0.5), trained solid, theory-built dashed",
        fontsize=9,
    )
    return fig


def _seed_means(points: list[LawPoint]) -> list[float]:
    """Each seed's mean recall over the given points (its runs), so intervals are over seeds."""
    seeds = sorted({p.seed for p in points})
    return [_mean([p.recall for p in points if p.seed == seed]) for seed in seeds]


def _title(law: CapacityLaw, memory: str) -> str:
    parts = []
    for model in MODELS:
        t = law.transition(memory, model)
        where = "no crossing" if t.mean is None else f"x* = {t.mean:g} [{t.low:g}, {t.high:g}]"
        if t.mean is not None and t.seeds < t.of_seeds:
            where += f" ({t.seeds} of {t.of_seeds} seeds cross)"
        parts.append(f"{'trained' if model == 'trained' else 'theory'}: {where}")
    return f"{memory}\n" + "\n".join(parts)


def write_capacity_law(sweep_dir: str | Path) -> tuple[CapacityLaw, Path, Path]:
    """Read the capacity sweep in ``sweep_dir`` and write ``capacity_law.png`` and
    ``capacity_law.json`` there; returns the law and their paths."""
    folder = Path(sweep_dir)
    points, runs = read_sweep(folder)
    law = capacity_law(points, runs)
    figure, data = folder / "capacity_law.png", folder / "capacity_law.json"
    with claim_folder(folder, "sweep", existing="resume"):  # a sweep still writing its tables is refused
        save_figure(plot_capacity_law(law), figure, dpi=130)
        atomic_write_text(data, dumps_json(law.to_dict()) + "\n")
    return law, figure, data
