"""The claims registry (induction_bigram/claims_registry.json, docs/THEORY.md section 8): every claim
the report judges is registered, no registered claim is ever edited in place, and the report and
section 8 use its ids."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, fields, replace

import pytest

from induction_bigram.claims import REGISTRY, Claim, RegisteredClaim, registered, registry
from tests.conftest import REPO

REPORTS = ("report-quick", "report-formation-grid", "report-idealised")  # the generated reports in docs/
PATH = str(REGISTRY.relative_to(REPO))
CHANGEABLE = {"superseded_by", "last_verdict"}  # what may be added to an entry once it is superseded


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"git {' '.join(args)} failed here: {done.stderr.strip()[:200]}")
    return done.stdout


@pytest.mark.parametrize("report", REPORTS)
def test_every_claim_the_report_judges_is_registered_with_its_id(report):
    numbers = json.loads((REPO / "docs" / report / "numbers.json").read_text(encoding="utf-8"))
    for study, data in numbers.items():
        if not isinstance(data, dict) or "claims" not in data:
            continue
        for claim in data["claims"]:
            entry = registered(study, Claim(claim["section"], claim["statement"], "", **_judged_fields(claim)))
            assert (claim["id"], claim["role"]) == (entry.id, entry.role), claim["statement"]


def _judged_fields(claim: dict) -> dict:
    if claim["kind"] == "threshold":
        return {
            "value": 0.0,
            "threshold": claim["threshold"],
            "direction": claim["direction"],
            "statistic": claim["statistic"],
        }
    if claim["kind"] == "reported":
        return {"reported": True}
    return {"held": None, "statistic": claim["statistic"]}


def test_the_registry_is_well_formed():
    raw = json.loads(REGISTRY.read_text(encoding="utf-8"))["claims"]
    ids = [e["id"] for e in raw]
    assert ids == list(range(1, len(ids) + 1)), "ids are 1, 2, ... in the order of registration"
    entries = registry()
    assert {e.role for e in entries.values()} <= {"finding", "sanity"}
    for e in entries.values():
        assert (e.commit is None) == e.registered.startswith("before "), e.id
        assert e.superseded_by is None or (e.superseded_by > e.id and e.last_verdict), e.id


def test_no_registered_claim_is_edited_in_place():
    """Each entry as it is now equals its first version in git (only superseded_by and its last
    verdict may be added later): a changed statement or threshold must be a new claim."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    first: dict[int, dict] = {}
    for commit in _git("log", "--reverse", "--format=%H", "--", PATH).split():
        for entry in json.loads(_git("show", f"{commit}:{PATH}"))["claims"]:
            first.setdefault(entry["id"], entry)
    known = {f.name for f in fields(RegisteredClaim)}
    for claim_id, entry in registry().items():
        if claim_id in first:  # read as the registry reads it (fields left out take their defaults)
            then = RegisteredClaim(**{k: v for k, v in first[claim_id].items() if k in known})
            now, then = ({k: v for k, v in asdict(e).items() if k not in CHANGEABLE} for e in (entry, then))
            assert now == then, f"claim {claim_id} was edited in place: register a new claim instead"


def test_an_edited_or_unknown_claim_is_refused():
    entry = next(e for e in registry().values() if e.kind == "threshold" and e.superseded_by is None)
    claim = Claim(
        entry.section,
        entry.statement,
        "",
        value=1.0,
        threshold=entry.threshold,
        direction=entry.direction,
        statistic=entry.statistic,
    )
    assert registered(entry.study, claim) == entry
    with pytest.raises(ValueError, match="threshold .* differs from its registration"):
        registered(entry.study, replace(claim, threshold=entry.threshold + 0.05, held=None))
    with pytest.raises(ValueError, match="is not registered"):
        registered(entry.study, replace(claim, statement=entry.statement + " (reworded)"))


def test_section_8_numbers_the_claims_by_their_registry_ids():
    text = (REPO / "docs" / "THEORY.md").read_text(encoding="utf-8").split("## 8. Claims", 1)[1]
    listed = {
        int(n): statement
        for n, statement in re.findall(r"^- \*\*Claim (\d+)\*\* \([^)]*\): (.*?)(?:\. Reported)?\.?$", text, flags=re.M)
    }
    assert listed == {e.id: e.statement for e in registry().values()}
