"""The in-context study's config, run/analyse, result JSON, figures and claims (induction_bigram.incontext)."""

import json
import math

import pytest
import torch
from matplotlib.figure import Figure

from induction_bigram import preset
from induction_bigram.claims import registered
from induction_bigram.errors import ConfigError, ModelShapeError
from induction_bigram.files import dumps_json, json_safe
from induction_bigram.incontext import PRESETS, InContextConfig, InContextResult, analyse, claims, run
from induction_bigram.incontext.claims import threshold_gap
from induction_bigram.incontext.config import idealised_twin
from induction_bigram.incontext.figures import figures
from induction_bigram.training.checkpoint import load_checkpoint
from tests.conftest import preset_run_fixture

finished = preset_run_fixture("incontext")


def test_presets_take_their_run_from_the_amt_preset():
    assert list(PRESETS) == ["full", "quick", "test"]
    full, quick = PRESETS["full"], PRESETS["quick"]
    assert full.run_config() == preset("amt")
    assert (quick.incontext.per_cell, quick.incontext.patch_prompts) == (100, 100)  # >= 100 prompts a cell
    assert full.incontext.idealised and not quick.incontext.idealised  # the twin: full only
    assert quick == full.with_overrides({"incontext.idealised": False})
    assert all(PRESETS.doc(name) for name in PRESETS)


@pytest.mark.parametrize(
    "override, message",
    [
        ("incontext.per_cell=0", "incontext.per_cell must be >= 1"),
        ("incontext.length_fractions=0.5,1.5", "incontext.length_fractions must be <= 1.0"),
        ("incontext.length_fractions=0.5,nan", "incontext.length_fractions must be finite numbers, got \\(0.5, nan\\)"),
        ("incontext.length_fractions=0,1", r"fractions in \(0, 1\]"),
        ("incontext.competing=[[0, 1]]", "must both be >= 1"),
        ("incontext.patch_count=6", "need prompts of at least 17 tokens"),
        ("incontext.percell=3", "did you mean incontext.per_cell"),
        ("model.positional=nope", "needs a 2-layer model"),
        ("model.n_ctx=16", "smaller than task.seq_len"),
    ],
)
def test_bad_settings_are_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        PRESETS["test"].with_overrides([override])


def test_sections_parse_from_json_and_set_strings():
    sets = ["incontext.competing=[[1, 2], [3, 1]]", "incontext.length_fractions=0.5,1"]
    config = PRESETS["test"].with_overrides(sets)
    assert config.incontext.competing == ((1, 2), (3, 1)) and config.incontext.length_fractions == (0.5, 1.0)
    assert InContextConfig.from_dict(json.loads(config.to_json())) == config
    run_config = preset("quick")
    moved = config.with_run(run_config)
    assert moved.run_config() == run_config and moved.incontext == config.incontext


def test_run_writes_a_result_that_round_trips(finished):
    out, result = finished
    data = json.loads((out / "result.json").read_text())
    assert data == json.loads(dumps_json(result.to_dict()))
    back = InContextResult.from_dict(data)
    assert back.to_dict() == result.to_dict()
    assert back.config == PRESETS["test"] and back.final["step"] == 20 == result.final["step"]
    torch.testing.assert_close(back.prediction, result.prediction)
    torch.testing.assert_close(back.measurements.ic_output, result.measurements.ic_output.double())
    assert json_safe(back.summary()) == json_safe(result.summary())  # NaN is null on both sides
    assert {"theory_r2", "hijack_threshold", "patch_restore_layer2_head", "global_memory_kl"} <= set(data)
    assert (out / "run" / "checkpoint.pt").is_file()


def test_a_second_run_loads_the_trained_model_and_measures_the_same(finished):
    out, result = finished
    again = run(PRESETS["test"], out, progress=False)
    assert again.to_dict() == result.to_dict()


def test_analyse_measures_what_run_measured_on_the_same_model(finished):
    out, result = finished
    ckpt = load_checkpoint(out / "run", "cpu")
    config = PRESETS["test"].with_run(ckpt.config)
    alone = {**result.summary(), "idealised": None}  # analyse measures one model; run adds the twin
    assert json_safe(analyse(ckpt.model, ckpt.stats, config).summary()) == json_safe(alone)
    with pytest.raises(ConfigError, match="config.model.d_model = 32 but the model has d_model = 16"):
        analyse(ckpt.model, ckpt.stats, config.with_overrides({"model.d_model": 32}))


