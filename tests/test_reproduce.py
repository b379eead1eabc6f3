import re

import pytest

from induction_bigram import preset
from induction_bigram.incontext.study import HijackStudyConfig
from induction_bigram.lengths import lengths_preset
from induction_bigram.report.reproduce import ReproduceSettings, reproduce, strictly_ordered

TINY = {
    "model.d_model": 16,
    "model.n_ctx": 32,
    "task.seq_len": 32,
    "train.steps": 20,
    "train.batch_size": 8,
    "train.eval_every": 10,
    "train.eval_batch_size": 16,
    "train.device": "cpu",
}


@pytest.mark.slow
def test_reproduce_writes_a_complete_report(tmp_path):
    settings = ReproduceSettings(
        training=preset("quick").with_overrides(TINY),
        capacity_widths=(8, 16),
        capacity_recipe=preset("quick").with_overrides(TINY),
        amt=preset("amt").with_overrides(TINY),
        hijack=HijackStudyConfig(per_cell=2, max_count=3, competing=((1, 1),), patch_prompts=4, patch_length=16),
        lengths=lengths_preset("test"),
    )
    report = reproduce(tmp_path, settings=settings, progress=False)
    text = report.read_text()
    for title in (
        "Claims of docs/THEORY.md",
        "Training the induction head",
        "The three memories",
        "In-context against bigram",
        "Positional encodings and long prompts",
    ):
        assert title in text
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(figures) >= 10
    for figure in figures:
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG", figure
    assert (tmp_path / "numbers.json").is_file()
    assert text.count("| yes |") + text.count("| **no** |") + text.count("| reported |") >= 12
    # a second run reuses the finished trainings
    again = reproduce(tmp_path, settings=settings, studies=["training"], progress=False)
    assert again.read_text().count("## ") >= 2


def test_an_order_holds_only_when_the_evaluations_can_tell():
    assert strictly_ordered([50, 100, 150]) is True
    assert strictly_ordered([100, 50, 150]) is False
    assert strictly_ordered([50, 50, 100]) is None  # a tie: the evaluation interval cannot tell
    assert strictly_ordered([50, None, 100]) is None
