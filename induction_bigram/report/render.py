"""``REPORT.md`` from the studies' results: the claims table, then one section per study with
its numbers (its registry entry's ``section``) and figures. Rendering only: every number comes
from a result, every verdict from the study's own ``claims``, judged over seeds by
:func:`~induction_bigram.claims.aggregate_claims` (docs/THEORY.md section 8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from induction_bigram.claims import Claim, ClaimOverSeeds, aggregate_claims, registered, registry
from induction_bigram.figures.markdown import markdown_table, recipe
from induction_bigram.incontext.in_words import paths_in_words
from induction_bigram.pretrained import available, pretrained_config, pretrained_metrics, pretrained_source
from induction_bigram.provenance import device, provenance_line
from induction_bigram.studies import STUDIES, Study


@dataclass
class StudySection:
    """One study's part of the report.

    Attributes:
        study: the study.
        result: the result its details and figures show (the first seed's).
        figures: paths of its figures, relative to the report.
        seconds: time it took, all seeds together.
        results: one result per seed, ``result`` among them; empty means ``[result]`` (one seed).
    """

    study: Study
    result: Any
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    results: list[Any] = field(default_factory=list)

    @cached_property
    def claims(self) -> list[Claim]:
        """The claims of ``result`` (one seed)."""
        return self.study.claims(self.result)

    @cached_property
    def seed_claims(self) -> list[list[Claim]]:
        """The claims of each seed's result."""
        return [self.study.claims(r) for r in self.results] if self.results else [self.claims]

    @cached_property
    def claims_over_seeds(self) -> list[ClaimOverSeeds]:
        """Each claim judged over the seeds (docs/THEORY.md section 8), with its registry id and
        role (an unregistered or edited claim keeps ``id=None``, and the report says so)."""
        judged = []
        for claim in aggregate_claims(self.seed_claims):
            try:
                entry = registered(self.study.name, claim)
            except ValueError:
                judged.append(claim)
                continue
            judged.append(replace(claim, id=entry.id, role=entry.role))
        return judged


def render_report(
    sections: list[StudySection],
    preset: str | None,
    wall_seconds: float | None = None,
    record: dict[str, Any] | None = None,
) -> str:
    """The Markdown of the report; ``wall_seconds`` is the whole run's wall time (the studies'
    seeds run side by side, so each section's ``seconds`` is its runs' time summed); ``record``
    is its :func:`~induction_bigram.provenance.provenance`, whose device the header names
    (this machine's where there is none: a report rendered elsewhere keeps the runs' device)."""
    total = sum(s.seconds for s in sections) if wall_seconds is None else wall_seconds
    seeds = sorted({len(s.seed_claims) for s in sections})
    machine = (record or {}).get("device") or device()
    lines = [
        "# induction-bigram: reproduction report",
        "",
        f"Preset: {preset or 'custom (see numbers.json)'}; {'/'.join(map(str, seeds))} seeds; device: {machine}; "
        f"wall time {total / 60:.1f} min for this invocation, which reuses finished runs (run time summed over seeds: "
        f"{', '.join(f'{s.study.name} {s.seconds / 60:.1f}' for s in sections)}).",
        "",
        *([provenance_line(record), ""] if record else []),
        what_holds([c for s in sections for c in s.claims_over_seeds], [s.study.name for s in sections]),
        "",
        "## Claims of docs/THEORY.md",
        "",
        *render_claims([c for s in sections for c in s.claims_over_seeds], [s.study.name for s in sections]),
    ]
    for s in sections:
        lines += ["", f"## {s.study.title}", ""]
        lines += s.study.section(s.results or [s.result], s.claims_over_seeds)
        lines += [""]
        for figure in s.figures:
            name = figure.rsplit("/", 1)[-1]
            lines.append(
                f"![{name}]({figure})" if figure.endswith(".png") else f"Interactive view: [`{figure}`]({figure})"
            )
    lines += ["", "All numbers: `numbers.json`."]
    return "\n".join(lines) + "\n"


HELD = {"yes": "yes", "no": "**no**", "undecided": "undecided", "reported": "reported"}
"""How the held column writes each verdict."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _measured(c: ClaimOverSeeds) -> str:
    """The value column: mean and interval over seeds, and what was measured when it says more."""
    if c.n_seeds == 1:
        same = c.mean is not None and c.measured[0] == f"{c.mean:.3f}"  # the text is just the value
        return "; ".join(t for t in (c.value_text, "" if same else c.measured[0]) if t)
    parts = [c.value_text] if c.value_text else []
    if c.kind == "yes/no":
        held = sum(h is True for h in c.held_per_seed)
        undecided = sum(h is None for h in c.held_per_seed)
        parts.append(f"held in {held} of {c.n_seeds} seeds" + (f" ({undecided} undecided)" if undecided else ""))
    elif len(set(c.measured)) == 1:
        parts.append(f"{c.measured[0]} (every seed)")
    elif c.kind == "reported" or c.n_values < c.n_seeds:
        parts.append("; ".join(f"seed {i}: {m}" for i, m in enumerate(c.measured)))
    return "; ".join(parts)


def render_claims(claims: list[ClaimOverSeeds], studies: list[str] | None = None) -> list[str]:
    """The claims tables (docs/THEORY.md section 8): the findings, then the sanity checks (true by
    construction, shown apart), each with its registry id, section, claim, mean [95% interval]
    over the seeds, threshold, and held: yes / **no** / undecided (the interval straddles the
    threshold, or the seeds disagree) / reported (not judged); then the superseded claims of
    ``studies`` with their last verdict."""
    seeds = sorted({c.n_seeds for c in claims})
    if seeds == [1]:
        intro = (
            "Each claim from 1 seed, so without an interval: it holds when its statistic clears the threshold "
            "(docs/THEORY.md section 8 judges claims over at least 3 seeds)."
        )
    else:
        intro = (
            f"Each claim over {' or '.join(map(str, seeds))} seeds: it holds when the whole 95% t-interval of its "
            "statistic over seeds clears the threshold (a yes/no statistic: when it holds in every seed), fails "
            "when the whole interval lies on the other side (fails in every seed), and is undecided otherwise "
            "(docs/THEORY.md section 8). Every claim was registered before its first run (`claims_registry.json`)."
        )
    header = ["id", "section", "claim", "mean [95% interval] over seeds", "threshold", "held"]

    def rows(role: str) -> list[list[str]]:
        return [
            [
                "unregistered" if c.id is None else str(c.id),
                c.section,
                _cell(c.statement),
                _cell(_measured(c)),
                c.threshold_text,
                HELD[c.verdict],
            ]
            for c in claims
            if c.role == role
        ]

    lines = [intro, "", "Findings:", "", *markdown_table(header, rows("finding"))]
    if rows("sanity"):
        lines += ["", "Sanity checks (true by construction, so no evidence for the theory):", ""]
        lines += markdown_table(header, rows("sanity"))
    superseded = [r for r in registry().values() if r.superseded_by is not None and r.study in (studies or [])]
    if superseded:
        lines += [
            "",
            "Superseded claims (a changed statement or threshold is a new claim; the old one keeps its last verdict):",
            "",
        ]
        lines += markdown_table(
            ["id", "section", "claim", "replaced by", "last verdict"],
            [
                [str(r.id), r.section, _cell(r.statement), str(r.superseded_by), r.last_verdict or ""]
                for r in superseded
            ],
        )
    return lines


UNTESTED = (
    "the reference recipe at batch 512 (preset `full`: hours of CPU per seed)",
    "Wang & Sato's theorems themselves (the report tests consequences of them on trained models)",
)
"""What the report does not test, said beside what it does."""


def what_holds(claims: list[ClaimOverSeeds], studies: Sequence[str] = ()) -> str:
    """The findings that hold, fail and are undecided, by id and section, and what is untested;
    the sanity checks counted apart (they hold by construction). The registered claims of
    ``studies`` that none of ``claims`` judges (another preset runs them) are listed too, so that
    a claim left out of a report is said to be left out, not passed over."""
    findings = [c for c in claims if c.role == "finding" and c.verdict != "reported"]
    judged = {c.id for c in claims}
    left_out = [
        f"{r.id} ({r.section})"
        for r in registry().values()
        if r.study in studies and r.superseded_by is None and r.id not in judged
    ]

    def listed(verdict: str) -> str:
        picked = [c for c in findings if c.verdict == verdict]
        return ", ".join(f"{c.id or '?'} ({c.section})" for c in picked) if picked else "none"

    sanity = [c for c in claims if c.role == "sanity"]
    held = sum(c.verdict == "yes" for c in sanity)
    return "\n".join(
        [
            f"**What holds** (findings by claim id and section; {len(findings)} judged):",
            "",
            f"- hold: {listed('yes')}",
            f"- fail: {listed('no')}",
            f"- undecided: {listed('undecided')}",
            f"- sanity checks (true by construction, not evidence): {held} of {len(sanity)} hold",
            f"- untested: {'; '.join(UNTESTED)}",
            *(
                [f"- registered, not run in this report (other presets run them): {', '.join(left_out)}"]
                if left_out
                else []
            ),
        ]
    )


def readme_what_holds(numbers: dict[str, Any]) -> str:
    """:func:`what_holds` of a report's ``numbers.json``, as the README quotes it."""
    studies = [name for name in STUDIES if name in numbers]
    return what_holds([ClaimOverSeeds.from_dict(c) for name in studies for c in numbers[name]["claims"]], studies)


def readme_paths(numbers: dict[str, Any]) -> str:
    """:func:`paths_in_words` of a report's ``numbers.json``, as docs/results.md quotes it."""
    return paths_in_words([ClaimOverSeeds.from_dict(c) for c in numbers.get("incontext", {}).get("claims", [])])


def readme_claims(numbers: dict[str, Any]) -> str:
    """The claims table of a report's ``numbers.json``, as docs/results.md quotes it (the page's
    block is this text, and a test checks it still is)."""
    claims = [ClaimOverSeeds.from_dict(c) for name in STUDIES if name in numbers for c in numbers[name]["claims"]]
    return "\n".join(render_claims(claims, [name for name in STUDIES if name in numbers]))


def readme_shipped_models() -> str:
    """The shipped models as their own files record them (the command that trained each, and
    the last evaluation of ``metrics.jsonl``), as docs/results.md quotes them."""
    rows = []
    for name in available():
        config, final = pretrained_config(name), pretrained_metrics(name)[-1]
        memories = final.get("memories", {})
        recalls = ", ".join(f"{memory} {scores['recall']:.3f}" for memory, scores in memories.items())
        rows.append(
            [
                f"`{name}`",
                f"`{pretrained_source(name)['command']}`",
                recipe(config),
                f"{final['in_context_accuracy']:.3f}",
                recalls,
                f"{final['elapsed_seconds']:.0f}",
            ]
        )
    header = ["model", "trained by", "recipe", "in-context accuracy", "recall@1 at the end", "training seconds"]
    return "\n".join(markdown_table(header, rows))
