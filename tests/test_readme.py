"""The README and the docs/ pages: their Python examples run as printed (the training one shrunk
to a few steps), the README stays a ten-minute read, and every generated block is what
scripts/docs_numbers.py writes from its file, with its numbers those of the file."""

import importlib.util
import json
import re

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
PAGES_WITH_EXAMPLES = ["docs/guide.md", "docs/transformerlens-versions.md"]


def python_blocks(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def _script():
    spec = importlib.util.spec_from_file_location("docs_numbers", REPO / "scripts" / "docs_numbers.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _prose(text: str) -> str:
    """``text`` without its generated blocks, code, link targets and section numbers."""
    text = re.sub(r"<!-- ([\w-]+) -->.*?<!-- /\1 -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"sections? \d+(\.\d+)*", "", text)


def test_the_readme_is_short_and_has_its_examples():
    assert len(README.read_text().splitlines()) <= 200
    assert len(python_blocks(README)) >= 2
    for page in PAGES_WITH_EXAMPLES:
        assert python_blocks(REPO / page), page


def test_the_readme_names_every_top_level_name():
    import induction_bigram

    text = README.read_text()
    assert [name for name in induction_bigram.__all__ if f"`{name}`" not in text and f"ib.{name}" not in text] == []


def test_the_readme_links_to_pages_that_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target


@pytest.mark.slow
def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "runs/quick" lands here
    code = "\n".join(python_blocks(README))
    shrunk = 'ib.config.tiny(ib.preset("quick"))'
    assert 'ib.preset("quick")' in code
    namespace: dict = {}
    exec(compile(code.replace('ib.preset("quick")', shrunk), "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "quick" / "checkpoint.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_the_docs_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile("\n".join(python_blocks(REPO / page)), page, "exec"), namespace)


SCRIPT = _script()


@pytest.mark.parametrize("name", list(SCRIPT.PAGES))
def test_each_generated_block_is_what_its_file_says_in_its_page(name):
    """The block between the markers is what scripts/docs_numbers.py writes (the claims from
    docs/report-quick/numbers.json, the shipped models from their own config, metrics and
    source files, the capacity law from its sweeps' JSON), and it sits in its page once."""
    text = (REPO / SCRIPT.PAGES[name]).read_text()
    start, end = SCRIPT.markers(name)
    assert text.count(start) == 1 and text.count(end) == 1
    quoted = start + text.split(start)[1].split(end)[0] + end
    assert quoted == SCRIPT.block(name), "run: .venv/bin/python scripts/docs_numbers.py"
    others = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert [p.name for p in others if start in p.read_text()] == [(REPO / SCRIPT.PAGES[name]).name]


@pytest.mark.parametrize(
    "name, file", [("capacity-law", "capacity_law.json"), ("capacity-law-fixed", "capacity_law_fixed.json")]
)
def test_each_capacity_law_number_is_its_sweeps_value(name, file):
    """Read back from the page, independently of the renderer: each transition's x* and interval,
    and each n's crossing, are the values its sweep's JSON holds for that memory and model."""
    law = json.loads((REPO / "docs" / file).read_text())
    text = (REPO / SCRIPT.PAGES[f"{name}-table"]).read_text()
    table = text.split(f"<!-- {name}-table -->")[1].split(f"<!-- /{name}-table -->")[0]
    per_n = text.split(f"<!-- {name}-per-n -->")[1].split(f"<!-- /{name}-per-n -->")[0]
    rows = [r.split(" | ") for r in table.strip().splitlines()[2:]]
    each = [r.split(" | ") for r in per_n.strip().splitlines()[2:]]
    assert len(rows) == len(each) == len(law["transitions"])
    for t, row, crossing in zip(law["transitions"], rows, each):
        assert (row[0].strip("| "), row[1]) == (t["memory"], t["model"]) == (crossing[0].strip("| "), crossing[1])
        assert [float(x) for x in re.findall(r"-?[\d.]+", row[3])] == [t["mean"], t["low"], t["high"]]
        stated = dict(re.findall(r"n = (\d+): ([\d.]+|none)", crossing[2]))
        assert stated == {n: "none" if v["mean"] is None else f"{v['mean']:g}" for n, v in t["per_n"].items()}
        assert {n: float(v) for n, v in stated.items() if v != "none"} == {
            n: v["mean"] for n, v in t["per_n"].items() if v["mean"] is not None
        }


def test_the_results_prose_types_no_measurement():
    """Outside its generated blocks, the results page states no decimal but the capacity law's
    own settings (the recall level of a crossing, the collapse spread), read from its file."""
    law = json.loads((REPO / "docs" / "capacity_law.json").read_text())
    stated = {
        float(x) for x in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", _prose((REPO / "docs" / "results.md").read_text()))
    }
    assert stated <= {law["threshold"], law["collapse_spread"]}


def test_the_readme_prose_types_no_measurement():
    """Outside its generated block, the README's decimals are versions (TransformerLens, Python)."""
    prose = _prose(README.read_text())
    for match in re.finditer(r"(?<![\w.])\d+\.\d+(\.\d+)?(?![\w.])", prose):
        before = prose[max(0, match.start() - 40) : match.start()]
        assert re.search(r"(TL|TransformerLens \d|tested on|Python >=) ?\(?$|TL $", before), (match.group(), before)
