"""The memory, capacity and formation studies' sections of ``REPORT.md``: the text and tables
under each heading, from the first seed's result (the claims over seeds are the report's)."""

from __future__ import annotations

from collections.abc import Sequence

from induction_bigram.claims import ClaimOverSeeds
from induction_bigram.figures.markdown import markdown_table, recipe
from induction_bigram.memories.capacity import CapacityResult
from induction_bigram.memories.formation import FormationResult
from induction_bigram.memories.study import MemoriesResult


def memories_section(results: Sequence[MemoriesResult], claims: list[ClaimOverSeeds]) -> list[str]:
    result = results[0]  # the first seed's details; the claims cover every seed
    rows = [
        [name, f"{scores['recall']:.3f}", f"{scores['margin']:.2f}", f"{scores['cosine']:.3f}", scores["convention"]]
        for name, scores in result.memories.items()
    ]
    formation = ", ".join(f"{name} {step}" for name, step in result.formation.items())
    return [
        f"{recipe(result.config)}; final in-context accuracy {result.final['in_context_accuracy']:.3f}.",
        "",
        *markdown_table(["memory", "recall@1", "margin", "cosine to ideal", "convention"], rows),
        "",
        f"First evaluated step with recall >= {result.config.memories.formation_level}: {formation}.",
    ]


def capacity_section(results: Sequence[CapacityResult], claims: list[ClaimOverSeeds]) -> list[str]:
    result = results[0]  # the first seed's details; the claims cover every seed
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
    return [f"Trained with {recipe(result.config)} at each d.", "", *markdown_table(header, rows)]


def formation_section(results: Sequence[FormationResult], claims: list[ClaimOverSeeds]) -> list[str]:
    result = results[0]  # the first seed's details; the claims cover every seed
    config = result.config
    memories = list(result.runs[0].formation)
    runs = [(run.optimizer, run) for run in result.runs] + [(f"{run.optimizer} (grid)", run) for run in result.grid]
    rows = [
        [name, f"{run.lr:g}", *(str(run.formation[m]) for m in memories), f"{run.in_context_accuracy[-1]:.3f}"]
        for name, run in runs
    ]
    header = ["optimizer", "lr", *(f"{m} forms at step" for m in memories), "final in-context accuracy"]
    grid = " Grid rows: each optimizer at 1x, 3x its preset's rate (claims 35-38, section 3.6)." if result.grid else ""
    return [
        f"Every step scored (d = {config.model.d_model}, T = {config.task.seq_len}, K = {config.task.n_triggers}, "
        f"batch {config.train.batch_size}, {config.train.steps} steps; each optimizer at the rate in the table); "
        "a memory forms at the first step from which its "
        f"chance-normalised recall stays >= {config.formation.level:g} (docs/THEORY.md section 3.6).{grid}",
        "",
        *markdown_table(header, rows),
    ]
