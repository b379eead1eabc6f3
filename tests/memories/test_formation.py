import json
from dataclasses import replace

import pytest
import torch
from matplotlib.figure import Figure

from induction_bigram import preset
from induction_bigram.anymodel.memory_scores import Projection, recall_at_1
from induction_bigram.claims import aggregate_claims, registered
from induction_bigram.config import ModelConfig, TaskConfig
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.files import dumps_json
from induction_bigram.memories.figures import formation_figures as figures
from induction_bigram.memories.formation import (
    PRESETS,
    SERIES,
    FormationResult,
    OptimizerRun,
    chance_recall,
    claims,
    formation_step,
    normalised_recall,
    run,
    track_formation,
)
from induction_bigram.memories.projections import memory_projections
from tests.conftest import preset_run_fixture, theory_model_of

study = preset_run_fixture("formation")


def test_presets_and_each_optimizers_recipe():
    assert list(PRESETS) == ["quick", "full", "grid", "test"] and all(PRESETS.doc(name) for name in PRESETS)
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
    model = theory_model_of(ModelConfig(d_model=256, n_ctx=32, d_vocab=stats.n_tokens), task.shared_triggers)
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


def _grid_run(optimizer: str, lr: float, curves: dict[str, list[float]]) -> OptimizerRun:
    """A hand-built run whose chance-normalised recall per step is ``curves`` (0 = unscored series)."""
    steps = list(range(len(next(iter(curves.values())))))
    normalised = {name: [float(v) for v in curves.get(name, [0.0] * len(steps))] for name in SERIES}
    return OptimizerRun(optimizer, lr, steps, [0.0] * len(steps), dict.fromkeys(SERIES, 0.1), normalised, {}, {})


def test_an_unformed_memory_counts_as_formed_one_step_after_the_last():
    run_ = _grid_run("sgd", 0.03, {"W_O2": [0, 0.6, 0.9, 0.9], "W_K2": [0, 0, 0.6, 0.6], "W_K1": [0, 0, 0, 0.2]})
    assert run_.bounded_difference("W_O2", "W_K2", 0.5) == 1
    assert run_.bounded_difference("W_O2", "W_K2", 0.8) == 4 - 2  # W_K2 never reaches 0.8: step 4
    assert run_.bounded_difference("W_K2", "W_K1", 0.5) == 4 - 2  # a lower bound on a positive difference
    assert run_.bounded_difference("W_K1", "W_O2", 0.5) == 1 - 4  # the first unformed: negative
    assert run_.bounded_difference("W_K1", "W_K2", 0.8) is None  # neither formed


def _grid_result(curves: dict[str, dict[str, list[float]]], factors=(1.0, 3.0), levels=(0.5, 0.8)):
    config = PRESETS["test"].with_overrides(
        [
            f"formation.grid_lr_factors={','.join(map(str, factors))}",
            f"formation.grid_levels={','.join(map(str, levels))}",
        ]
    )
    runs = tuple(
        OptimizerRun(opt, 0.1, [0], [0.0], dict.fromkeys(SERIES, 0.1), {}, {}, dict.fromkeys(SERIES, 1))
        for opt in config.formation.optimizers
    )
    grid = tuple(_grid_run(opt, 0.03 * f, curves[opt]) for opt in config.formation.optimizers for f in factors)
    return FormationResult(config, runs, grid)


def test_the_grid_claims_take_the_smallest_difference_over_every_cell():
    ordered = {"W_O2": [0, 1, 1, 1, 1, 1], "W_K2": [0, 0, 0.6, 0.9, 0.9, 0.9], "W_K1": [0, 0, 0, 0, 0.9, 0.9]}
    # among every token W_K^2 forms last: the order holds among the triggers but not over the grid
    late_vocabulary = {**ordered, "W_K2 (vocabulary)": [0, 0, 0, 0, 0, 0.9]}
    result = _grid_result({"sgd": {**ordered, "W_K2 (vocabulary)": ordered["W_K2"]}, "adamw": late_vocabulary})
    grid = claims(result)[4:]
    assert [c.statement for c in grid] == [
        "W_O^2 forms before W_K^2 over the whole grid (SGD)",
        "W_K^2 forms before W_K^1 over the whole grid (SGD)",
        "W_O^2 forms before W_K^2 over the whole grid (AdamW)",
        "W_K^2 forms before W_K^1 over the whole grid (AdamW)",
    ]
    # SGD: level 0.5 gives W_K2 at 2 and W_K1 at 4, level 0.8 W_K2 at 3 and W_K1 at 4
    assert [c.value for c in grid] == [1.0, 1.0, 1.0, -1.0] and [c.held for c in grid] == [True, True, True, False]
    assert len(result.grid_cells()["sgd"]) == 8 and "lr 0.09, level 0.8, W_K2 among every token: 4" in grid[2].measured
    assert all("smallest over the grid's 8 cells" in c.statistic and c.threshold == 0.0 for c in grid)
    for claim in grid:  # registered before their first run (claims 35-38), unchanged
        assert registered("formation", claim).id in (35, 36, 37, 38)
    # a cell where neither memory formed leaves the seed undefined
    unformed = _grid_result({opt: {**ordered, "W_K1": [0] * 6, "W_K2": [0] * 6} for opt in ("sgd", "adamw")})
    assert claims(unformed)[5].value is None
    with pytest.raises(ConfigError, match="registered for formation.grid_lr_factors=1,3"):
        claims(_grid_result({opt: ordered for opt in ("sgd", "adamw")}, factors=(1.0, 10.0)))
    assert len(claims(_result({"W_O2": 10, "W_K2": 25, "W_K1": 60}))) == 4  # no grid, no grid claims


def test_the_grid_trains_each_optimizer_at_its_presets_rates(tmp_path):
    grid = PRESETS["grid"]
    assert (grid.formation.grid_lr_factors, grid.formation.grid_levels) == ((1.0, 3.0), (0.5, 0.8))
    config = PRESETS["test"].with_overrides(["formation.grid_lr_factors=1,3", "formation.optimizers=adamw"])
    result = run(config, tmp_path, progress=False)
    quick_lr = preset("quick").train.lr
    assert [(r.optimizer, r.lr) for r in result.grid] == [("adamw", quick_lr), ("adamw", 3 * quick_lr)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["grid_adamw_x1", "grid_adamw_x3", "run_adamw"]
    assert FormationResult.from_dict(json.loads(dumps_json(result.to_dict()))).to_dict() == result.to_dict()
    assert set(result.summary()["adamw"]["grid"]) == {
        f"lr {lr:g}, level {level:g}, W_K2 among {convention}"
        for lr in (quick_lr, 3 * quick_lr)
        for level in (0.5, 0.8)
        for convention in ("triggers", "every token")
    }
    with pytest.raises(ConfigError, match="grid_lr_factors must be distinct and > 0"):
        PRESETS["test"].with_overrides(["formation.grid_lr_factors=1,1"])
    with pytest.raises(ConfigError, match=r"formation.grid_levels is a normalised recall in \(0, 1\]"):
        PRESETS["test"].with_overrides(["formation.grid_levels=0.5,1.5"])
