import json
from dataclasses import replace

import pytest

from induction_bigram import preset
from induction_bigram.errors import ConfigError
from induction_bigram.files import dumps_json
from induction_bigram.memories.capacity import PRESETS, CapacityResult, CapacitySettings, claims, run
from tests.conftest import preset_run_fixture

study = preset_run_fixture("capacity")


def test_presets_are_the_recipes_of_today():
    assert list(PRESETS) == ["quick", "full", "test"]
    quick, full = PRESETS["quick"], PRESETS["full"]
    assert quick.run_config(64) == preset("quick").with_overrides({"train.steps": 800, "train.eval_every": 400})
    assert quick.capacity == CapacitySettings() and quick.capacity.widths == (16, 32, 64)
    assert full.run_config(128) == preset("quick").with_overrides({"model.d_model": 128})
    assert full.capacity.widths == (16, 32, 64, 128, 256)
    with pytest.raises(ConfigError, match="capacity.widths must be >= 2"):
        quick.with_overrides(["capacity.widths=1,8"])
    with pytest.raises(ConfigError, match="at least one width"):
        quick.with_overrides({"capacity.widths": ()})
    assert quick.with_overrides(["capacity.widths=8,16"]).capacity.widths == (8, 16)


def test_trained_and_theory_models_are_compared_per_width(study):
    out, result = study
    assert [r.d_model for r in result.rows] == [8, 16]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["run_d16", "run_d8"]
    for row in result.rows:
        assert set(row.trained) == set(row.theory) == {"W_O2", "W_K2", "W_K1"}
        assert 0 <= row.trained_accuracy <= 1 and 0 <= row.theory_accuracy <= 1
        # the theory-built memory is its own ideal form
        assert abs(row.theory["W_K1"]["cosine"] - 1) < 1e-4 and abs(row.theory["W_O2"]["cosine"] - 1) < 1e-4
    assert set(result.theory_memories) == {"W_O2", "W_K2", "W_K1"} and 0 <= result.theory_accuracy <= 1


def test_the_result_round_trips(study):
    out, result = study
    data = result.to_dict()
    assert CapacityResult.from_dict(json.loads(dumps_json(data))).to_dict() == data
    assert CapacityResult.from_dict(json.loads((out / "result.json").read_text())).to_dict() == data
    assert set(result.summary()) == {"theory_accuracy", "theory_memories", "rows"}


def test_claims_judge_the_theory_built_model(study):
    _, result = study
    perfect = {name: {**score, "recall": 1.0} for name, score in result.theory_memories.items()}
    solved = replace(result, theory_accuracy=0.98, theory_memories=perfect)
    theory, beats = claims(solved)
    assert theory.held is True and "d = 32, T = 16" in theory.statement
    assert (theory.kind, theory.value) == ("yes/no", 0.98)  # a compound test; the accuracy is shown
    assert beats.held is None and beats.kind == "reported"
    assert claims(replace(solved, theory_accuracy=0.979))[0].held is False
    one_short = {**perfect, "W_K2": {**perfect["W_K2"], "recall": 0.8}}
    assert claims(replace(solved, theory_memories=one_short))[0].held is False
    row = replace(result.rows[0], trained_accuracy=0.9, theory_accuracy=0.5)
    assert "d = [8]" in claims(replace(result, rows=(row, *result.rows[1:])))[1].measured


@pytest.mark.slow
def test_theory_built_model_solves_the_task_at_the_reference_shape():
    config = PRESETS["test"].with_overrides({"capacity.theory_d_model": 256, "capacity.theory_seq_len": 256})
    assert claims(run(replace(config, capacity=replace(config.capacity, widths=(8,))), progress=False))[0].held
