"""``induction-bigram reproduce``: every study over seeds, and ``REPORT.md`` / ``numbers.json``.

Orchestration only. Each study (:mod:`induction_bigram.studies`) runs as a sweep over
``reproduce.seeds`` seeds (:mod:`induction_bigram.sweeps`: Ray tasks, one CPU each by default,
all studies' seeds in one pool), into ``OUT/<study>/runs/seed=<s>/`` with the sweep's tables
beside it. Each claim, its threshold defined by its study, is judged over the seeds
(:func:`induction_bigram.claims.aggregate_claims`); the details and figures show the first
seed's result. :mod:`.render` writes the Markdown.
"""

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

from induction_bigram.config import Config, Presets, at_least, section
from induction_bigram.errors import ConfigError, InductionBigramError
from induction_bigram.figures import save_figures
from induction_bigram.files import Existing, atomic_write_text, claim_folder, dumps_json
from induction_bigram.provenance import provenance
from induction_bigram.report.render import StudySection, render_report
from induction_bigram.studies import STUDIES
from induction_bigram.sweeps import SweepSpec, SweepTable, run_sweeps
from induction_bigram.sweeps.execute import RUNS, SPEC, read_records

REPORT = "REPORT.md"
NUMBERS = "numbers.json"


@section("reproduce")
class ReproduceSettings:
    """How the report runs its studies.

    Attributes:
        seeds: seeds per study (each sets ``train.seed`` and ``model.seed``).
        cpus_per_run: CPUs, and torch threads, of each run.
        studies: the studies it runs when ``--only`` names none (empty: every study).
    """

    seeds: int = at_least(1, 5)
    cpus_per_run: float = at_least(0.01, 1.0)
    studies: tuple[str, ...] = ()

    def check(self) -> None:
        unknown = [name for name in self.studies if name not in STUDIES]
        if unknown:
            raise ConfigError(f"reproduce.studies: unknown study {unknown[0]!r}; choose from {', '.join(STUDIES)}")


def config_type() -> type[Config]:
    """The report's config class for the studies registered now: one field per study, holding
    its config (keys look like ``incontext.incontext.per_cell`` or ``memories.train.steps``),
    then the report's own settings (``reproduce.seeds``)."""
    return _config_type(tuple((name, study.config_type) for name, study in STUDIES.items()))


@functools.cache
def _config_type(studies: tuple[tuple[str, type[Config]], ...]) -> type[Config]:
    reproduce = ("reproduce", ReproduceSettings, dataclasses.field(default=ReproduceSettings()))
    return dataclasses.make_dataclass("ReproduceConfig", [*studies, reproduce], bases=(Config,), frozen=True)


SETTINGS: dict[str, tuple[str, ReproduceSettings]] = {
    "quick": (
        "Small settings over 5 seeds (the last run's wall time: docs/report-quick/numbers.json, provenance).",
        ReproduceSettings(),
    ),
    "full": (
        "The reference recipe at batch 512, widths up to 256, five positional variants, 5 seeds.",
        ReproduceSettings(seeds=5, cpus_per_run=2.0),
    ),
    "formation-grid": (
        "The formation study alone at its ``grid`` preset over 10 seeds: the order judged over the grid.\n"
        "Claims 35-38, docs/THEORY.md section 3.6. Too slow for ``quick`` (60 runs of 600 "
        "steps): docs/report-formation-grid took 48 minutes of wall time on 2 CPU cores shared with "
        "other jobs (load average 12-15): 12 minutes two seeds at a time, then 36 resumed four at a "
        "time (``--set reproduce.cpus_per_run=0.5``); on idle cores it was not timed.",
        ReproduceSettings(seeds=10),
    ),
    "idealised": (
        "The in-context study alone at its ``full`` preset over 5 seeds: the run and its idealised twin.\n"
        "Claims 44-45, docs/THEORY.md section 4.2. ``quick`` leaves the twin out (it doubles the study's "
        "training, and claim 44 holds by construction, 45 is reported): docs/report-idealised.",
        ReproduceSettings(),
    ),
    "test": (
        "Tiny models trained a few steps, 2 seeds: checks the bookkeeping, not the claims.",
        ReproduceSettings(seeds=2),
    ),
}
"""Each ``reproduce`` preset's description and settings; the studies' configs in it are their
registry entries' (:attr:`~induction_bigram.studies.Study.reproduce`)."""


def _preset(name: str) -> Callable[[], Config]:
    """The maker of the ``reproduce`` preset ``name``: every study's config there, and the
    studies that name it as the ones it runs (all of them: every study)."""

    def make() -> Config:
        settings = SETTINGS[name][1]
        named = tuple(study.name for study in STUDIES.values() if name in study.reproduce)
        if len(named) < len(STUDIES):
            settings = dataclasses.replace(settings, studies=named)
        configs = {study.name: study.report_config(name) for study in STUDIES.values()}
        return config_type()(**configs, reproduce=settings)

    make.__doc__ = SETTINGS[name][0]
    return make


