"""Every reference to the theory note points into the repository's own docs/THEORY.md, at a
section that exists there."""

import json
import re
import subprocess

import pytest

from tests.conftest import REPO

THEORY = REPO / "docs" / "THEORY.md"
NUMBER = r"\d+(?:\.\d+)*"
CITATION = re.compile(rf"THEORY\.md,?\s+sections?\s+({NUMBER}(?:(?:,\s*|\s+and\s+|-){NUMBER})*)")


def _tracked_text_files() -> list:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    suffixes = {".py", ".md", ".ipynb", ".toml", ".json", ".txt", ".cfg", ".yml", ".yaml"}
    return [REPO / name for name in names if (REPO / name).suffix in suffixes and (REPO / name).is_file()]


def _sections() -> set[str]:
    return set(re.findall(rf"^#{{2,3}} ({NUMBER})\.? ", THEORY.read_text(encoding="utf-8"), flags=re.M))


def _cited(text: str) -> set[str]:
    return {n for group in CITATION.findall(text) for n in re.findall(NUMBER, group)}


def test_the_section_reader_finds_sections_and_citations():
    assert {"1", "3.4", "5.3", "8"} <= _sections()
    assert _cited("docs/THEORY.md sections 4, 5.6 and\n   8; THEORY.md section 5, item 6") == {"4", "5.6", "8", "5"}


def test_no_reference_leaves_the_repository():
    outside = "shared/" + "THEORY"  # split, so this file does not match itself
    offenders = [str(p.relative_to(REPO)) for p in _tracked_text_files() if outside in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_every_cited_section_exists():
    sections = _sections()
    missing = {}
    for path in _tracked_text_files():
        absent = _cited(path.read_text(encoding="utf-8")) - sections
        if absent:
            missing[str(path.relative_to(REPO))] = sorted(absent)
    assert missing == {}, f"cited sections that docs/THEORY.md does not have: {missing}"


def test_every_claim_of_the_report_names_a_section_that_exists():
    numbers = json.loads((REPO / "docs" / "report-quick" / "numbers.json").read_text(encoding="utf-8"))
    cited = {
        n
        for study in numbers.values()
        if isinstance(study, dict)
        for claim in study.get("claims", [])
        for n in re.findall(NUMBER, claim["section"])
    }
    assert cited and cited <= _sections()


def _section_8_claims() -> dict[str, list[tuple[str, str, bool]]]:
    """Study -> [(sections, statement, reported)] as docs/THEORY.md section 8 lists them."""
    text = THEORY.read_text(encoding="utf-8").split("## 8. Claims", 1)[1]
    listed: dict[str, list[tuple[str, str, bool]]] = {}
    study = None
    for line in text.splitlines():
        heading = re.match(r"^`(\w+)` \(", line)
        if heading:
            study = heading.group(1)
        item = re.match(r"^- \*\*Claim \d+\*\* \(sections? ([^)]*)\): (.*?)(\. Reported)?\.?$", line)
        if item:
            listed.setdefault(study, []).append((item.group(1), item.group(2), item.group(3) is not None))
    return listed


@pytest.mark.parametrize("report", ["report-quick", "report-formation-grid", "report-idealised"])
def test_section_8_lists_the_claims_the_report_judges_word_for_word(report):
    """Every claim a generated report judges is in section 8 under its study, word for word (section
    8 lists every registered claim, so also those a report does not run: the formation grid's,
    and superseded ones)."""
    numbers = json.loads((REPO / "docs" / report / "numbers.json").read_text(encoding="utf-8"))
    judged = {
        name: [(c["section"], c["statement"], c["kind"] == "reported") for c in study["claims"]]
        for name, study in numbers.items()
        if isinstance(study, dict) and "claims" in study
    }
    listed = _section_8_claims()
    for study, claims in judged.items():
        by_statement = {(section, statement): reported for section, statement, reported in listed.get(study, [])}
        for section, statement, reported_here in claims:
            assert (section, statement) in by_statement, f"{report}: ({section}) {statement!r} is not in section 8"
            # "Reported" in section 8 means never judged; a claim may also be reported only where a
            # preset cannot test it (W_K^1's early positions when T is no longer than them)
            assert reported_here or not by_statement[(section, statement)], (
                f"section 8 says {statement!r} is only reported"
            )
    numbered = re.findall(r"^- \*\*Claim (\d+)\*\*", THEORY.read_text(encoding="utf-8"), flags=re.M)
    assert numbered == [str(i) for i in range(1, len(numbered) + 1)]