def test_analyse_refuses_a_model_without_two_layers(stats):
    nope = PRESETS["test"].run_config().with_overrides({"model.positional": "nope"})
    from induction_bigram.model import build_model

    model = build_model(nope.with_vocab(stats.n_tokens).model, "cpu", vocab=stats.vocab)
    with pytest.raises(ModelShapeError, match="needs a 2-layer model"):
        analyse(model, stats, PRESETS["test"])


def test_figures_come_from_the_result_alone(finished):
    _, result = finished
    back = InContextResult.from_dict(json.loads(dumps_json(result.to_dict())))
    figs = figures(back)
    names = ["hijack_curves.png", "theory_fit.png", "patching.png", "paths.png", "logit_parts.png", "idealised.png"]
    assert list(figs) == names and list(figures(back.idealised)) == names[:-1]
    left, right = figs["idealised.png"].axes
    assert len(left.patches) == 8 and len(right.lines) == 3  # 4 paths x 2 models; 2 curves and the 0 line
    assert all(isinstance(f, Figure) for f in figs.values())
    bars = figs["logit_parts.png"].axes[0].get_legend().get_texts()
    best, weights = (ax.get_title() for ax in figs["theory_fit.png"].axes)
    assert "fitted on a random half, picked on a quarter" in best and "R^2 on the other quarter (test)" in best
    assert "weights only, nothing fitted" in weights and f"R^2 on {back.check.splits['long_prompts'].scored}" in weights
    assert bars[0].get_text() == f"o = {back.vocab[back.example_output]!r}"


def test_claims_judge_their_thresholds(finished):
    """Sections 5-5.7 are judged on the component view they were registered on, their path-level
    counterparts on the path view; editing one view's numbers moves only that view's claims."""
    _, result = finished
    data = json.loads(dumps_json(result.to_dict()))

    def judged(view: str, r2: float, layer2: float, difference: float) -> list:
        theory = data[view]
        best = next(r for r in theory["rungs"] if r["name"] == theory["best"])
        weights = next(r for r in theory["splits"]["long_prompts"]["rungs"] if r["name"] == "weights_only")
        best["r2"] = weights["r2"] = r2
        theory["split"]["difference_r2_weights_only"] = difference
        data["patching"]["replace_outputs"]["layer2_head_last"] = layer2
        return [c.held for c in claims(InContextResult.from_dict(data))]

    found = claims(result)
    ids = [registered("incontext", c).id for c in found]  # 5 and 5.7 on honest splits: claims 39-42 (issue 28)
    assert ids == [39, 11, 12, 13, 14, 15, 41, 17, 18, 19, 40, 29, 30, 31, 32, 42, 34, 43, 44, 45]
    first = ["5", "5.1", "5.2", "5.3", "5.4", "5.5", "5.7", "6", "6", "6"]  # registered first, in their order
    later = [f"4.1, {n}" for n in ("5", "5.1", "5.2", "5.3", "5.4", "5.7")] + ["4.1", "4.1, 5.4", "4.2", "4.2"]
    assert [c.section for c in found] == first + later
    assert all(c.statement.startswith("at path level, ") for c in found[10:16])
    assert [c.statement.removeprefix("at path level, ") for c in found[10:16]] == [
        c.statement for c in found[:7] if c.section != "5.5"
    ]
    # (view, the claims it moves: 5, 5.3, 5.7 of that view, and the layer-2 patch)
    for view, judged_here in (("component_theory", (0, 3, 6, 7)), ("theory", (7, 10, 13, 15))):
        high, low = judged(view, 0.95, 0.95, 0.6), judged(view, 0.85, 0.85, 0.4)
        moved = [i for i in range(len(found)) if high[i] != low[i]]
        assert moved == sorted(judged_here), view
        assert all((high[i], low[i]) == (True, False) for i in moved)
    kinds = ["threshold"] * 4 + ["reported"] + ["threshold"] * 4 + ["reported"]
    later_kinds = ["threshold"] * 4 + ["reported", "threshold", "reported", "threshold", "threshold", "reported"]
    assert [c.kind for c in found] == kinds + later_kinds
    thresholds = [(c.direction, c.threshold) for c in found]
    assert thresholds[:7] == [
        (">=", 0.9),
        (">=", 0.8),
        (">=", 0.8),
        (">=", 0.5),
        (None, None),
        (">=", 0.9),
        (">=", 0.9),
    ]
    assert thresholds[10:16] == thresholds[:5] + thresholds[6:7]  # the same statistics and thresholds
    assert found[0].value == result.component_best.r2 and found[10].value == result.best.r2
    assert found[6].value == result.component_check.weights_only_r2
    assert found[15].value == result.check.weights_only_r2 == result.summary()["theory_r2_weights_only"]
    restored = result.summary()["patch_restore_layer2_head"]  # NaN when the gap is within noise: no value
    assert found[7].value == restored or (found[7].value is None and math.isnan(restored))
    assert found[16].value == result.paths()["in_context_share_through_ffn"]
    assert found[17].value == threshold_gap(result.check.hijack, PRESETS["test"].incontext.max_count)
    assert found[18].value == abs(result.idealised.paths()["in_context_share_through_ffn"]) == 0.0
    assert (found[17].direction, found[17].threshold, found[18].direction, found[18].threshold) == ("<=", 1, "<=", 0.05)


