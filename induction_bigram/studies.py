"""The studies, by name: the one place each is listed, and all that the CLI and the report
know of it.

Every study folder has the same parts (docs in each ``study.py``): a config with presets, a
``run`` from config to result (``analyse`` where the study reads an existing run folder), a
result that converts to and from JSON, its figures, its claims and its section of
``REPORT.md``. A new study is its folder and one :class:`Study` entry in :data:`STUDIES`:
``induction-bigram``'s command for it, ``reproduce`` and ``render`` read the entry
(docs/extending.md, "A new study"). The entry names its command and its configs in the
report at once, and imports its parts (torch and all) only when they are first used, so that
``induction-bigram --help`` stays quick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from induction_bigram.claims import Claim, ClaimOverSeeds
from induction_bigram.config import Config, Presets

ReportEntry = str | tuple[str, Mapping[str, Any]]
"""A study's config in one ``reproduce`` preset: one of its own presets, or one with overrides."""


@dataclass(frozen=True)
class Command:
    """A study's ``induction-bigram`` command.

    Attributes:
        name: the command.
        help: what it does, in one line without a full stop.
        example: a ``KEY=VALUE`` its ``--set`` help shows.
        reads_run: ``COMMAND RUN``, the study's ``analyse`` of an existing run folder (figures
            into ``RUN/figures`` or ``--out``); else ``COMMAND --out FOLDER``, its ``run``,
            which trains its own models there.
    """

    name: str
    help: str
    example: str
    reads_run: bool = False


