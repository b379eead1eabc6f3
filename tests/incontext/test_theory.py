import dataclasses
import json
import math

import pytest
import torch

from induction_bigram.config import ModelConfig
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.files import dumps_json, json_safe
from induction_bigram.incontext.decompose import decompose_logits
from induction_bigram.incontext.measure import Measurements, measure, r_squared, spearman
from induction_bigram.incontext.theory import CAUSES, TheoryCheck, _fit_alpha, check_theory, predicted_in_context
from induction_bigram.incontext.weights_only import SCORE_SCALES, read_projection_diagonals
from tests.conftest import model_of, randomise_trainables, theory_model_of


def test_formula_limits():
    n_j, m_j, n, T = torch.tensor(3.0), torch.tensor(1.0), torch.tensor(4.0), torch.tensor(64.0)
    # alpha -> infinity: lambda n_j / n; alpha = 0: uniform attention, lambda (n_j + m_j) / T
    assert predicted_in_context(2.0, 40.0, n_j, m_j, n, T) == pytest.approx(2.0 * 3 / 4)
    assert predicted_in_context(2.0, 0.0, n_j, m_j, n, T) == pytest.approx(2.0 * 4 / 64)
    # n = 0: falls back to the other occurrences only
    assert predicted_in_context(2.0, 5.0, torch.tensor(0.0), m_j, torch.tensor(0.0), T) == pytest.approx(2 / 64)


def test_fit_recovers_known_strength_and_score():
    g = torch.Generator().manual_seed(0)
    n = torch.randint(0, 9, (400,), generator=g).double()
    n_j = (n * torch.rand(400, generator=g)).round()
    m_j = torch.randint(0, 3, (400,), generator=g).double()
    T = torch.tensor([32.0, 64.0, 128.0])[torch.randint(0, 3, (400,), generator=g)]
    target = predicted_in_context(3.0, 2.5, n_j, m_j, n, T)
    alpha, lam = _fit_alpha(lambda a: predicted_in_context(1.0, a, n_j, m_j, n, T), target)
    assert alpha == pytest.approx(2.5, abs=0.03) and lam == pytest.approx(3.0, rel=0.02)


def test_scores():
    x = torch.arange(10.0)
    assert r_squared(x, x) == 1.0 and r_squared(torch.full((10,), x.mean()), x) == pytest.approx(0.0)
    assert spearman(x, x**3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)


@pytest.mark.slow
def test_theory_built_model_follows_the_prediction(stats):
    """The theory-built model is the theory's own model: its cell means follow the formula."""
    triggers = stats.most_frequent(5)
    model = theory_model_of(ModelConfig(d_model=256, n_ctx=128, d_vocab=65), triggers)
    designer = PromptDesigner(stats, triggers)
    g = torch.Generator().manual_seed(0)
    batches = [
        designer.sample(length=T, n_output=n, batch_size=24, generator=g) for T in (32, 128) for n in range(0, 7)
    ]  # noqa: E501
    batches += [
        designer.sample(length=64, n_output=a, n_rival=b, batch_size=12, generator=g) for a, b in ((1, 2), (3, 1))
    ]
    meas = measure(model, batches)
    check = check_theory(meas, read_projection_diagonals(model))
    best = next(r for r in check.rungs if r.name == check.best)
    assert best.r2_cells > 0.9
    assert check.splits["long_prompts"].rung("weights_only").r2_cells > 0.9  # nothing fitted, T = 128 held out
    assert check.growth["rank_with_variable"] > 0.5 and check.growth["rank_with_prediction"] > 0.5
    assert abs(check.fallback["measured_ic_output"] - check.fallback["predicted_ic_output"]) < 1.0
    assert all(v["measured"] in (0, 1) for v in check.hijack.values())
    assert math.isfinite(check.attention_correlation)


