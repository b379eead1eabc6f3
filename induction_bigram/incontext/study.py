"""The in-context against bigram study: designed prompts -> theory check, patching, hijack curves.

:func:`run` trains (or loads) the run of an :class:`~induction_bigram.incontext.config.InContextConfig`
and :func:`analyse` runs what docs/THEORY.md sections 5 and 6 ask of a trained model (best: an
associative memory transformer, whose FFN holds the global bigrams):

1. a grid of designed prompts (n = 0..n_max uses of "q o" at several lengths T, plus prompts
   with two competing outputs) is measured (:mod:`.measure`), its logits split by path
   (docs/THEORY.md section 4.1), and checked against the predicted in-context logits
   (:mod:`.theory`) twice: on xi^IC at path level (every path from layer 2's head, directly and
   through W_F: what the model uses) and on the component view (the head's direct path only,
   which the claims of sections 5-5.7 were first registered on);
2. aligned clean/corrupted prompts are patched (:mod:`.patching`), with both corruptions;
3. hijack curves: P(o), P(g) and xi_o - xi_g against n for each T, measured and predicted;
4. for a model with a feed-forward layer, the KL probe of its global memory;
5. for a run whose FFN reads the stream, the same on its idealised twin, whose FFN reads only
   w_E(z_t) (docs/THEORY.md section 4.2; ``incontext.idealised``): trained with the same recipe
   and seed, measured on the same prompts.

:func:`claims` judges the section 5 and 6 claims on an :class:`InContextResult`. The
position-by-position patches run through ``transformer_lens.patching``; its progress bars
show (on stderr) with ``progress=True``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.anymodel.heads import head_name
from induction_bigram.anymodel.paths import ROUTES, TOKEN, path_sources
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError, ModelShapeError
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.incontext.config import InContextConfig, idealised_twin
from induction_bigram.incontext.decompose import LogitDecomposition, decompose_logits, global_memory_kl
from induction_bigram.incontext.measure import INDUCTION_HEAD, Measurements, measure
from induction_bigram.incontext.patching import PatchingResult, corrupt, patch_in_context_against_bigram
from induction_bigram.incontext.theory import Rung, TheoryCheck, check_theory, rung_prediction
from induction_bigram.incontext.weights_only import read_projection_diagonals
from induction_bigram.intervals import mean_interval
from induction_bigram.model import Model, check_vocabulary
from induction_bigram.serialise import from_fields, json_safe
from induction_bigram.training.checkpoint import MetricsRecord
from induction_bigram.training.trainer import train_or_load

STORED_AS = {
    "check": "theory",
    "component_check": "component_theory",
    "global_kl": "global_memory_kl",
    "idealised": "idealised_result",
}
"""The fields of :class:`InContextResult` whose key in its JSON is not their name."""
COMPARED = ("paths", "hijack_thresholds", "theory_r2", "theory_r2_weights_only", "global_memory_kl")
"""The :meth:`InContextResult.summary` keys that :meth:`InContextResult.comparison` keeps."""


@dataclass(frozen=True)
class InContextResult:
    """Everything the study measured on one model (tensors for plotting; :meth:`to_dict` for JSON).

    Attributes:
        config: the study's config.
        vocab: the characters of the model's vocabulary (token id i is ``vocab[i]``).
        measurements: counts and measured logits of every designed prompt.
        prediction: the best formula rung's xi_o^IC (path level) for every prompt.
        check: the ladder and the consequences of docs/THEORY.md section 5, on xi^IC at path
            level (:meth:`~.measure.Measurements.path_view`).
        component_check: the same on the component view (layer 2's direct path only).
        path_sources: the sources of ``measurements.path_difference``.
        patching: ``replace_outputs`` and ``remove_triggers`` patching (section 6).
        example: the logit decomposition at the last position of the first patching prompt,
            whose tokens, output o and global favourite g are ``example_*``.
        global_kl: mean KL of the feed-forward memory from pi_b (``None`` without an FFN).
        curves: :func:`hijack_curves`.
        final: the training's last evaluation record, when the run's metrics were given.
        idealised: the same study on the idealised twin (``None``: none was trained).
    """

    config: InContextConfig
    vocab: tuple[str, ...]
    measurements: Measurements
    prediction: Float[Tensor, " n"]
    check: TheoryCheck
    component_check: TheoryCheck
    path_sources: tuple[str, ...]
    patching: dict[str, PatchingResult]
    example: LogitDecomposition
    example_tokens: Int[Tensor, " pos"]
    example_output: int
    example_favourite: int
    global_kl: float | None
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    final: MetricsRecord | None = None
    idealised: InContextResult | None = None

    @property
    def best(self) -> Rung:
        """The formula rung whose prediction the consequences use."""
        return next(r for r in self.check.rungs if r.name == self.check.best)

    @property
    def component_best(self) -> Rung:
        """The same on the component view."""
        return next(r for r in self.component_check.rungs if r.name == self.component_check.best)

    def paths(self) -> dict[str, Any]:
        """Which paths carry xi_o - xi_g on the prompts with n >= 1 and one in-context output:
        each (source, route) path's mean contribution with its 95% t-interval over prompts, and
        the share of the in-context effect (every path from layer 2's head) that goes directly
        and through W_F. A share is NaN when the in-context effect is within float rounding of
        zero (nothing to divide by)."""
        meas = self.measurements.select((self.measurements.n >= 1) & (self.measurements.rival < 0))
        paths = meas.path_difference.double()  # [prompt, source, route]
        rows = []
        for i, source in enumerate(self.path_sources):
            for j, route in enumerate(ROUTES):
                mean, low, high = mean_interval(paths[:, i, j].tolist())
                rows.append({"source": source, "route": route, "mean": mean, "low": low, "high": high})
        head = paths[:, self.path_sources.index(head_name(INDUCTION_HEAD))].mean(0)  # [route]
        total = float(head.sum())
        small = abs(total) <= 1e-6 * max(1.0, float(paths.abs().mean(0).sum()))
        share = lambda x: math.nan if small else float(x) / total + 0.0  # noqa: E731 (+ 0.0: no -0.0)
        return {
            "n_prompts": len(paths),
            "rows": rows,
            "in_context_share_direct": share(head[0]),
            "in_context_share_through_ffn": share(head[1]),
            "in_context_difference": total,
            "global_difference": float(paths[:, self.path_sources.index(TOKEN)].mean(0).sum()),
        }

    def path_summary(self) -> dict[str, Any]:
        """:meth:`paths` with each path's mean as ``by_path[source][route]`` (numbers only, so
        that a sweep aggregates them over seeds)."""
        paths = self.paths()
        by_path: dict[str, dict[str, float]] = {}
        for row in paths.pop("rows"):
            by_path.setdefault(row["source"], {})[row["route"]] = row["mean"]
        return {**paths, "by_path": by_path}

    def summary(self) -> dict[str, Any]:
        """The JSON of ``induction-bigram incontext --json``."""
        best = self.best
        longest = max(self.check.hijack, key=int)
        return {
            "theory_r2": best.r2,
            "theory_r2_cells": best.r2_cells,
            "theory_best_rung": best.name,
            "theory_r2_weights_only": self.check.weights_only_r2,
            "theory_held_out_cells": {
                name: {
                    "scored": split.scored,
                    "held_out": split.held_out,
                    **{
                        r.name: {"r2": r.r2, "r2_cells": r.r2_cells, "spearman": r.spearman, "fitted": r.fitted}
                        for r in map(split.rung, ("weights_only", "weights_only_fitted"))
                    },
                    "causes": {r.name: r.r2 for r in split.causes},
                }
                for name, split in self.check.splits.items()
            },
            "patch_restore_layer2_head": self.patching["replace_outputs"].layer2_head_last,
            "patch_restore_layer1_after_trigger": self.patching["remove_triggers"].layer1_after_trigger,
            "patch_restore_ffn_last": self.patching["replace_outputs"].summary()["restore_ffn_last"],
            "hijack_threshold": self.check.hijack[longest]["measured"],
            "hijack_threshold_predicted": self.check.hijack[longest]["predicted"],
            "hijack_threshold_weights_only": self.check.hijack[longest]["weights_only"],
            "hijack_thresholds": self.check.hijack,
            "paths": self.path_summary(),
            "component_view": {
                "theory_r2": self.component_best.r2,
                "theory_best_rung": self.component_best.name,
                "theory_r2_weights_only": self.component_check.weights_only_r2,
            },
            "global_memory_kl": self.global_kl,
            "idealised": None if self.idealised is None else self.idealised.comparison(),
            "theory": self.check.to_dict(),
            "patching": {name: result.summary() for name, result in self.patching.items()},
            "curves": self.curves,
        }

    def comparison(self) -> dict[str, Any]:
        """What the report sets beside another model's numbers: the path shares, n* by T and the
        theory's R^2 (the idealised twin's part of :meth:`summary`)."""
        summary = self.summary()
        return {key: summary[key] for key in COMPARED}

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: :meth:`summary` with the full patching grids, plus the config, the
        per-prompt measurements and prediction, the example and the training's final record."""
        return json_safe(
            {
                **self.summary(),
                "config": self.config.to_dict(),
                "vocab": list(self.vocab),
                "measurements": self.measurements.to_dict(),
                "prediction": self.prediction.tolist(),
                "component_theory": self.component_check.to_dict(),
                "path_sources": list(self.path_sources),
                "path_rows": self.paths()["rows"],
                "patching": {name: result.to_dict() for name, result in self.patching.items()},
                "example": self.example.to_dict(),
                "example_tokens": self.example_tokens.tolist(),
                "example_output": self.example_output,
                "example_favourite": self.example_favourite,
                "final": self.final,
                "idealised_result": None if self.idealised is None else self.idealised.to_dict(),
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InContextResult":
        """Rebuild from :meth:`to_dict` or its JSON (tensors on the CPU, floats as float64): each field
        from its key (:data:`STORED_AS` where it differs from the field's name), the summaries recomputed."""
        stored = {f.name: STORED_AS.get(f.name, f.name) for f in fields(cls)}
        return from_fields(cls, {name: data[key] for name, key in stored.items() if key in data})


def run(
    config: InContextConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"
) -> InContextResult:
    """Train (or load) the config's run in ``out_dir/run`` (and its idealised twin in
    ``out_dir/run-idealised``) and :func:`analyse` it, writing
    ``out_dir/result.json``; with ``out_dir=None`` nothing is written. An unfinished run there is
    resumed; ``existing`` says what to do with a folder that already holds this study."""
    return run_in_study_folder(
        out_dir,
        "incontext",
        existing,
        lambda out: _train_and_analyse(config, None if out is None else out / "run", progress),
    )


def _train_and_analyse(config: InContextConfig, run_dir: Path | None, progress: bool) -> InContextResult:
    trained = train_or_load(config.run_config(), run_dir, progress=progress)
    result = analyse(trained.model, trained.stats, config, metrics=trained.metrics, progress=progress)
    twin = idealised_twin(config)
    if twin is None:
        return result
    twin_dir = None if run_dir is None else run_dir.with_name(f"{run_dir.name}-idealised")
    trained = train_or_load(twin.run_config(), twin_dir, progress=progress)
    idealised = analyse(trained.model, trained.stats, twin, metrics=trained.metrics, progress=progress)
    return dataclasses.replace(result, idealised=idealised)


def analyse(
    model: Model,
    stats: BigramStats,
    config: InContextConfig,
    *,
    metrics: Sequence[MetricsRecord] = (),
    progress: bool = False,
) -> InContextResult:
    """Run the whole study on a model trained as ``config`` says (see the module doc): the
    prompts are T = fractions of T_train = ``config.task.seq_len`` long and use the triggers of
    ``config.task``.

    Args:
        metrics: the run's metrics records; the last one is kept as ``result.final``.
        progress: show TransformerLens's patching progress bars (stderr).
    """
    if model.cfg.n_layers != 2:
        raise ModelShapeError(f"the in-context against bigram study needs a 2-layer model, got {model.cfg.n_layers}")
    for name in ("d_model", "n_ctx"):
        ours, theirs = getattr(config.model, name), getattr(model.cfg, name)
        if ours != theirs:
            raise ConfigError(f"config.model.{name} = {ours} but the model has {name} = {theirs}")
    check_vocabulary(model, stats)
    settings, train_length = config.incontext, config.task.seq_len
    triggers = TriggerTask(stats, config.task).shared_triggers
    model.eval()
    device = next(model.parameters()).device
    designer = PromptDesigner(stats, triggers, device)
    g = torch.Generator(device=device).manual_seed(settings.seed)
    lengths = sorted({max(4, round(f * train_length)) for f in settings.length_fractions})
    batches = [
        designer.sample(length=T, n_output=n, batch_size=settings.per_cell, generator=g)
        for T in lengths
        for n in range(0, min(settings.max_count, (T - 1) // 2) + 1)
    ]
    middle = lengths[len(lengths) // 2]
    batches += [
        designer.sample(length=middle, n_output=a, n_rival=b, batch_size=settings.per_cell, generator=g)
        for a, b in settings.competing
        if 2 * (a + b) < middle
    ]
    component = measure(model, batches)
    meas, diagonals = component.path_view(), read_projection_diagonals(model, through_ffn=True)
    check = check_theory(meas, diagonals, settings.seed, train_length=train_length, max_count=settings.max_count)
    component_check = check_theory(
        component,
        read_projection_diagonals(model),
        settings.seed,
        train_length=train_length,
        max_count=settings.max_count,
    )
    best = next(r for r in check.rungs if r.name == check.best)
    prediction = rung_prediction(meas, diagonals, best)

    length = min(settings.patch_length, train_length)
    aligned = designer.sample(
        length=length,
        n_output=settings.patch_count,
        batch_size=settings.patch_prompts,
        generator=g,
        pair_starts=designer.evenly_spaced(settings.patch_count, length),
    )
    patching = {
        mode: patch_in_context_against_bigram(model, aligned, corrupt(aligned, stats.bigram, g, mode), progress)
        for mode in ("replace_outputs", "remove_triggers")
    }
    kl = None
    if not model.cfg.attn_only:
        kl = float(global_memory_kl(model, stats, triggers).nanmean())
    example = decompose_logits(model, aligned.tokens[:1]).at(torch.full((1,), length - 1, device=device))
    return InContextResult(
        config=config,
        vocab=tuple(stats.vocab),
        measurements=component,
        prediction=prediction,
        check=check,
        component_check=component_check,
        path_sources=path_sources(model),
        patching=patching,
        example=LogitDecomposition(example.names, example.parts.cpu(), example.logits.cpu()),
        example_tokens=aligned.tokens[0].cpu(),
        example_output=int(aligned.output[0]),
        example_favourite=int(aligned.favourite[0]),
        global_kl=kl,
        curves=hijack_curves(meas, prediction - rung_prediction(meas, diagonals, best, "favourite")),
        final=metrics[-1] if metrics else None,
    )


def hijack_curves(meas: Measurements, predicted_ic_difference: Tensor) -> dict[str, dict[str, list[float]]]:
    """Per length T, against n: mean P(o), P(g), measured xi_o - xi_g and the predicted one
    (predicted xi^IC difference plus the measured xi^G difference)."""
    curves = {}
    predicted = predicted_ic_difference + meas.global_output - meas.global_favourite
    single = meas.rival < 0
    for T in meas.length.unique().tolist():
        rows = single & (meas.length == T)
        counts = sorted(meas.n_output[rows].unique().tolist())
        mean = lambda x: [float(x[rows & (meas.n_output == n)].double().mean()) for n in counts]  # noqa: E731
        curves[str(T)] = {
            "n": [float(n) for n in counts],
            "prob_output": mean(meas.prob_output),
            "prob_favourite": mean(meas.prob_favourite),
            "difference": mean(meas.logit_difference),
            "difference_predicted": mean(predicted),
        }
    return curves
