"""``REPORT.md`` from the studies' results: the claims table, then one section per study with
its numbers and figures. Rendering only: every number comes from a result, every verdict from
the study's own ``claims``."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from induction_bigram.claims import Claim
from induction_bigram.studies import Study


@dataclass
class StudySection:
    """One study's part of the report."""

    study: Study
    result: Any
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @cached_property
    def claims(self) -> list[Claim]:
        return self.study.claims(self.result)


def _device() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def render_report(sections: list[StudySection], preset: str | None) -> str:
    total = sum(s.seconds for s in sections)
    lines = [
        "# induction-bigram: reproduction report",
        "",
        f"Preset: {preset or 'custom (see numbers.json)'}; device: {_device()}; total {total / 60:.1f} min "
        f"({', '.join(f'{s.study.name} {s.seconds / 60:.1f}' for s in sections)}).",
        "",
        "## Claims of docs/THEORY.md",
        "",
        "| section | claim | measured | held |",
        "|---|---|---|---|",
    ]
    for s in sections:
        for c in s.claims:
            held = {True: "yes", False: "**no**", None: "reported"}[c.held]
            lines.append(f"| {c.section} | {c.statement} | {c.measured} | {held} |")
    for s in sections:
        lines += ["", f"## {s.study.title}", ""]
        lines += DETAILS.get(s.study.name, lambda r: [])(s.result)
        lines += [""]
        for figure in s.figures:
            name = figure.rsplit("/", 1)[-1]
            lines.append(
                f"![{name}]({figure})" if figure.endswith(".png") else f"Interactive view: [`{figure}`]({figure})"
            )
    lines += ["", "All numbers: `numbers.json`."]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _recipe(config: Any) -> str:
    task, model, train = config.task, config.model, config.train
    return (
        f"d = {model.d_model}, T = {task.seq_len}, K = {task.n_triggers}, {train.optimizer} lr {train.lr}, "
        f"batch {train.batch_size}, {train.steps} steps"
    )


def _memories(result: Any) -> list[str]:
    rows = [
        [name, f"{scores['recall']:.3f}", f"{scores['margin']:.2f}", f"{scores['cosine']:.3f}", scores["convention"]]
        for name, scores in result.memories.items()
    ]
    formation = ", ".join(f"{name} {step}" for name, step in result.formation.items())
    return [
        f"{_recipe(result.config)}; final in-context accuracy {result.final['in_context_accuracy']:.3f}.",
        "",
        *_table(["memory", "recall@1", "margin", "cosine to ideal", "convention"], rows),
        "",
        f"First evaluated step with recall >= {result.config.memories.formation_level}: {formation}.",
    ]


def _capacity(result: Any) -> list[str]:
    rows = [
        [
            str(r.d_model),
            f"{r.trained_accuracy:.3f}",
            f"{r.theory_accuracy:.3f}",
            " / ".join(f"{r.trained[m]['cosine']:.2f}" for m in r.trained),
        ]
        for r in result.rows
    ]
    header = ["d", "trained accuracy", "theory-built accuracy", "trained W_O2 / W_K2 / W_K1 cosine"]
    return [f"Trained with {_recipe(result.config)} at each d.", "", *_table(header, rows)]


def _incontext(result: Any) -> list[str]:
    final = result.final or {}
    trained = (
        f"in-context accuracy {final['in_context_accuracy']:.3f}, bigram loss {final['bigram_loss']:.3f} nats, "
        if final
        else ""
    )
    kl = "" if result.global_kl is None else f"global-memory KL {result.global_kl:.3f} nats"
    rows = [[r.name, f"{r.r2:.3f}", f"{r.r2_cells:.3f}", f"{r.spearman:.3f}"] for r in result.check.rungs]
    return [
        f"{_recipe(result.config)}, FFN {result.config.model.ffn}: {trained}{kl}.",
        "",
        *_table(["rung", "held-out R^2 per prompt", "per cell", "rank agreement"], rows),
    ]


def _lengths(result: Any) -> list[str]:
    def accuracies(by_length: dict[str, float]) -> str:
        return " / ".join(f"{v:.2f}" for v in by_length.values())

    variants = result.summary()["variants"]
    ks = " / ".join(f"{k}x" for k in result.config.lengths.multiples)
    rows = [
        [name, accuracies(v["accuracy_by_length"]), accuracies(v["ordinary_accuracy_by_length"])]
        for name, v in variants.items()
    ]
    return [
        f"Trained at T_train = {result.config.task.seq_len} ({_recipe(result.config)}); in-context accuracy on "
        "the last window of prompts of length k T_train whose first (k - 1) T_train positions hold no trigger "
        "(oversight) or the trigger process throughout (ordinary).",
        "",
        *_table(["variant", f"oversight {ks}", f"ordinary {ks}"], rows),
    ]


DETAILS: dict[str, Callable[[Any], list[str]]] = {
    "memories": _memories,
    "capacity": _capacity,
    "incontext": _incontext,
    "lengths": _lengths,
}
"""Per study: the lines of text and tables under its heading."""
