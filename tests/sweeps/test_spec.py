"""What a sweep expands to, and its table, without Ray."""

import json
import math

import pytest

from induction_bigram.errors import ConfigError
from induction_bigram.sweeps.spec import SweepSpec, load_spec, parse_grid, run_name
from induction_bigram.sweeps.table import SweepTable, flatten

SHORT = ("train.steps=4", "task.seq_len=16", "model.n_ctx=16")


def test_a_grid_times_seeds_expands_to_named_runs_with_their_seeds():
    spec = SweepSpec(preset="quick", overrides=SHORT, grid={"model.d_model": ("16", "32")}, seeds=3)
    runs = spec.runs()
    assert [r.name for r in runs[:3]] == [f"model.d_model=16__seed={s}" for s in range(3)]
    assert len(runs) == 6 and len({r.name for r in runs}) == 6
    for run in runs:
        assert run.config.train.seed == run.config.model.seed == run.seed
        assert run.config.model.d_model == int(run.values["model.d_model"]) and run.config.train.steps == 4


def test_each_seed_is_measured_on_prompts_of_its_own_and_seed_0_on_the_presets():
    spec = SweepSpec(target="incontext", preset="test", seeds=3)
    base = spec.base()
    runs = spec.runs()
    assert base.evaluation_seeds() == {"train.eval_seed": base.train.eval_seed, "incontext.seed": base.incontext.seed}
    for run in runs:
        assert run.config.evaluation_seeds() == {k: v + run.seed for k, v in base.evaluation_seeds().items()}
    assert runs[0].config == base.with_overrides({"train.seed": 0, "model.seed": 0})
    lengths = SweepSpec(target="lengths", preset="test", seeds=2).runs()[1].config
    assert lengths.lengths.eval_seed == SweepSpec(target="lengths", preset="test").base().lengths.eval_seed + 1


def test_a_study_is_swept_with_its_own_keys():
    spec = SweepSpec(target="lengths", preset="test", grid={"lengths.multiples": ([1, 2], [1, 3])})
    assert [r.config.lengths.multiples for r in spec.runs()] == [(1, 2), (1, 3)]


@pytest.mark.parametrize(
    "spec, message",
    [
        (dict(grid={"model.d_model": ("16", "x")}), "model.d_model must be an int, got 'x'"),
        (dict(grid={"model.d_modle": ("16",)}), "did you mean model.d_model?"),
        (dict(grid={"train.seed": ("1", "2")}), "seeds are swept with --seeds"),
        (dict(seeds=0), "seeds must be an integer >= 1"),
        (dict(target="everything"), "unknown sweep target 'everything'"),
        (dict(preset="huge"), "unknown run preset 'huge'"),
    ],
)
def test_a_bad_sweep_fails_before_any_run_naming_the_culprit(spec, message):
    with pytest.raises(ConfigError, match=message):
        SweepSpec(**spec).runs()


def test_toml_and_json_sweep_files(tmp_path):
    toml = tmp_path / "sweep.toml"
    toml.write_text(
        'target = "train"\npreset = "quick"\nseeds = 2\n[set]\n"train.steps" = 4\n[grid]\n"model.d_model" = [16, 32]\n'
    )
    spec = load_spec(toml)
    assert spec.overrides == ("train.steps=4",) and spec.grid == {"model.d_model": (16, 32)} and spec.seeds == 2
    assert load_spec(_json(tmp_path, spec.to_dict())) == spec
    with pytest.raises(ConfigError, match="unknown sweep key 'grids'"):
        load_spec(_json(tmp_path, {"grids": {}}))
    (tmp_path / "bad.toml").write_text("seeds = = 2")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        load_spec(tmp_path / "bad.toml")


def _json(folder, data):
    path = folder / "sweep.json"
    path.write_text(json.dumps(data))
    return path


def test_grid_flags_parse_lists_and_list_values():
    assert parse_grid(["model.d_model=16,32", "train.lr=0.1"]) == {"model.d_model": ("16", "32"), "train.lr": ("0.1",)}
    assert parse_grid(["capacity.widths=[16,32];[64]"]) == {"capacity.widths": ("[16,32]", "[64]")}
    with pytest.raises(ConfigError, match="--grid takes key=v1,v2"):
        parse_grid(["model.d_model"])


def test_run_names_are_readable_or_hashed():
    assert run_name({"model.d_model": 32}, 1) == "model.d_model=32__seed=1"
    hashed = run_name({"task.corpus": "/data/my text.txt"}, 0)
    assert hashed.startswith("run-") and hashed.endswith("__seed=0") and "/" not in hashed


def test_the_aggregate_is_the_mean_and_t_interval_over_finished_seeds():
    spec = SweepSpec(preset="quick", overrides=SHORT, grid={"model.d_model": ("16",)}, seeds=4)
    runs = spec.runs()
    records = {
        r.name: {"status": "done", "metrics": {"acc": float(v), "seconds": 9.0}} for r, v in zip(runs, (1, 2, 3))
    }
    records[runs[3].name] = {"status": "failed", "error": "TrainingDivergedError: boom"}
    table = SweepTable.of(spec, runs, records)
    (point,) = table.aggregate()
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} s / sqrt(n), s = 1
    assert point["n"] == 3 and point["runs"] == 4 and point["acc.mean"] == 2.0
    assert point["acc.low"] == pytest.approx(2 - half) and point["acc.high"] == pytest.approx(2 + half)
    assert "seconds.mean" not in point  # timings are the machine's, never averaged
    assert table.failed[0]["error"] == "TrainingDivergedError: boom"


def test_the_aggregate_clips_an_interval_to_the_range_its_name_says():
    spec = SweepSpec(preset="quick", overrides=SHORT, seeds=3)
    runs = spec.runs()
    numbers = [(0.0, 0.98, 5.0), (3.0, 1.0, 9.0), (0.0, 0.90, 1.0)]
    records = {
        r.name: {"status": "done", "metrics": {"hijack_threshold": n, "accuracy": a, "margin": m}}
        for r, (n, a, m) in zip(runs, numbers)
    }
    (point,) = SweepTable.of(spec, runs, records).aggregate()
    assert point["hijack_threshold.low"] == 0.0 < point["hijack_threshold.high"]  # a count: never below 0
    assert point["accuracy.high"] == 1.0 and point["accuracy.low"] < 0.95
    assert point["margin.low"] < 0.0  # no range known for a margin: the plain t interval


def test_flatten_keeps_numbers_under_dotted_keys():
    assert flatten({"a": 1, "b": {"c": 0.5, "d": [1, 2], "e": "text", "f": True}}) == {"a": 1.0, "b.c": 0.5, "b.f": 1.0}
