import json
from dataclasses import replace

import pytest
import torch
from matplotlib.figure import Figure

from induction_bigram import preset
from induction_bigram.anymodel.memory_scores import Projection, recall_at_1
from induction_bigram.claims import aggregate_claims
from induction_bigram.config import ModelConfig, TaskConfig
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.files import dumps_json
from induction_bigram.memories.formation import (
    PRESETS,
    SERIES,
    FormationResult,
    OptimizerRun,
    chance_recall,
    claims,
    figures,
    formation_step,
    normalised_recall,
    run,
    track_formation,
)
from induction_bigram.memories.projections import build_theory_model, memory_projections


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("formation")
    return out, run(PRESETS["test"], out, progress=False)


def test_presets_and_each_optimizers_recipe():
    assert list(PRESETS) == ["quick", "full", "test"] and all(PRESETS.doc(name) for name in PRESETS)
    quick = PRESETS["quick"]
    assert quick.train.eval_every == 1 and quick.formation.optimizers == ("sgd", "adamw")
    sgd, adamw = quick.run_config("sgd").train, quick.run_config("adamw").train
    reference = preset("reference").train
    assert (sgd.optimizer, sgd.lr_scaling, sgd.momentum, sgd.weight_decay) == (
        "sgd",
        "reference-code",
        reference.momentum,
        reference.weight_decay,
    )
    assert (adamw.optimizer, adamw.lr_scaling, adamw.weight_decay) == ("adamw", "none", 0.0)
    assert (sgd.lr, adamw.lr) == (quick.formation.sgd_lr, quick.formation.adamw_lr)
    # everything but the optimiser is shared, so both runs see the same model and batches
    recipe = ("optimizer", "lr", "lr_scaling", "momentum", "weight_decay")
    assert replace(sgd, **{k: getattr(adamw, k) for k in recipe}) == adamw
    assert quick.run_config() == preset("quick").with_overrides(
        {"train.steps": 300, "train.eval_every": 1, "train.eval_batch_size": 64}
    )


def test_bad_settings_are_one_clear_error():
    test = PRESETS["test"]
    with pytest.raises(ConfigError, match="train.eval_every must be 1"):
        test.with_overrides(["train.eval_every=2"])
    with pytest.raises(ConfigError, match="each optimizer once"):
        test.with_overrides(["formation.optimizers=sgd,sgd"])
    with pytest.raises(ConfigError, match=r"formation.level is a normalised recall in \(0, 1\]"):
        test.with_overrides(["formation.level=0"])
    with pytest.raises(ConfigError, match="model.positional='ape'"):
        test.with_overrides(["model.positional=rpe"])
    with pytest.raises(ConfigError, match="task.n_triggers >= 3"):
        test.with_overrides(["task.n_triggers=2"])
    assert test.with_overrides(["formation.optimizers=adamw"]).formation.optimizers == ("adamw",)


def test_the_test_preset_scores_every_step_and_round_trips(study):
    out, result = study
    steps = PRESETS["test"].train.steps
    assert [r.optimizer for r in result.runs] == ["sgd", "adamw"]
    for r in result.runs:
        assert r.steps == list(range(steps + 1)) and len(r.in_context_accuracy) == steps + 1
        assert set(r.normalised) == set(r.margin) == set(r.formation) == set(SERIES)
        assert all(len(r.normalised[name]) == len(r.margin[name]) == steps + 1 for name in SERIES)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["run_adamw", "run_sgd"]
    data = result.to_dict()
    assert FormationResult.from_dict(json.loads(dumps_json(data))).to_dict() == data
    assert FormationResult.from_dict(json.loads((out / "result.json").read_text())).to_dict() == data
    assert set(result.summary()) == {"sgd", "adamw"}
    again = run(PRESETS["test"], out, progress=False)  # finished runs are loaded, with their every-step metrics
    assert again.to_dict() == data


def test_figures_build_from_the_result_alone(study):
    _, result = study
    (name, figure), *rest = figures(FormationResult.from_dict(json.loads(dumps_json(result.to_dict())))).items()
    assert name == "formation.png" and not rest and isinstance(figure, Figure)
    assert len(figure.axes) == 2 * len(result.runs)


