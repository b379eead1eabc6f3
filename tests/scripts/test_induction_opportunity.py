"""scripts/induction_opportunity.py: the copy guess against the trigram, with analytic oracles."""

from __future__ import annotations

import importlib.util
import json
import random
import string
import sys

import pytest

from tests.conftest import REPO, shakespeare_text_path

pytestmark = pytest.mark.backend_free("tl3")  # counts in the text: no model is built

spec = importlib.util.spec_from_file_location("induction_opportunity", REPO / "scripts" / "induction_opportunity.py")
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script  # dataclasses look their module up there
spec.loader.exec_module(script)


def test_a_text_that_repeats_one_random_line_rewards_copying_everywhere():
    """Past the first copy every position has an earlier match and the copy guess is right."""
    line = "".join(random.Random(0).choices(string.ascii_lowercase, k=40))
    o = script.opportunity(line * 200, length=200, windows=20)
    assert o.applies > 0.7 and o.copy_right == 1.0


def test_a_text_without_repeats_gives_copying_nothing():
    """Distinct characters never recur, so no position has an earlier match."""
    text = "".join(chr(0x4E00 + i) for i in range(5000))
    o = script.opportunity(text, length=100, windows=10)
    assert (o.applies, o.copy_right) == (0.0, 0.0)


def test_longer_windows_hold_more_matches_in_shakespeare():
    path = shakespeare_text_path()
    if path is None:
        pytest.skip("tinyshakespeare.txt is not on this machine (set INDUCTION_BIGRAM_SHAKESPEARE)")
    text = path.read_text(encoding="utf-8")
    short, long = (script.opportunity(text, n, windows=40) for n in (128, 512))
    assert long.applies > 2 * short.applies
    assert short.copy_right > short.trigram_right  # where copying applies, it beats the trigram


def test_one_matched_character_copies_worse_than_the_trigram_in_shakespeare():
    """docs/THEORY.md 3.8: the textbook circuit's copy (one character matched) loses to the
    trigram where it applies; matching four characters wins."""
    path = shakespeare_text_path()
    if path is None:
        pytest.skip("tinyshakespeare.txt is not on this machine (set INDUCTION_BIGRAM_SHAKESPEARE)")
    text = path.read_text(encoding="utf-8")
    one, four = (script.opportunity(text, 512, windows=20, match=m) for m in (1, 4))
    assert one.copy_right < one.trigram_right < four.copy_right


def test_the_command_prints_a_row_per_match_and_length(tmp_path, capsys, monkeypatch):
    path = tmp_path / "text.txt"
    path.write_text("abcab" * 400, encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["induction_opportunity.py", str(path), "--lengths", "50,60", "--match", "1,2"])
    script.main()
    rows = [line.split(" | ")[:2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["1", "50"], ["1", "60"], ["2", "50"], ["2", "60"]]


def test_a_window_longer_than_the_held_out_tail_is_named():
    with pytest.raises(ValueError, match="fewer than a window of 500"):
        script.opportunity("ab" * 1000, length=500)


def test_the_shipped_rows_are_what_the_script_measures_on_the_text():
    """docs/induction_opportunity.json (quoted by docs/THEORY.md section 3.8) is the script's
    output for its documented command, measured again here from the text."""
    path = shakespeare_text_path()
    if path is None:
        pytest.skip("tinyshakespeare.txt is not on this machine (set INDUCTION_BIGRAM_SHAKESPEARE)")
    shipped = json.loads((REPO / "docs" / "induction_opportunity.json").read_text(encoding="utf-8"))["rows"]
    assert shipped == script.measure(path.read_text(encoding="utf-8"), [512], [1, 2, 3, 4, 6])
