"""The training-dynamics figure: loss, KL to each strategy, head scores and the detected phases."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from matplotlib.figure import Figure

from induction_bigram.dynamics.measure import HEAD_KINDS, DynamicsPoint, kl_curves
from induction_bigram.dynamics.phases import Phases, detect_phases
from induction_bigram.errors import DataError
from induction_bigram.training.checkpoint import MetricsRecord, read_metrics


def run_dynamics(records: Sequence[MetricsRecord]) -> tuple[list[int], list[DynamicsPoint], Phases]:
    """A run's steps, its :class:`DynamicsPoint` per record and their phases
    (:func:`~induction_bigram.dynamics.phases.detect_phases` at its default criterion), from the
    metrics records of a trainer that records the points' fields (``markov`` runs)."""
    if not records:
        raise DataError("no metrics records: the run has not been evaluated yet")
    steps = [int(record["step"]) for record in records]
    points = [DynamicsPoint.from_dict(record) for record in records]
    return steps, points, detect_phases(steps, kl_curves(points))


def plot_run_dynamics(run: str | os.PathLike[str] | Sequence[MetricsRecord]) -> Figure:
    """:func:`plot_dynamics` of a run folder's ``metrics.jsonl`` (or of its records), with the
    detected phases."""
    records = read_metrics(run) if isinstance(run, (str, os.PathLike)) else run
    return plot_dynamics(*run_dynamics(records))


def plot_dynamics(steps: Sequence[int], points: Sequence[DynamicsPoint], phases: Phases | None = None) -> Figure:
    """Three panels over training steps, the phases shaded and each transition a dashed line:

    - the model's loss, each strategy's loss on the same batch as a dotted level (infinite
      ones left out);
    - KL(strategy || model) per strategy, log scale;
    - the best previous-token, induction and statistical induction scores (black), and their
      chance levels (grey: a head attending uniformly).
    """
    if len(steps) != len(points) or not points:
        raise DataError(f"need one point per step and at least one, got {len(points)} points for {len(steps)} steps")
    fig = Figure(figsize=(8, 9), layout="constrained")
    loss_ax, kl_ax, head_ax = fig.subplots(3, 1, sharex=True)
    names = list(points[0].kl)
    colours = {name: f"C{i + 1}" for i, name in enumerate(names)}
    loss_ax.plot(steps, [p.loss for p in points], color="C0", label="model")
    for name in names:
        level = points[-1].strategy_loss[name]
        if math.isfinite(level):
            loss_ax.axhline(level, color=colours[name], linestyle=":", label=name)
    loss_ax.set_ylabel("loss (nats)")
    for name in names:
        kl_ax.plot(steps, [max(p.kl[name], 1e-6) for p in points], color=colours[name], label=name)
    kl_ax.set_yscale("log")
    kl_ax.set_ylabel("KL(strategy || model)")
    # black, told apart by line style: the colours are the strategies' (the shaded phases)
    for kind, style in zip(HEAD_KINDS, ("-", "--", "-.")):
        head_ax.plot(steps, [getattr(p, kind).score for p in points], "k" + style, label=kind.replace("_", " "))
        head_ax.axhline(getattr(points[-1], kind).chance, color="grey", linestyle=style, linewidth=0.6)
    head_ax.set_ylabel("best head score")
    head_ax.set_xlabel("step")
    for ax in (loss_ax, kl_ax, head_ax):
        _draw_phases(ax, phases, colours)
        ax.legend(fontsize=7, loc="upper right")
    title = "training dynamics" if phases is None else f"training dynamics: {_summary(phases)}"
    loss_ax.set_title(title, fontsize=10)
    return fig


def _draw_phases(ax, phases: Phases | None, colours: dict[str, str]) -> None:
    if phases is None:
        return
    for phase in phases.phases:
        ax.axvspan(phase.start, phase.end, color=colours.get(phase.strategy, "grey"), alpha=0.12, linewidth=0)
    for transition in phases.transitions:
        ax.axvline(transition.step, color="black", linestyle="--", linewidth=0.8)


def _summary(phases: Phases) -> str:
    if not phases.phases:
        return "no strategy clearly nearest"
    return " -> ".join(f"{p.strategy} ({p.start})" for p in phases.phases)
