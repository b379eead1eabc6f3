import json
from dataclasses import replace

import pytest
import torch

from induction_bigram import preset
from induction_bigram.errors import ConfigError, RunFolderError
from induction_bigram.files import dumps_json
from induction_bigram.memories.study import (
    PRESETS,
    MemoriesConfig,
    MemoriesResult,
    MemoriesSettings,
    claims,
    first_step,
    formation_steps,
    run,
)
from tests.conftest import preset_run_fixture

study_dir = preset_run_fixture("memories")


def test_presets_are_the_runs_of_today():
    assert list(PRESETS) == ["quick", "reference", "test"]
    quick = PRESETS["quick"]
    assert quick.run_config() == preset("quick").with_overrides({"train.eval_every": 50})
    assert PRESETS["reference"].run_config() == preset("reference")
    assert quick.memories == MemoriesSettings() and quick.memories.first_positions == 64
    assert all(PRESETS.doc(name) for name in PRESETS)


def test_bad_settings_are_one_clear_error():
    with pytest.raises(ConfigError, match="memories.formation_level is a recall"):
        PRESETS["test"].with_overrides(["memories.formation_level=1.5"])
    with pytest.raises(ConfigError, match=r"memories.first_positions must be >= 2"):
        PRESETS["test"].with_overrides(["memories.first_positions=1"])
    with pytest.raises(ConfigError, match="did you mean memories.prompt"):
        PRESETS["test"].with_overrides(["memories.promt=x"])
    with pytest.raises(ConfigError, match="smaller than task.seq_len"):
        PRESETS["test"].with_overrides(["task.seq_len=32"])
    assert PRESETS["test"].with_overrides(["memories.prompt=All:"]).memories.prompt == "All:"


def test_run_writes_a_result_that_round_trips(study_dir):
    out, result = study_dir
    data = result.to_dict()
    assert MemoriesResult.from_dict(json.loads(dumps_json(data))).to_dict() == data
    assert MemoriesResult.from_dict(json.loads((out / "result.json").read_text())).to_dict() == data
    assert (out / "run" / "checkpoint.pt").is_file()
    assert [r["step"] for r in result.history] == [0, 2, 4]
    assert set(result.history[-1]["memories"]["W_K1"]) >= {"recall", "recall_first8"}
    assert result.final["step"] == 4 and set(result.memories) == {"W_O2", "W_K2", "W_K1"}
    assert result.projections["W_K1"].coefficients.shape == (7, 8)  # first_positions = 8 of T = 16
    assert result.attention.shape == (2, 16, 16) and len(result.prompt) == 16
    assert torch.allclose(result.attention.sum(-1), torch.ones(2, 16))
    assert set(result.summary()) == {"final", "memories", "formation"}


def test_a_finished_run_is_loaded_not_retrained(study_dir):
    out, result = study_dir
    stamp = (out / "run" / "checkpoint.pt").stat().st_mtime_ns
    again = run(PRESETS["test"], out, progress=False)
    assert (out / "run" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert again.to_dict() == result.to_dict()
    with pytest.raises(RunFolderError):
        run(PRESETS["test"], out, progress=False, existing="refuse")


def history(**recalls):
    """Records at steps 0, 10, 20, 30 whose recalls are the given lists."""
    records = []
    for i, step in enumerate((0, 10, 20, 30)):
        entry = {"W_O2": {"recall": recalls["o2"][i]}, "W_K2": {"recall": recalls["k2"][i]}}
        entry["W_K1"] = {"recall": recalls["k1"][i], "recall_first64": recalls["k1_first"][i]}
        records.append({"step": step, "in_context_accuracy": 0.0, "memories": entry})
    return records


def test_formation_is_the_first_step_at_the_level():
    records = history(o2=[0, 0.6, 1, 1], k2=[0, 0.2, 0.5, 1], k1=[0, 0, 0.1, 0.4], k1_first=[0, 0, 0, 0.9])
    steps = formation_steps(records, MemoriesSettings())
    assert steps == {"W_O2": 10, "W_K2": 20, "W_K1 (first 64)": 30, "W_K1 (all)": None}
    assert formation_steps(records, MemoriesSettings(formation_level=0.1))["W_K1 (all)"] == 20
    assert first_step(records, lambda r: r["memories"]["W_O2"]["recall"], 2.0) is None


def test_claims_judge_the_thresholds(study_dir):
    _, result = study_dir
    long = result.config.with_overrides({"task.seq_len": 128, "model.n_ctx": 128})  # T > first_positions
    good = replace(
        result,
        config=long,
        final={**result.final, "in_context_accuracy": 0.95},
        formation={"W_O2": 10, "W_K2": 20, "W_K1 (first 8)": 30, "W_K1 (all)": None},
    )
    assert [c.held for c in claims(good)] == [True, None, True]
    learns = claims(good)[0]
    assert (learns.value, learns.threshold, learns.direction) == (0.95, 0.95, ">=")
    assert [c.kind for c in claims(good)] == ["threshold", "reported", "yes/no"]
    bad = replace(
        good,
        final={**result.final, "in_context_accuracy": 0.949},
        formation={"W_O2": 20, "W_K2": 10, "W_K1 (first 8)": 30, "W_K1 (all)": 30},
    )
    assert [c.held for c in claims(bad)] == [False, None, False]
    all_early = replace(
        result,
        config=replace(result.config, memories=MemoriesSettings(first_positions=16)),  # = T: all positions
        formation={"W_O2": 10, "W_K2": 20, "W_K1 (first 16)": 30, "W_K1 (all)": 30},
    )
    assert claims(all_early)[2].held is None and claims(all_early)[2].kind == "reported"
    # the memories' order is the formation study's claim; here its evaluated steps are only shown
    order = claims(bad)[1]
    assert "formation study" in order.statement and "W_O2 20, W_K2 10" in order.measured


def test_the_study_config_of_an_existing_run():
    config = preset("quick")
    assert MemoriesConfig.of_run(config).run_config() == config
