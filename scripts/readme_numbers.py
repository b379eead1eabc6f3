"""Write the claims table of docs/report-quick/numbers.json into README.md, between the
markers ``<!-- report-claims -->`` and ``<!-- /report-claims -->``.

    .venv/bin/python scripts/readme_numbers.py

The README's numbers come from this generated file, never typed by hand;
tests/test_readme.py checks that the block is what this script writes.
"""

import json
from pathlib import Path

from induction_bigram.report.render import readme_claims

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- report-claims -->", "<!-- /report-claims -->"


def block(numbers_path: Path = REPO / "docs" / "report-quick" / "numbers.json") -> str:
    return f"{START}\n{readme_claims(json.loads(numbers_path.read_text()))}\n{END}"


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + block() + after)


if __name__ == "__main__":
    main()
