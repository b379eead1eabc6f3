"""The studies, by name: what the CLI and the report run, in pipeline order.

Every study folder has the same parts (docs in each ``study.py``): a config with presets, a
``run`` from config to result (``analyse`` where the study reads an existing run folder), a
result that converts to and from JSON, its figures and its claims. This module only lists
them, so that nothing else needs to know which study lives where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import induction_bigram.incontext as incontext
import induction_bigram.lengths as lengths
import induction_bigram.markov as markov
from induction_bigram.config import Presets
from induction_bigram.incontext.figures import figures as incontext_figures
from induction_bigram.lengths.figures import figures as lengths_figures
from induction_bigram.markov.figures import figures as markov_figures
from induction_bigram.markov.figures import seed_figures as markov_seed_figures
from induction_bigram.memories import capacity, formation
from induction_bigram.memories import study as memories
from induction_bigram.memories.figures import capacity_figures, formation_figures, memory_figures


@dataclass(frozen=True)
class Study:
    """One study's parts.

    Attributes:
        name: the key of its settings section (``--set NAME.key=value``), its folder kind and
            its ``reproduce --only`` name.
        title: a heading for reports.
        presets: its named configs; the first is the default.
        run: ``run(config, out_dir, *, progress, existing) -> result``.
        result: the result class (``from_dict``).
        figures: ``figures(result) -> {file name: figure or view}``.
        claims: ``claims(result) -> [Claim]``.
        analyse: ``analyse(model, stats, config, *, metrics, progress) -> result`` on an
            existing run (None: the study trains its own models).
        seed_figures: ``seed_figures(results) -> {file name: figure}`` over every seed's result
            (None: the figures show the first seed only).
    """

    name: str
    title: str
    presets: Presets
    run: Callable[..., Any]
    result: type
    figures: Callable[[Any], dict[str, Any]]
    claims: Callable[[Any], list]
    analyse: Callable[..., Any] | None = None
    seed_figures: Callable[[list[Any]], dict[str, Any]] | None = None

    @property
    def default_preset(self) -> str:
        return next(iter(self.presets))


STUDIES: dict[str, Study] = {
    "memories": Study(
        "memories",
        "Training the induction head and its three memories",
        memories.PRESETS,
        memories.run,
        memories.MemoriesResult,
        memory_figures,
        memories.claims,
        memories.analyse,
    ),
    "capacity": Study(
        "capacity",
        "The three memories: theory-built against trained",
        capacity.PRESETS,
        capacity.run,
        capacity.CapacityResult,
        capacity_figures,
        capacity.claims,
    ),
    "formation": Study(
        "formation",
        "The order in which the memories form",
        formation.PRESETS,
        formation.run,
        formation.FormationResult,
        formation_figures,
        formation.claims,
    ),
    "incontext": Study(
        "incontext",
        "In-context against bigram",
        incontext.PRESETS,
        incontext.run,
        incontext.InContextResult,
        incontext_figures,
        incontext.claims,
        incontext.analyse,
    ),
    "lengths": Study(
        "lengths",
        "Positional encodings and long prompts",
        lengths.PRESETS,
        lengths.run,
        lengths.LengthsResult,
        lengths_figures,
        lengths.claims,
    ),
    "markov": Study(
        "markov",
        "The hijack against Bayes over alpha",
        markov.PRESETS,
        markov.run,
        markov.MarkovResult,
        markov_figures,
        markov.claims,
        seed_figures=markov_seed_figures,
    ),
}