def test_measure_runs_each_chunk_through_the_model_once_and_reads_the_same_numbers(stats):
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, ffn="linear")), scale=0.3)
    designer = PromptDesigner(stats, stats.most_frequent(5))
    g = torch.Generator().manual_seed(0)
    prompts = designer.sample(length=24, n_output=2, n_rival=1, batch_size=10, generator=g)
    calls = []
    handle = model.embed.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    try:
        meas = measure(model, [prompts], chunk_size=4)
    finally:
        handle.remove()
    assert calls == [4, 4, 2], "one forward pass per chunk"
    # the same numbers as two separate passes over the whole batch: the decomposition, the pattern
    rows = torch.arange(10)
    ic = decompose_logits(model, prompts.tokens).in_context[:, -1]
    _, cache = model.run_with_cache(prompts.tokens)
    pattern = cache["blocks.1.attn.hook_pattern"][:, 0, -1]
    torch.testing.assert_close(meas.ic_output, ic[rows, prompts.output])
    torch.testing.assert_close(meas.ic_rival, ic[rows, prompts.rival])
    torch.testing.assert_close(meas.attention_on_S, (pattern * prompts.after_trigger).sum(-1))
    torch.testing.assert_close(meas.prob_favourite, model(prompts.tokens)[:, -1].softmax(-1)[rows, prompts.favourite])
    assert torch.equal(meas.n_output, torch.full((10,), 2)) and torch.equal(meas.n_rival, torch.full((10,), 1))


def test_measurements_and_theory_check_round_trip_through_json(stats):
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, ffn="linear")), scale=0.3)
    designer = PromptDesigner(stats, stats.most_frequent(5))
    g = torch.Generator().manual_seed(0)
    batches = [designer.sample(length=T, n_output=n, batch_size=6, generator=g) for T in (16, 32) for n in range(4)]
    meas = measure(model, batches)  # no rival: ic_rival is NaN throughout, null in JSON
    check = check_theory(meas, read_projection_diagonals(model))
    meas_json = json.loads(dumps_json(meas.to_dict()))
    assert meas_json["ic_rival"][0] is None
    back = Measurements.from_dict(meas_json)
    assert back.ic_rival.isnan().all() and back.n.dtype == torch.long
    torch.testing.assert_close(back.ic_output, meas.ic_output.double())
    assert json_safe(back.to_dict()) == json_safe(meas.to_dict())
    assert back.weights_ic_output_by_score_scale.shape == (len(meas.n), len(SCORE_SCALES))
    torch.testing.assert_close(back.measured_values_ic_output, meas.measured_values_ic_output.double())
    check_json = json.loads(dumps_json(check.to_dict()))
    again = TheoryCheck.from_dict(check_json)
    assert math.isnan(again.split["difference_r2_weights_only"]) and again.rungs[0].name == "counts"
    assert list(again.splits) == ["validation", "test", "long_prompts", "large_counts"]
    assert [again.splits[name].held_out for name in again.splits] == [False, True, True, True]
    assert [r.name for r in again.splits["long_prompts"].causes] == list(CAUSES)
    assert set(again.hijack["32"]) == {"measured", "predicted", "weights_only"}
    assert json_safe(again.to_dict()) == json_safe(check.to_dict())


def test_a_two_dimensional_column_of_nans_round_trips_through_json(stats):
    """Without absolute positions the weights-only columns are NaN, null in JSON at any depth."""
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, positional="rpe")), scale=0.3)
    prompts = PromptDesigner(stats, stats.most_frequent(5)).sample(
        length=16, n_output=1, batch_size=3, generator=torch.Generator().manual_seed(0)
    )
    meas = measure(model, [prompts])
    data = json.loads(dumps_json(meas.to_dict()))
    assert data["weights_ic_output_by_score_scale"][0][0] is None
    back = Measurements.from_dict(data)
    assert back.weights_ic_output_by_score_scale.shape == (3, len(SCORE_SCALES))
    assert back.weights_ic_output_by_score_scale.isnan().all()


