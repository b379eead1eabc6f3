"""scripts/markov_formation.py: the formation table of docs/markov-formation from markov study
folders (issue 29), rows and intervals checked against the studies' own summaries."""

from __future__ import annotations

import importlib.util
import shutil
import sys

from tests.conftest import REPO, ran_test_preset

spec = importlib.util.spec_from_file_location("markov_formation", REPO / "scripts" / "markov_formation.py")
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script
spec.loader.exec_module(script)


def test_the_table_has_a_row_per_setting_and_the_runs_a_row_per_model(tmp_path_factory, monkeypatch):
    folder, result = ran_test_preset(tmp_path_factory, "markov")
    again = tmp_path_factory.mktemp("again") / "seed=0"
    shutil.copytree(folder, again)  # the same setting twice: one row, two seeds
    records = script.rows([folder, again.parent])
    assert len(records) == 2 * len(result.alphas)
    summary = result.summary()
    assert all(r["bigram_excess"] == summary[f"{r['alpha']:g}"]["bigram_excess"] for r in records)
    lines = script.table(records)
    assert len(lines) == 2 + len(result.alphas)  # header, rule, one row per alpha
    assert all("| 0 of 2 | - |" in line for line in lines[2:])  # six steps form no head
    out = tmp_path_factory.mktemp("doc")
    (out / "README.md").write_text(f"intro\n{script.START}\nold\n{script.END}\nend\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["markov_formation.py", "--out", str(out), str(folder)])
    script.main()
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("end\n") and "old" not in text and "| alpha | T |" in text
    assert len((out / "runs.csv").read_text(encoding="utf-8").splitlines()) == 1 + len(result.alphas)
