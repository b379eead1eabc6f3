"""The hijack against Bayes over alpha (docs/THEORY.md section 9.4): one markov model trained per
alpha, its statistical induction head found or not, and its n* on designed prompts beside Bayes n*.

For each alpha in ``markov.alphas``: train (or load, ``out_dir/alpha=<a>``) the markov run at that
alpha (:func:`~induction_bigram.training.trainer.train_or_load`, the dynamics recorded at each
evaluation), look for a (previous-token, induction) pair on the held-out chains
(:func:`~induction_bigram.anymodel.find_head_pairs`: the induction score there is the statistical
one), and, where one clears its floors, measure every pair of every alpha on the designed prompts
(:func:`~induction_bigram.markov.hijack.measure_hijack`). Without such a head the alpha reports
"no head" and no n*: a threshold no mechanism makes would mislead.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from induction_bigram.anymodel.circuit import find_head_pairs
from induction_bigram.data.markov import MarkovTask
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.data.stats import BigramStats
from induction_bigram.dynamics import DynamicsPoint, head_formation_step, run_dynamics, track_dynamics
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.markov.config import MarkovStudyConfig
from induction_bigram.markov.hijack import Pair, candidate_pairs, measure_hijack, model_thresholds, select_pairs
from induction_bigram.serialise import Record
from induction_bigram.training.markov import held_out_batch
from induction_bigram.training.trainer import train_or_load


@dataclass(frozen=True)
class AlphaResult(Record):
    """One alpha's model.

    Attributes:
        alpha: the prior's strength it was trained at.
        train_seconds: its training's wall time.
        dynamics: its last :class:`~induction_bigram.dynamics.DynamicsPoint` (held-out chains).
        head_step: the first evaluated step at which its heads had formed
            (:func:`~induction_bigram.dynamics.head_formation_step`; None: not by the end).
        heads: :meth:`~induction_bigram.anymodel.circuit.HeadPairSearch.to_dict` on the held-out chains.
        induction_head: the induction head of the best pair that clears the floors (None: no head).
        cells: ``{str(T): {part: [pair][n]}}`` (:func:`measure_hijack`; empty without a head).
        thresholds: ``{str(T): [n* per pair]}`` (None: no switch up to max_count; empty without a head).
    """

    alpha: float
    train_seconds: float
    dynamics: DynamicsPoint
    head_step: int | None
    heads: dict[str, Any]
    induction_head: tuple[int, int] | None
    cells: dict[str, dict[str, list[list[float]]]]
    thresholds: dict[str, list[int | None]]

    @property
    def has_head(self) -> bool:
        return self.induction_head is not None


@dataclass(frozen=True)
class MarkovResult(Record):
    """The study's result: the designed pairs (``chosen_for``: the alphas that chose each) and each alpha's model."""

    config: MarkovStudyConfig
    pairs: list[Pair]
    chosen_for: list[list[float]]
    alphas: dict[str, AlphaResult]
    wall_seconds: float

    def bayes(self, alpha: float) -> list[int]:
        """n*_Bayes of every pair at ``alpha``."""
        return [p.bayes(alpha) for p in self.pairs]

    def own_pairs(self, alpha: float) -> list[int]:
        """The indices of the pairs chosen for ``alpha``."""
        return [i for i, alphas in enumerate(self.chosen_for) if alpha in alphas]

    def capped(self, n_star: int | None) -> int:
        """A model's n* with "no switch" as max_count + 1 (the claims' convention)."""
        return self.config.markov.max_count + 1 if n_star is None else n_star

    def gap(self, alpha: float) -> float | None:
        """Mean |n*_model - n*_Bayes| over ``alpha``'s own pairs and the lengths (None without a head)."""
        a = self.alphas[_key(alpha)]
        if not a.has_head:
            return None
        bayes = self.bayes(alpha)
        gaps = [abs(self.capped(t[i]) - bayes[i]) for t in a.thresholds.values() for i in self.own_pairs(alpha)]
        return sum(gaps) / len(gaps) if gaps else None

    def mean_threshold(self, alpha: float) -> float | None:
        """The model's mean n* (capped) over every pair and length (None without a head)."""
        a = self.alphas[_key(alpha)]
        if not a.has_head:
            return None
        values = [self.capped(n) for t in a.thresholds.values() for n in t]
        return sum(values) / len(values)

    def summary(self) -> dict[str, Any]:
        """Per alpha: the head verdict and the step its heads formed, the excess-loss ratio and its
        denominator (the global bigram's excess loss over Bayes: what a statistical induction head
        can gain at all), the mean n* gap and mean n* (model, Bayes)."""
        out: dict[str, Any] = {}
        for key, a in self.alphas.items():
            bayes = self.bayes(a.alpha)
            out[key] = {
                "has_head": a.has_head,
                "head_step": a.head_step,
                "excess_ratio": a.dynamics.excess_ratio,
                "bigram_excess": a.dynamics.strategy_loss["bigram"] - a.dynamics.strategy_loss["bayes"],
                "statistical_induction": a.dynamics.statistical_induction.score,
                "n_star_gap": self.gap(a.alpha),
                "n_star_model": self.mean_threshold(a.alpha),
                "n_star_bayes": sum(min(b, self.config.markov.max_count + 1) for b in bayes) / len(bayes),
                "train_seconds": a.train_seconds,
            }
        return out

    def derived(self) -> dict[str, Any]:
        """:meth:`summary`, written after the fields (and recomputed, not read, by ``from_dict``)."""
        return {"summary": self.summary()}


