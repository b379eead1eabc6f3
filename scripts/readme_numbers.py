"""Write the README's generated blocks, each between its markers ``<!-- NAME -->`` and
``<!-- /NAME -->``:

- ``report-claims``: the claims table of docs/report-quick/numbers.json;
- ``incontext-paths``: which mechanism carries the in-context signal, from the same file;
- ``what-holds``: the findings that hold, fail and are undecided, from the same file;
- ``shipped-models``: the shipped models as their own config, metrics and source files record them;
- ``capacity-law-table`` / ``capacity-law-fixed-table``: the transitions of the capacity-law
  sweeps, docs/capacity_law.json and docs/capacity_law_fixed.json.

    .venv/bin/python scripts/readme_numbers.py

The README's numbers come from these generated files, never typed by hand;
tests/test_readme.py checks that each block is what this script writes.
"""

import json
from collections.abc import Callable
from pathlib import Path

from induction_bigram.report.render import readme_claims, readme_paths, readme_shipped_models, readme_what_holds
from induction_bigram.sweeps.capacity_law import CapacityLaw

REPO = Path(__file__).resolve().parent.parent
NUMBERS = REPO / "docs" / "report-quick" / "numbers.json"
BLOCKS: dict[str, Callable[[], str]] = {
    "report-claims": lambda: readme_claims(json.loads(NUMBERS.read_text())),
    "incontext-paths": lambda: readme_paths(json.loads(NUMBERS.read_text())),
    "what-holds": lambda: readme_what_holds(json.loads(NUMBERS.read_text())),
    "shipped-models": readme_shipped_models,
    "capacity-law-table": lambda: law_table(REPO / "docs" / "capacity_law.json"),
    "capacity-law-fixed-table": lambda: law_table(REPO / "docs" / "capacity_law_fixed.json"),
}


def law_table(path: Path) -> str:
    return CapacityLaw.from_dict(json.loads(path.read_text())).table()


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def block(name: str) -> str:
    start, end = markers(name)
    return f"{start}\n{BLOCKS[name]()}\n{end}"


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    for name in BLOCKS:
        start, end = markers(name)
        before, rest = text.split(start, 1)
        text = before + block(name) + rest.split(end, 1)[1]
    readme.write_text(text)


if __name__ == "__main__":
    main()