@dataclass(frozen=True)
class Parts:
    """A study's code.

    Attributes:
        presets: its named configs; the first is the default.
        run: ``run(config, out_dir, *, progress, existing) -> result``.
        result: the result class (``from_dict``).
        figures: ``figures(result) -> {file name: figure or view}``.
        claims: ``claims(result) -> [Claim]``.
        section: ``section(results, claims over seeds) -> lines`` (every seed's result, the first
            first) under its heading in
            ``REPORT.md``, above its figures.
        analyse: ``analyse(model, stats, config, *, metrics, progress) -> result`` on an
            existing run (None: the study trains its own models).
        seed_figures: ``seed_figures(results) -> {file name: figure}`` over every seed's result
            (None: the figures show the first seed only).
    """

    presets: Presets
    run: Callable[..., Any]
    result: type
    figures: Callable[[Any], dict[str, Any]]
    claims: Callable[[Any], list[Claim]]
    section: Callable[[Sequence[Any], list[ClaimOverSeeds]], list[str]]
    analyse: Callable[..., Any] | None = None
    seed_figures: Callable[[list[Any]], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Study:
    """One study.

    Attributes:
        name: the key of its settings section (``--set NAME.key=value``), its folder kind and
            its ``reproduce --only`` name.
        title: a heading for reports.
        command: its command line.
        reproduce: its config in each ``reproduce`` preset that runs it (``quick``, ``full``,
            ``test``, ...), by preset; it must name ``quick``, whose config it keeps (not run)
            in the presets it does not name.
        load: imports its code: ``load() -> Parts`` (called once, on first use).
    """

    name: str
    title: str
    command: Command
    reproduce: Mapping[str, ReportEntry]
    load: Callable[[], Parts]

    @cached_property
    def parts(self) -> Parts:
        return self.load()

    @property
    def presets(self) -> Presets:
        return self.parts.presets

    @property
    def run(self) -> Callable[..., Any]:
        return self.parts.run

    @property
    def result(self) -> type:
        return self.parts.result

    @property
    def figures(self) -> Callable[[Any], dict[str, Any]]:
        return self.parts.figures

    @property
    def claims(self) -> Callable[[Any], list[Claim]]:
        return self.parts.claims

    @property
    def section(self) -> Callable[[Sequence[Any], list[ClaimOverSeeds]], list[str]]:
        return self.parts.section

    @property
    def analyse(self) -> Callable[..., Any] | None:
        return self.parts.analyse

    @property
    def seed_figures(self) -> Callable[[list[Any]], dict[str, Any]] | None:
        return self.parts.seed_figures

    @property
    def default_preset(self) -> str:
        return next(iter(self.presets))

    @property
    def config_type(self) -> type[Config]:
        """The class of its configs."""
        return type(self.presets[self.default_preset])

    def report_config(self, preset: str) -> Config:
        """Its config in the ``reproduce`` preset ``preset`` (``quick``'s where it names none)."""
        entry = self.reproduce.get(preset, self.reproduce["quick"])
        if isinstance(entry, str):
            return self.presets[entry]
        name, overrides = entry
        return self.presets[name].with_overrides(dict(overrides))


def _memories() -> Parts:
    from induction_bigram.memories import study
    from induction_bigram.memories.figures import memory_figures
    from induction_bigram.memories.markdown import memories_section

    return Parts(
        study.PRESETS, study.run, study.MemoriesResult, memory_figures, study.claims, memories_section, study.analyse
    )


def _capacity() -> Parts:
    from induction_bigram.memories import capacity
    from induction_bigram.memories.figures import capacity_figures
    from induction_bigram.memories.markdown import capacity_section

    return Parts(
        capacity.PRESETS, capacity.run, capacity.CapacityResult, capacity_figures, capacity.claims, capacity_section
    )


def _formation() -> Parts:
    from induction_bigram.memories import formation
    from induction_bigram.memories.figures import formation_figures
    from induction_bigram.memories.markdown import formation_section

    return Parts(
        formation.PRESETS,
        formation.run,
        formation.FormationResult,
        formation_figures,
        formation.claims,
        formation_section,
    )


def _incontext() -> Parts:
    import induction_bigram.incontext as incontext
    from induction_bigram.incontext.figures import figures
    from induction_bigram.incontext.markdown import incontext_section

    return Parts(
        incontext.PRESETS,
        incontext.run,
        incontext.InContextResult,
        figures,
        incontext.claims,
        incontext_section,
        incontext.analyse,
    )


def _lengths() -> Parts:
    import induction_bigram.lengths as lengths
    from induction_bigram.lengths.figures import figures
    from induction_bigram.lengths.markdown import lengths_section

    return Parts(lengths.PRESETS, lengths.run, lengths.LengthsResult, figures, lengths.claims, lengths_section)


def _markov() -> Parts:
    import induction_bigram.markov as markov
    from induction_bigram.markov.figures import figures, seed_figures
    from induction_bigram.markov.markdown import markov_section

    return Parts(
        markov.PRESETS,
        markov.run,
        markov.MarkovResult,
        figures,
        markov.claims,
        markov_section,
        seed_figures=seed_figures,
    )


STUDIES: dict[str, Study] = {
    "memories": Study(
        "memories",
        "Training the induction head and its three memories",
        Command(
            "memories",
            "project W_O2, W_K2, W_K1 of a run and write their figures",
            "memories.formation_level=0.9",
            reads_run=True,
        ),
        {"quick": "quick", "full": "reference", "test": "test"},
        _memories,
    ),
    "capacity": Study(
        "capacity",
        "The three memories: theory-built against trained",
        Command("capacity", "trained against theory-built memories across the width d", "capacity.widths=16,32"),
        {"quick": "quick", "full": "full", "test": "test"},
        _capacity,
    ),
    "formation": Study(
        "formation",
        "The order in which the memories form",
        Command(
            "formation", "the order in which the memories form, every step, under SGD and AdamW", "formation.level=0.9"
        ),
        {"quick": "quick", "full": "full", "test": "test", "formation-grid": "grid"},
        _formation,
    ),
    "incontext": Study(
        "incontext",
        "In-context against bigram",
        Command(
            "incontext",
            "in-context against bigram on a run: theory check, patching, figures",
            "incontext.per_cell=32",
            reads_run=True,
        ),
        {"quick": "quick", "full": "full", "test": "test", "idealised": "full"},
        _incontext,
    ),
    "lengths": Study(
        "lengths",
        "Positional encodings and long prompts",
        Command("lengths", "APE against RPE, RoPE and NoPE on long prompts", "lengths.multiples=1,2"),
        {
            "quick": "cpu",
            "full": ("cpu", {"lengths.variants": ("ape", "rpe", "rope", "nope", "rope-nobias")}),
            "test": "test",
        },
        _lengths,
    ),
    "markov": Study(
        "markov",
        "The hijack against Bayes over alpha",
        Command(
            "hijack",
            "n* against Bayes over alpha: one markov model per alpha, designed prompts, the path split",
            "markov.alphas=1,4",
        ),
        {"quick": "quick", "full": "full", "test": "test"},
        _markov,
    ),
}
