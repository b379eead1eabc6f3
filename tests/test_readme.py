"""The README's Python examples run as printed (the training one shrunk to a few steps)."""

import re

import pytest

from tests.conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "runs/quick" lands here
    code = "\n".join(BLOCKS)
    shrunk = 'ib.config.tiny(ib.preset("quick"))'
    assert 'ib.preset("quick")' in code
    namespace: dict = {}
    exec(compile(code.replace('ib.preset("quick")', shrunk), "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "quick" / "checkpoint.pt").is_file()


@pytest.mark.parametrize(
    "name",
    [
        "report-claims",
        "incontext-paths",
        "what-holds",
        "shipped-models",
        "capacity-law-table",
        "capacity-law-fixed-table",
    ],
)
def test_the_readme_generated_blocks_are_what_their_files_say(name):
    """README numbers come from generated files: the block between the markers is what
    scripts/readme_numbers.py writes (the claims from docs/report-quick/numbers.json, the
    shipped models from their own config, metrics and source files)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_numbers", REPO / "scripts" / "readme_numbers.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = (REPO / "README.md").read_text()
    start, end = script.markers(name)
    assert readme.count(start) == 1
    quoted = start + readme.split(start)[1].split(end)[0] + end
    assert quoted == script.block(name), "run: .venv/bin/python scripts/readme_numbers.py"


def test_the_readme_capacity_law_numbers_are_the_sweeps():
    """Every decimal number the README's capacity-law section states (outside its commands and
    section references) is one of the two capacity-law sweeps' (docs/capacity_law.json,
    docs/capacity_law_fixed.json), as rounded there."""
    import json

    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- capacity-law -->")[1].split("<!-- /capacity-law -->")[0]
    prose = re.sub(r"```.*?```", "", section, flags=re.S)
    prose = re.sub(r"section \d+(\.\d+)*", "", prose)
    stated = {float(x) for x in re.findall(r"(?<![\w.:])-?\d+\.\d+(?![\w.:])", prose)}

    def numbers(value):
        if isinstance(value, dict):
            return {n for v in value.values() for n in numbers(v)}
        if isinstance(value, list):
            return {n for v in value for n in numbers(v)}
        return {float(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) else set()

    recall_step = {0.2}  # recall@1 over 5 triggers moves in steps of 1/5
    measured = set()
    for name in ("capacity_law.json", "capacity_law_fixed.json"):
        measured |= numbers(json.loads((REPO / "docs" / name).read_text()))
    assert len(stated) >= 15 and stated - measured - recall_step == set()