def test_the_idealised_twin_is_the_same_recipe_with_an_ffn_that_reads_only_the_token(finished):
    out, result = finished
    twin = result.idealised
    assert twin.config == idealised_twin(PRESETS["test"]) and twin.idealised is None
    assert twin.config.run_config() == PRESETS["test"].run_config().with_overrides({"model.ffn_reads": "token"})
    trained = load_checkpoint(out / "run-idealised", "cpu").config
    assert trained.model.ffn_reads == "token" and trained.train == twin.config.run_config().train
    for column in ("length", "trigger", "output", "favourite", "n_output"):  # the same prompts
        assert getattr(twin.measurements, column).equal(getattr(result.measurements, column)), column
    summary = result.summary()["idealised"]
    assert summary["paths"]["in_context_share_through_ffn"] == 0.0 and summary["hijack_thresholds"] == twin.check.hijack
    assert idealised_twin(PRESETS["test"].with_overrides({"incontext.idealised": "false"})) is None
    assert idealised_twin(twin.config) is None


@pytest.mark.parametrize(
    ("hijack", "gap"),
    [
        ({"8": {"measured": 2, "weights_only": 2}, "16": {"measured": 3, "weights_only": 1}}, 2),
        ({"8": {"measured": None, "weights_only": None}}, 0),
        ({"8": {"measured": 1, "weights_only": None}}, 3),  # max_count 3: never = 4
        ({}, 0),
    ],
)
def test_threshold_gap_counts_a_missing_threshold_as_beyond_the_largest_count(hijack, gap):
    assert threshold_gap(hijack, max_count=3) == gap


def test_the_paths_say_which_mechanism_carries_the_in_context_effect(finished):
    """Each path's mean contribution to xi_o - xi_g over the prompts; the in-context shares add
    to 1 and the path contributions add to the measured logit difference."""
    _, result = finished
    paths = result.paths()
    assert paths["in_context_share_direct"] + paths["in_context_share_through_ffn"] == pytest.approx(1.0)
    meas = result.measurements.select((result.measurements.n >= 1) & (result.measurements.rival < 0))
    total = sum(row["mean"] for row in paths["rows"])
    assert total == pytest.approx(meas.logit_difference.double().mean().item(), abs=1e-4)
    assert {row["source"] for row in paths["rows"]} == set(result.path_sources)
    assert all(row["low"] <= row["mean"] <= row["high"] for row in paths["rows"])
    summary = result.summary()["paths"]
    assert set(summary) == set(paths) - {"rows"} | {"by_path"}
    assert [summary["by_path"][r["source"]][r["route"]] for r in paths["rows"]] == [r["mean"] for r in paths["rows"]]


def test_the_example_is_the_decomposition_at_the_last_position(finished):
    _, result = finished
    example = result.example
    assert example.parts.shape == (len(example.names), 1, 1, len(result.vocab))
    torch.testing.assert_close(example.parts.sum(0), example.logits, atol=1e-4, rtol=1e-4)
    assert result.example_tokens.shape == (result.config.incontext.patch_length,)
