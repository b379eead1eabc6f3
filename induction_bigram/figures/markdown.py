"""Markdown for the report's study sections (each study's own ``markdown.py``): tables, and a
run's recipe in one line."""

from __future__ import annotations

from typing import Any


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def recipe(config: Any) -> str:
    """A run config's model and training in one line (d, T, K, optimiser, batch, steps, FFN)."""
    task, model, train = config.task, config.model, config.train
    return (
        f"d = {model.d_model}, T = {task.seq_len}, K = {task.n_triggers}, {train.optimizer} lr {train.lr}, "
        f"batch {train.batch_size}, {train.steps} steps"
        + ("" if model.ffn == "none" else f", {model.ffn} FFN")
        + (" reading only w_E(z_t)" if model.ffn_reads == "token" else "")
    )
