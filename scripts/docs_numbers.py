"""Write the generated blocks of README.md and docs/, each between its markers ``<!-- NAME -->``
and ``<!-- /NAME -->``, in the page that :data:`PAGES` names for it:

- ``what-holds`` (README.md): the findings that hold, fail and are undecided, from
  docs/report-quick/numbers.json;
- ``report-claims`` / ``incontext-paths`` (docs/results.md): the claims table and which mechanism
  carries the in-context signal, from the same file;
- ``shipped-models`` (docs/results.md): the shipped models as their own config, metrics and
  source files record them;
- ``capacity-law-table`` / ``capacity-law-per-n`` and their ``-fixed-`` twins (docs/results.md):
  the transitions of the capacity-law sweeps, docs/capacity_law.json and docs/capacity_law_fixed.json;
- ``corpus-counts`` (docs/guide.md): the shipped tiny-Shakespeare counts,
  induction_bigram/data/tinyshakespeare.json;
- ``induction-opportunity`` (docs/THEORY.md section 3.8): how much tiny Shakespeare rewards
  copying, docs/induction_opportunity.json (scripts/induction_opportunity.py's output).

    .venv/bin/python scripts/docs_numbers.py

The documents' numbers come from these files, never typed by hand; tests/test_readme.py checks
that each block is what this script writes, and that it sits in its page.
"""

import json
from collections.abc import Callable
from pathlib import Path

from induction_bigram.data.stats import BigramStats
from induction_bigram.report.render import readme_claims, readme_paths, readme_shipped_models, readme_what_holds
from induction_bigram.sweeps.capacity_law import CapacityLaw

REPO = Path(__file__).resolve().parent.parent
NUMBERS = REPO / "docs" / "report-quick" / "numbers.json"
LAW = REPO / "docs" / "capacity_law.json"
LAW_FIXED = REPO / "docs" / "capacity_law_fixed.json"
OPPORTUNITY = REPO / "docs" / "induction_opportunity.json"


def _numbers() -> dict:
    return json.loads(NUMBERS.read_text())


def _law(path: Path) -> CapacityLaw:
    return CapacityLaw.from_dict(json.loads(path.read_text()))


def corpus_counts() -> str:
    stats = BigramStats.default()
    return (
        f"N = {stats.n_tokens} characters, {int(stats.unigram_counts.sum()):,} characters of text, "
        f"{int(stats.bigram_counts.sum()):,} adjacent pairs"
    )


def induction_opportunity() -> str:
    rows = json.loads(OPPORTUNITY.read_text())["rows"]
    lines = [
        "| m matched | positions with an earlier match | copy right there | trigram right there |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['match']} | {r['applies']:.1%} | {r['copy_right']:.1%} | {r['trigram_right']:.1%} |" for r in rows]
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "what-holds": lambda: readme_what_holds(_numbers()),
    "report-claims": lambda: readme_claims(_numbers()),
    "incontext-paths": lambda: readme_paths(_numbers()),
    "shipped-models": readme_shipped_models,
    "capacity-law-table": lambda: _law(LAW).table(),
    "capacity-law-per-n": lambda: _law(LAW).per_n_table(),
    "capacity-law-fixed-table": lambda: _law(LAW_FIXED).table(),
    "capacity-law-fixed-per-n": lambda: _law(LAW_FIXED).per_n_table(),
    "corpus-counts": corpus_counts,
    "induction-opportunity": induction_opportunity,
}
PAGES: dict[str, str] = {
    "what-holds": "README.md",
    "report-claims": "docs/results.md",
    "incontext-paths": "docs/results.md",
    "shipped-models": "docs/results.md",
    "capacity-law-table": "docs/results.md",
    "capacity-law-per-n": "docs/results.md",
    "capacity-law-fixed-table": "docs/results.md",
    "capacity-law-fixed-per-n": "docs/results.md",
    "corpus-counts": "docs/guide.md",
    "induction-opportunity": "docs/THEORY.md",
}
"""Block -> the page (relative to the repository) that holds it, once."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def block(name: str) -> str:
    start, end = markers(name)
    return f"{start}\n{BLOCKS[name]()}\n{end}"


def main() -> None:
    for page in sorted(set(PAGES.values())):
        path = REPO / page
        text = path.read_text()
        for name in (n for n, p in PAGES.items() if p == page):
            start, end = markers(name)
            before, rest = text.split(start, 1)
            text = before + block(name) + rest.split(end, 1)[1]
        path.write_text(text)


if __name__ == "__main__":
    main()
