"""Nothing lost (issue 32): every command that writes into a folder goes through the one folder
rule of :func:`induction_bigram.files.claim_folder` (missing, empty, or ours); ``--overwrite``
removes only what the package wrote, stale figures included; a user's file is never replaced;
a resumed report that runs fewer studies keeps the others."""

from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure

from induction_bigram.cli import main
from induction_bigram.errors import RunFolderError
from induction_bigram.figures import save_figures
from induction_bigram.files import claim_folder, folder_kind
from tests.test_cli import TINY, run


def _figure() -> Figure:
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    return fig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lost") / "run"
    assert main(["train", "--out", str(run_dir), "--no-progress", *TINY]) == 0
    return run_dir


@pytest.mark.parametrize(
    "command, name",
    [
        ("memories", "attention.html"),
        ("memories", "memories_coefficients.png"),
        ("incontext", "hijack_curves.png"),
        ("incontext", "theory_fit.png"),
    ],
)
def test_an_analysis_never_overwrites_a_users_file_in_its_out_folder(command, name, trained, tmp_path, capsys):
    mine = tmp_path / name
    mine.write_text("my own work")
    code, out, err = run(capsys, command, str(trained), "--out", str(tmp_path), "--no-progress")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "not written by induction-bigram" in err and str(tmp_path) in err
    assert mine.read_text() == "my own work" and sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_users_file_of_a_figures_name_in_our_figure_folder_is_refused_not_replaced(trained, tmp_path, capsys):
    folder = tmp_path / "figs"
    code, out, _ = run(capsys, "memories", str(trained), "--out", str(folder), "--no-progress", "--json")
    assert code == 0 and folder_kind(folder) == "figures"
    written = json.loads(out)["figures"]
    # ours: a second analysis into the same folder replaces its own figures
    assert run(capsys, "memories", str(trained), "--out", str(folder), "--no-progress")[0] == 0
    # a user's file named like a figure of another analysis, dropped into our folder
    mine = folder / "theory_fit.png"
    mine.write_text("my own plot")
    save = {"theory_fit.png": _figure()}
    with pytest.raises(RunFolderError, match="theory_fit.png exists and was not written by induction-bigram"):
        save_figures(save, folder)
    assert mine.read_text() == "my own plot" and all(map(lambda f: open(f, "rb").read(1), written))


def test_train_overwrite_removes_the_old_models_figures(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(capsys, "train", "--out", str(run_dir), "--no-progress", *TINY)[0] == 0
    assert run(capsys, "memories", str(run_dir), "--no-progress")[0] == 0
    assert (run_dir / "figures" / "memories_coefficients.png").is_file()
    code, _, err = run(
        capsys, "train", "--out", str(run_dir), "--overwrite", "--no-progress", *TINY, "--set", "model.d_model=8"
    )
    assert code == 0, err
    assert not [p.name for p in (run_dir / "figures").iterdir() if not p.name.startswith(".")]


def test_overwrite_removes_figures_written_before_folders_were_marked(tmp_path):
    run_dir = tmp_path / "run"
    from induction_bigram import train
    from tests.conftest import tiny_config

    train(tiny_config(**{"train.steps": 2}), run_dir, progress=False)
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "memories_coefficients.png").write_bytes(b"\x89PNG old")
    (run_dir / ".induction-bigram").unlink()  # a run of an older version: no markers anywhere
    with claim_folder(run_dir, "run", existing="overwrite"):
        pass
    assert not (run_dir / "figures" / "memories_coefficients.png").exists()


@pytest.mark.parametrize("kind", ["sweep", "lengths", "formation", "reproduce"])
def test_overwriting_a_sweep_or_study_clears_its_stale_figures_and_keeps_the_users_files(kind, tmp_path):
    folder = tmp_path / "out"
    with claim_folder(folder, kind):
        save_figures({"old.png": _figure()}, folder / "figures")
    (folder / "notes.txt").write_text("mine")  # a user's file beside ours: kept, never ours
    with claim_folder(folder, kind, existing="overwrite"):
        assert not (folder / "figures" / "old.png").exists()
    assert (folder / "notes.txt").read_text() == "mine"


def test_save_figures_refuses_a_users_folder(tmp_path):
    (tmp_path / "holiday.jpg").write_text("x")
    with pytest.raises(RunFolderError, match="not empty .* not written by induction-bigram"):
        save_figures({"a.png": _figure()}, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["holiday.jpg"]


def test_sweep_plot_default_goes_into_the_sweeps_figure_folder_under_the_rule(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    with claim_folder(sweep, "sweep"):
        (sweep / "aggregate.json").write_text(
            json.dumps(
                {
                    "keys": ["model.d_model"],
                    "points": [
                        {"model.d_model": "8", "n": 2, "acc.mean": 0.5, "acc.low": 0.4, "acc.high": 0.6},
                        {"model.d_model": "16", "n": 2, "acc.mean": 0.7, "acc.low": 0.6, "acc.high": 0.8},
                    ],
                }
            )
        )
    save_figures({"other.png": _figure()}, sweep / "figures")
    (sweep / "figures" / "acc_vs_model.d_model.png").write_text("mine")
    code, _, err = run(capsys, "sweep-plot", str(sweep), "--x", "model.d_model", "--y", "acc")
    assert code == 2 and "not written by induction-bigram" in err
    assert (sweep / "figures" / "acc_vs_model.d_model.png").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.backend_free("tl3")
def test_a_resumed_report_of_fewer_studies_keeps_the_earlier_claims(local_ray, tmp_path, capsys):
    base = ["reproduce", "--out", str(tmp_path), "--preset", "test", "--no-progress", "--set", "reproduce.seeds=2"]
    assert run(capsys, *base, "--only", "formation")[0] == 0
    before = json.loads((tmp_path / "numbers.json").read_text())
    records = tmp_path / "formation" / "runs.jsonl"  # as if an older commit had trained them
    older = {"commit": "0" * 40, "dirty": False}
    records.write_text(
        "".join(json.dumps(json.loads(r) | {"code": older}) + "\n" for r in records.read_text().splitlines())
    )
    code, _, err = run(capsys, *base, "--resume", "--only", "memories")
    assert code == 0, err
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert numbers["formation"]["claims"] == before["formation"]["claims"] and numbers["memories"]["claims"]
    now = {k: numbers["provenance"][k] for k in ("commit", "dirty")}
    by_code = numbers["provenance"]["runs_by_code"]
    assert len(by_code) == 2 and {**older, "runs": 2} in by_code and {**now, "runs": 2} in by_code
    text = (tmp_path / "REPORT.md").read_text()
    assert "were trained by " in text and "commit 000000000000 (2)" in text
    from induction_bigram.studies import STUDIES

    assert f"## {STUDIES['formation'].title}" in text and f"## {STUDIES['memories'].title}" in text