def test_a_held_out_cell_is_never_fitted_on(stats):
    """Perturbing the held-out prompts' targets changes their scores but no fitted constant."""
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, ffn="linear")), scale=0.3)
    designer = PromptDesigner(stats, stats.most_frequent(5))
    g = torch.Generator().manual_seed(0)
    batches = [
        designer.sample(length=T, n_output=n, batch_size=5, generator=g) for T in (8, 16, 24, 32) for n in range(4)
    ]
    meas = measure(model, batches)
    diagonals = read_projection_diagonals(model)
    check = check_theory(meas, diagonals, train_length=32, max_count=3)
    for name, held_out in (("long_prompts", meas.length > 16), ("large_counts", meas.n > 1.5)):
        split = check.splits[name]
        assert (split.n_scored, split.n_fit, split.held_out) == (int(held_out.sum()), int((~held_out).sum()), True)
        noise = torch.randn(len(meas.n), generator=g).double()
        target = torch.where(held_out, meas.ic_output.double() + noise, meas.ic_output.double())
        again = check_theory(dataclasses.replace(meas, ic_output=target), diagonals, train_length=32, max_count=3)
        assert [r.fitted for r in again.splits[name].rungs] == [r.fitted for r in split.rungs]
        assert again.splits[name].rung("weights_only").r2 != split.rung("weights_only").r2
    fitted = check.splits["long_prompts"].rung("weights_only_fitted").fitted
    assert set(fitted) == {"score_scale", "read_out_scale"} and float(fitted["score_scale"]) in SCORE_SCALES.tolist()


def test_the_formula_rung_is_picked_on_validation_prompts_and_scored_on_test_prompts(stats):
    """The fit half, the validation quarter and the test quarter are disjoint; the rung is the
    best on validation, its reported R^2 the test quarter's; perturbing only the test prompts
    moves that R^2 but neither the pick nor a fitted constant."""
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, ffn="linear")), scale=0.3)
    designer = PromptDesigner(stats, stats.most_frequent(5))
    g = torch.Generator().manual_seed(0)
    batches = [designer.sample(length=T, n_output=n, batch_size=6, generator=g) for T in (8, 16, 32) for n in range(4)]
    meas = measure(model, batches)
    diagonals = read_projection_diagonals(model)
    check = check_theory(meas, diagonals, seed=3)
    validation, test = check.splits["validation"], check.splits["test"]
    assert validation.n_fit == test.n_fit and validation.n_fit + validation.n_scored + test.n_scored == len(meas.n)
    assert min(validation.n_scored, test.n_scored) > 0
    picked = max(validation.rungs[:3], key=lambda r: r.r2)
    assert check.best == picked.name and check.test_r2 == test.rung(check.best).r2
    assert [r.r2 for r in check.rungs] == [r.r2 for r in test.rungs[:4]]
    draw = torch.rand(len(meas.n), generator=torch.Generator().manual_seed(3))
    on_test = draw >= 0.75
    assert int(on_test.sum()) == test.n_scored
    noise = torch.randn(len(meas.n), generator=g).double()
    target = torch.where(on_test, meas.ic_output.double() + noise, meas.ic_output.double())
    again = check_theory(dataclasses.replace(meas, ic_output=target), diagonals, seed=3)
    assert again.best == check.best and again.test_r2 != check.test_r2
    assert [r.r2 for r in again.splits["validation"].rungs] == [r.r2 for r in validation.rungs]
    assert [r.fitted for r in again.splits["test"].rungs] == [r.fitted for r in test.rungs]


def test_projection_diagonals_are_the_memory_strengths_a_theory_model_is_built_with(stats):
    """Oracle: the theory-built model writes lambda = C_O2[j, j] and alpha = C_K2[q, q]/sqrt(d)
    for the triggers; reading them back gives large positive values there."""
    triggers = stats.most_frequent(5)
    model = theory_model_of(ModelConfig(d_model=128, n_ctx=32, d_vocab=65), triggers)
    diagonals = read_projection_diagonals(model)
    assert diagonals.read_out.shape == (65,) and diagonals.alpha.dtype == torch.float64
    others = torch.ones(65, dtype=torch.bool)
    others[triggers] = False
    assert diagonals.alpha[triggers].min() > diagonals.alpha[others].max()