def test_chance_normalisation_is_0_at_chance_and_1_at_perfect_recall(stats):
    task = TriggerTask(stats, TaskConfig(seq_len=32, n_triggers=5))
    model = build_theory_model(
        ModelConfig(d_model=256, n_ctx=32, d_vocab=stats.n_tokens),
        task.shared_triggers,
        device="cpu",
        vocab=stats.vocab,
    )
    scores = track_formation(model, task)["formation"]
    for name in SERIES:
        assert normalised_recall(scores[name]["recall"], scores[name]["chance"]) == pytest.approx(1.0)
    # chance is the expected recall of random coefficients: 1/N, 1/K, and the mean of 1/t for W_K1
    n, k = stats.n_tokens, 5
    assert scores["W_O2"]["chance"] == pytest.approx(1 / n) and scores["W_K2"]["chance"] == pytest.approx(1 / k)
    assert scores["W_K2 (vocabulary)"]["chance"] == pytest.approx(1 / n)
    assert scores["W_K1"]["chance"] == pytest.approx(sum(1 / t for t in range(1, 32)) / 31)
    assert normalised_recall(0.25, 0.25) == 0.0 and normalised_recall(1.0, 0.25) == 1.0
    k1 = memory_projections(model, task.shared_triggers, 32)["W_K1"]
    generator = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(400):  # random coefficients score 0 on average
        noise = Projection(torch.randn(k1.coefficients.shape, generator=generator), k1.targets, k1.candidates, True)
        draws.append(normalised_recall(recall_at_1(noise), chance_recall(noise)))
    assert abs(sum(draws) / len(draws)) < 0.02


def test_a_memory_forms_when_it_reaches_the_level_and_stays():
    steps = [0, 1, 2, 3, 4, 5]
    assert formation_step(steps, [0.0, 0.6, 0.2, 0.5, 0.7, 0.9], 0.5) == 3  # the early blip does not count
    assert formation_step(steps, [0.0, 0.6, 0.7, 0.8, 0.9, 0.4], 0.5) is None  # fell back by the end
    assert formation_step(steps, [0.0] * 6, 0.5) is None


def _result(formation: dict[str, int | None]) -> FormationResult:
    """A hand-built result whose runs formed at the given steps (curves are not read by the claims)."""
    config = PRESETS["test"]
    runs = tuple(
        OptimizerRun(opt, 0.1, [0], [0.0], dict.fromkeys(SERIES, 0.1), {}, {}, {"W_K2 (vocabulary)": 7, **formation})
        for opt in config.formation.optimizers
    )
    return FormationResult(config, runs)


def test_claims_are_the_step_differences():
    ordered = claims(_result({"W_O2": 10, "W_K2": 25, "W_K1": 60}))
    assert [c.statement for c in ordered] == [
        "W_O^2 forms before W_K^2 (SGD)",
        "W_K^2 forms before W_K^1 (SGD)",
        "W_O^2 forms before W_K^2 (AdamW)",
        "W_K^2 forms before W_K^1 (AdamW)",
    ]
    assert [c.value for c in ordered] == [15, 35, 15, 35] and all(c.held for c in ordered)
    assert all(c.kind == "threshold" and c.section == "3.6" and "every-step" in c.statistic for c in ordered)
    reversed_ = claims(_result({"W_O2": 60, "W_K2": 25, "W_K1": 10}))
    assert [c.held for c in reversed_] == [False] * 4
    unformed = claims(_result({"W_O2": 10, "W_K2": None, "W_K1": 60}))
    assert [c.value for c in unformed] == [None] * 4 and [c.held for c in unformed] == [None] * 4
    # over seeds: always positive holds, always negative fails, mixed is undecided
    seeds = [claims(_result({"W_O2": 10, "W_K2": 10 + d, "W_K1": 100})) for d in (5, 7, 6)]
    assert aggregate_claims(seeds)[0].held is True
    seeds = [claims(_result({"W_O2": 10, "W_K2": 10 - d, "W_K1": 100})) for d in (5, 7, 6)]
    assert aggregate_claims(seeds)[0].held is False
    seeds = [claims(_result({"W_O2": 10, "W_K2": 10 + d, "W_K1": 100})) for d in (5, -7, 6)]
    assert aggregate_claims(seeds)[0].held is None