PRESETS: Presets[Config] = Presets("reproduce", {name: _preset(name) for name in SETTINGS})


def reproduce(
    config: Config,
    out_dir: str | Path,
    *,
    studies: list[str] | None = None,
    progress: bool = True,
    existing: Existing = "resume",
    preset: str | None = None,
    address: str | None = None,
) -> Path:
    """Run the studies of ``config`` (all, or the names in ``studies``) over its seeds into
    ``out_dir`` and write ``out_dir/REPORT.md`` and ``numbers.json``; returns the report's path.

    Runs already finished in ``out_dir`` are loaded, not retrained (``existing="resume"``), and
    a study the report there already holds stays in it when ``studies`` leaves it out;
    ``"overwrite"`` retrains them, ``"refuse"`` refuses a folder that holds a report. ``address``
    joins a Ray cluster (default: ``RAY_ADDRESS``, else a local Ray). ``preset`` names the
    preset ``config`` came from, for the report's header. Without ``studies``, the config's
    ``reproduce.studies`` (empty: every study).
    """
    settings = config.reproduce
    studies = studies or list(settings.studies) or None
    with claim_folder(out_dir, "reproduce", existing=existing) as out_dir:
        kept = _reported(out_dir, studies or list(STUDIES)) if existing == "resume" else {}
        names = [name for name in STUDIES if name in (studies or STUDIES) or name in kept]
        specs = {n: kept.get(n) or SweepSpec(target=n, config=getattr(config, n), seeds=settings.seeds) for n in names}
        began = time.perf_counter()
        # the later studies train more models per run (lengths: one per variant), so their runs
        # are submitted first and the short runs of the others fill the cores around them
        order = names[::-1]
        sweeps = [(specs[n], out_dir / n) for n in order]
        tables = dict(
            zip(order, run_sweeps(sweeps, address=address, cpus_per_run=settings.cpus_per_run, progress=progress))
        )
        wall = time.perf_counter() - began
        sections = [_section(out_dir, name, tables[name]) for name in names]
        numbers = {s.study.name: {"claims": [c.to_dict() for c in s.claims_over_seeds]} for s in sections}
        for s in sections:
            numbers[s.study.name] |= {"seeds": tables[s.study.name].aggregate(), "first_seed": s.result.summary()}
        numbers["seconds"] = {"wall": wall, **{s.study.name: s.seconds for s in sections}}
        run_codes = [record.get("code") for name in names for record in read_records(out_dir / name).values()]
        numbers["provenance"] = provenance(settings.seeds, wall, run_codes)
        numbers["config"] = {"preset": preset, **config.to_dict()}
        numbers["config"] |= {name: spec.config.to_dict() for name, spec in kept.items() if spec.config is not None}
        atomic_write_text(out_dir / NUMBERS, dumps_json(numbers) + "\n")
        atomic_write_text(out_dir / REPORT, render_report(sections, preset, wall, numbers["provenance"]))
        return out_dir / REPORT


def _reported(out_dir: Path, names: list[str]) -> dict[str, SweepSpec]:
    """The studies that the report already in ``out_dir`` holds and ``names`` lacks, each with
    the sweep it ran: a resumed report that runs fewer studies keeps them (their finished runs
    are loaded, not retrained), so that it is merged, never truncated."""
    try:
        earlier = json.loads((out_dir / NUMBERS).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no earlier report (or an unreadable one, which is rewritten whole)
        return {}
    kept = {}
    for name in STUDIES:
        if name in names or not isinstance(earlier, dict) or name not in earlier:
            continue
        path = out_dir / name / SPEC
        try:
            kept[name] = SweepSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:  # ConfigError is a ValueError
            raise InductionBigramError(
                f"{out_dir / NUMBERS} reports the {name} study but its sweep {path} cannot be read ({err}); "
                f"add --only {name} to run it again, or --overwrite to start the report again"
            ) from None
    return kept


def _section(out_dir: Path, name: str, table: SweepTable) -> StudySection:
    """One study's results over its seeds, its first seed's figures written."""
    if table.failed:
        first = table.failed[0]
        raise InductionBigramError(
            f"{len(table.failed)} {name} run(s) failed (first: {first['run']}: {first['error']}); "
            f"see {out_dir / name / 'runs.csv'}; the same command reruns them"
        )
    study = STUDIES[name]
    folder = out_dir / name
    results = [
        study.result.from_dict(json.loads((folder / RUNS / row["run"] / "result.json").read_text()))
        for row in table.rows
    ]
    drawn = study.figures(results[0]) | (study.seed_figures(results) if study.seed_figures else {})
    figures = save_figures(drawn, folder / "figures")
    written = [str(Path(f).relative_to(out_dir)) for f in figures]
    return StudySection(study, results[0], written, sum(row["seconds"] for row in table.rows), results=results)
