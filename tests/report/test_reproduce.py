import json
import re

import pytest
import torch

from induction_bigram.report.reproduce import PRESETS, config_type, reproduce
from induction_bigram.studies import STUDIES


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.backend_free("tl4")
def test_reproduce_judges_every_claim_over_seeds_and_writes_a_complete_report(local_ray, tmp_path):
    report = reproduce(PRESETS["test"], tmp_path, progress=False, preset="test")
    text = report.read_text()
    assert "Preset: test; 2 seeds;" in text and "## Claims of docs/THEORY.md" in text
    for study in STUDIES.values():
        assert f"## {study.title}" in text
        for seed in (0, 1):  # every seed an ordinary study folder, the sweep's tables beside them
            assert (tmp_path / study.name / "runs" / f"seed={seed}" / "result.json").is_file()
        assert (tmp_path / study.name / "aggregate.csv").is_file()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(figures) >= 8
    for figure in figures:
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG", figure
    views = re.findall(r"\[`([^`]+\.html)`\]", text)
    assert {v.split("/")[0] for v in views} == {"memories", "lengths"}
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert numbers["config"]["preset"] == "test" and numbers["seconds"]["wall"] > 0
    record = numbers["provenance"]  # issue 28 item 2: where the numbers came from
    assert record["seeds"] == 2 and record["wall_seconds"] == numbers["seconds"]["wall"]
    assert record["torch"] == torch.__version__ and record["transformer_lens"] and record["python"]
    assert record["commit"] is None or (len(record["commit"]) == 40 and isinstance(record["dirty"], bool))
    code = {"commit": record["commit"], "dirty": record["dirty"]}
    assert record["runs_by_code"] == [{**code, "runs": 2 * len(STUDIES)}]  # every run trained by this code
    assert "induction-bigram " in (tmp_path / "REPORT.md").read_text()
    claims = [c for name in STUDIES for c in numbers[name]["claims"]]
    assert len(claims) >= 12 and all(c["n_seeds"] == 2 for c in claims)
    rows = sum(text.count(f"| {held} |") for held in ("yes", "**no**", "undecided", "reported"))
    assert rows == len(claims)
    assert "over 2 seeds" in text
    # a second run reuses the finished runs and may run one study only: the report keeps the others
    again = reproduce(PRESETS["test"], tmp_path, studies=["memories"], progress=False)
    assert again.read_text().count("\n## ") == text.count("\n## ")


def test_every_study_has_a_config_in_the_report_and_the_same_presets():
    assert [f for f in config_type().__dataclass_fields__] == [*STUDIES, "reproduce"]
    for name in PRESETS:
        config = PRESETS[name]
        for study in STUDIES.values():
            assert type(getattr(config, study.name)) is type(study.presets[study.default_preset])


def test_a_report_key_names_the_study_and_its_section():
    config = PRESETS["test"].with_overrides(["incontext.incontext.per_cell=3", "lengths.lengths.multiples=1,2"])
    assert config.incontext.incontext.per_cell == 3 and config.lengths.lengths.multiples == (1, 2)
    with pytest.raises(Exception, match=r"lengths\.lengths\.multiples must"):
        PRESETS["test"].with_overrides(["lengths.lengths.multiples=2,3"])


def test_the_idealised_preset_runs_the_incontext_study_alone_with_its_twin_which_quick_leaves_out():
    idealised, quick = PRESETS["idealised"], PRESETS["quick"]
    assert idealised.reproduce.studies == ("incontext",) and idealised.reproduce.seeds == quick.reproduce.seeds == 5
    assert idealised.incontext.incontext.idealised and not quick.incontext.incontext.idealised
    assert idealised.incontext.run_config() == quick.incontext.run_config()  # the same trained runs


@pytest.mark.ray
@pytest.mark.backend_free("tl4")
def test_a_preset_can_run_one_study_and_the_formation_grid_reaches_numbers_json(local_ray, tmp_path):
    """reproduce.studies picks the studies when --only names none; the formation-grid preset runs
    the formation study alone, and the grid's claims (35-38) are judged into numbers.json."""
    grid = PRESETS["formation-grid"]
    assert grid.reproduce.studies == ("formation",) and grid.reproduce.seeds == 10
    assert grid.formation.formation.grid_lr_factors == (1.0, 3.0)
    config = PRESETS["test"].with_overrides(
        ["reproduce.studies=formation", "formation.formation.grid_lr_factors=1,3", "formation.formation.optimizers=sgd"]
    )
    report = reproduce(config, tmp_path, progress=False, preset="test")
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert [name for name in STUDIES if name in numbers] == ["formation"]
    ids = [c["id"] for c in numbers["formation"]["claims"]]
    assert ids == [6, 7, 35, 36] and all(c["n_seeds"] == 2 for c in numbers["formation"]["claims"])
    assert "sgd (grid)" in report.read_text() and "Grid rows: each optimizer at 1x, 3x" in report.read_text()
    with pytest.raises(Exception, match="reproduce.studies: unknown study 'nope'"):
        PRESETS["test"].with_overrides(["reproduce.studies=nope"])
