"""``induction-bigram reproduce``: run every study and write ``REPORT.md`` and ``numbers.json``.

Orchestration only. Each study (:mod:`induction_bigram.studies`) runs into its own folder
under the report folder (``memories/``, ``capacity/``, ``incontext/``, ``lengths/``, each with
its ``result.json`` and ``figures/``); its claims, thresholds included, come from the study;
:mod:`.render` writes the Markdown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from induction_bigram.config import Config, Presets
from induction_bigram.figures import save_figures
from induction_bigram.files import Existing, atomic_write_text, claim_folder, dumps_json
from induction_bigram.incontext import PRESETS as INCONTEXT
from induction_bigram.incontext import InContextConfig
from induction_bigram.lengths import PRESETS as LENGTHS
from induction_bigram.lengths import LengthsConfig
from induction_bigram.memories.capacity import PRESETS as CAPACITY
from induction_bigram.memories.capacity import CapacityConfig
from induction_bigram.memories.study import PRESETS as MEMORIES
from induction_bigram.memories.study import MemoriesConfig
from induction_bigram.report.render import StudySection, render_report
from induction_bigram.studies import STUDIES

REPORT = "REPORT.md"
NUMBERS = "numbers.json"


@dataclass(frozen=True)
class ReproduceConfig(Config):
    """One config per study; keys look like ``incontext.incontext.per_cell`` or
    ``memories.train.steps``."""

    memories: MemoriesConfig
    capacity: CapacityConfig
    incontext: InContextConfig
    lengths: LengthsConfig


def _quick() -> ReproduceConfig:
    """Small settings: about 11 minutes on 2 CPU cores."""
    return ReproduceConfig(MEMORIES["quick"], CAPACITY["quick"], INCONTEXT["quick"], LENGTHS["cpu"])


def _full() -> ReproduceConfig:
    """The reference recipe at batch 512, widths up to 256, five positional variants: about an
    hour on 2 CPU cores."""
    lengths = LENGTHS["cpu"].with_overrides({"lengths.variants": ("ape", "rpe", "rope", "nope", "rope-nobias")})
    return ReproduceConfig(MEMORIES["reference"], CAPACITY["full"], INCONTEXT["full"], lengths)


def _test() -> ReproduceConfig:
    """Tiny models trained a few steps: checks the bookkeeping, not the claims."""
    return ReproduceConfig(MEMORIES["test"], CAPACITY["test"], INCONTEXT["test"], LENGTHS["test"])


PRESETS: Presets[ReproduceConfig] = Presets("reproduce", {"quick": _quick, "full": _full, "test": _test})


def reproduce(
    config: ReproduceConfig,
    out_dir: str | Path,
    *,
    studies: list[str] | None = None,
    progress: bool = True,
    existing: Existing = "resume",
    preset: str | None = None,
) -> Path:
    """Run the studies of ``config`` (all, or the names in ``studies``) into ``out_dir`` and
    write ``out_dir/REPORT.md`` and ``numbers.json``; returns the report's path.

    Runs already finished in ``out_dir`` are loaded, not retrained (``existing="resume"``);
    ``"overwrite"`` retrains them, ``"refuse"`` refuses a folder that holds a report. The
    folder is held with :func:`~induction_bigram.files.claim_folder`. ``preset`` names the
    preset ``config`` came from, for the report's header.
    """
    with claim_folder(out_dir, "reproduce", existing=existing) as out_dir:
        sections = []
        for name in studies or list(STUDIES):
            study = STUDIES[name]
            began = time.perf_counter()
            torch.manual_seed(0)
            result = study.run(getattr(config, name), out_dir / name, progress=progress, existing="resume")
            figures = save_figures(study.figures(result), out_dir / name / "figures")
            sections.append(
                StudySection(
                    study, result, [str(Path(f).relative_to(out_dir)) for f in figures], time.perf_counter() - began
                )
            )
        numbers = {s.study.name: s.result.summary() for s in sections}  # in full: NAME/result.json
        numbers["claims"] = {s.study.name: [c.to_dict() for c in s.claims] for s in sections}
        numbers["seconds"] = {s.study.name: s.seconds for s in sections}
        numbers["config"] = {"preset": preset, **config.to_dict()}
        atomic_write_text(out_dir / NUMBERS, dumps_json(numbers) + "\n")
        atomic_write_text(out_dir / REPORT, render_report(sections, preset))
        return out_dir / REPORT