def _key(alpha: float) -> str:
    return f"{alpha:g}"


def design_pairs(stats: BigramStats, config: MarkovStudyConfig) -> tuple[list[Pair], list[list[float]]]:
    """Every alpha's pairs (:func:`select_pairs`, from the statistics alone), merged: the pairs
    and, for each, the alphas that chose it."""
    settings = config.markov
    candidates = candidate_pairs(stats)
    pairs: list[Pair] = []
    chosen_for: list[list[float]] = []
    for alpha in settings.alphas:
        for pair in select_pairs(candidates, alpha, settings.pairs_per_alpha, settings.max_count):
            if pair not in pairs:
                pairs.append(pair)
                chosen_for.append([])
            chosen_for[pairs.index(pair)].append(alpha)
    return pairs, chosen_for


def run(
    config: MarkovStudyConfig,
    out_dir: str | Path | None = None,
    *,
    progress: bool = True,
    existing: Existing = "resume",
) -> MarkovResult:
    """Train (or load from ``out_dir/alpha=<a>``) one model per alpha, measure each (module doc)
    and, when ``out_dir`` is given, write ``result.json`` there. ``out_dir`` is a markov study
    folder (:func:`~induction_bigram.files.claim_folder`); ``existing``: ``"resume"`` reuses its
    finished runs, ``"overwrite"`` retrains, ``"refuse"`` refuses an earlier study there."""
    return run_in_study_folder(out_dir, "markov", existing, lambda out: _run(config, out, progress))


def _run(config: MarkovStudyConfig, out_dir: Path | None, progress: bool) -> MarkovResult:
    began = time.perf_counter()
    settings = config.markov
    stats = BigramStats.from_corpus(config.task.corpus)
    pairs, chosen_for = design_pairs(stats, config)
    alphas = {}
    for alpha in settings.alphas:
        run_dir = out_dir / f"alpha={_key(alpha)}" if out_dir is not None else None
        trained = train_or_load(config.run_config(alpha), run_dir, progress=progress, track=[track_dynamics])
        model, run_config = trained.model, trained.config
        model.eval()
        held_out = held_out_batch(run_config, MarkovTask(stats, run_config.task))
        search = find_head_pairs(model, tokens=held_out.tokens.to(next(model.parameters()).device))
        head = search.best.induction if search.found else None
        cells, thresholds = {}, {}
        if head is not None:
            designer = PromptDesigner(stats)
            cells = measure_hijack(
                model,
                designer,
                pairs,
                settings.lengths,
                settings.max_count,
                settings.prompts_per_cell,
                head,
                seed=settings.eval_seed,
                chunk_size=settings.chunk_size,
            )
            thresholds = {T: model_thresholds(parts["logit"]) for T, parts in cells.items()}
        result = AlphaResult(
            alpha,
            trained.final["elapsed_seconds"],
            DynamicsPoint.from_dict(trained.final),
            head_formation_step(*run_dynamics(trained.metrics)[:2]),
            search.to_dict(),
            head,
            cells,
            thresholds,
        )
        alphas[_key(alpha)] = result
        if progress:
            tqdm.write(_line(result, pairs, settings.max_count), file=sys.stderr)
    return MarkovResult(config, pairs, chosen_for, alphas, time.perf_counter() - began)


def _line(a: AlphaResult, pairs: list[Pair], max_count: int) -> str:
    excess = "n/a" if a.dynamics.excess_ratio is None else f"{a.dynamics.excess_ratio:.3f}"
    head = (
        "no statistical induction head"
        if a.induction_head is None
        else f"induction head L{a.induction_head[0]}H{a.induction_head[1]}"
    )
    line = f"alpha {a.alpha:g}: excess ratio {excess}, {head}"
    if a.thresholds:
        longest = a.thresholds[max(a.thresholds, key=int)]
        shown = ", ".join(
            f"{'>' + str(max_count) if m is None else m}/{p.bayes(a.alpha)}" for m, p in zip(longest, pairs)
        )
        line += f"; n* model/Bayes at the longest length: {shown}"
    return line
