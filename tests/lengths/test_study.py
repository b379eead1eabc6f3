"""The positional-encoding study (induction_bigram.lengths): variants, protocol, bookkeeping."""

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from induction_bigram import BigramStats, TriggerTask, train
from induction_bigram.errors import ConfigError
from induction_bigram.figures import save_figures
from induction_bigram.files import dumps_json
from induction_bigram.lengths import (
    PRESETS,
    LengthsConfig,
    LengthsResult,
    accuracy_over_seeds,
    claims,
    clipped_relative_bias,
    count_positions,
    evaluate_lengths,
    length_scaled_layer1,
    protocol_batch,
    rotary_bias_profile,
    run,
    variant_config,
    window,
)
from induction_bigram.lengths.figures import (
    figures,
    lengths_attention_view,
    plot_accuracy_by_position,
    plot_layer1_offsets,
    plot_previous_token,
)
from induction_bigram.model import relative_position_bias
from tests.conftest import model_of, randomise_trainables

STUDY = PRESETS["test"]  # d = 16, T_train = 8, k = 1, 2, 3, 4, 6, 8
T, L = STUDY.task.seq_len, STUDY.max_length
D = STUDY.model.d_model


def tiny(variant: str, stats: BigramStats):
    config = variant_config(variant, STUDY).with_vocab(stats.n_tokens)
    return config, model_of(config.model, "cpu"), TriggerTask(stats, config.task)


def scores_with_stream(model, layer: int, stream: torch.Tensor) -> torch.Tensor:
    """Layer ``layer``'s masked attention scores when its input stream is ``stream`` [1, n, d]."""
    tokens = torch.zeros(1, stream.shape[1], dtype=torch.long)
    hooks = [(f"blocks.{layer}.hook_resid_pre", lambda x, hook: stream)]
    with model.hooks(fwd_hooks=hooks):
        _, cache = model.run_with_cache(tokens, names_filter=f"blocks.{layer}.attn.hook_attn_scores")
    return cache[f"blocks.{layer}.attn.hook_attn_scores"][0, 0]


# -- variants -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ape", "rpe", "rope", "rope-nobias", "nope"])
def test_variant_configs_train_short_and_hold_long_contexts(variant):
    config = variant_config(variant, STUDY)
    assert config.task.seq_len == T and config.model.n_ctx == L == 8 * T
    assert config.model.positional == variant.split("-")[0]
    assert config.model.rope_qk_bias == (variant == "rope")
    assert config.model.n_layers == (3 if variant == "nope" else 2)


BAD_OVERRIDES = {
    "lengths.variants=ape,alibi": "lengths.variants: unknown variant 'alibi'",
    "lengths.multiples=2,3": r"^lengths.multiples must be increasing and start at 1, got \(2, 3\)",
    "lengths.multiples=1,3,2": "lengths.multiples must be increasing",
    "lengths.threads=0": "lengths.threads must be >= 1",
    "lengths.multiple=1,2": "did you mean lengths.multiples",
    "model.positional=rpe": "model.positional .* set per variant",
    "model.d_model=15": "model.d_model must be even for rotary",  # every variant's run config is checked up front
}


def test_study_config_is_validated():
    for override, message in BAD_OVERRIDES.items():
        with pytest.raises(ConfigError, match=message):
            STUDY.with_overrides([override])
    assert STUDY.with_overrides(["model.d_model=15", "lengths.variants=ape,rpe"]).model.d_model == 15
    with pytest.raises(ConfigError, match="unknown lengths preset 'gpu-huge'"):
        PRESETS["gpu-huge"]
    assert list(PRESETS) == ["cpu", "test"] and all(PRESETS.doc(name) for name in PRESETS)
    assert LengthsConfig.from_dict(json.loads(STUDY.to_json())) == STUDY


def test_overrides_reach_every_variant():
    config = STUDY.with_overrides(["lengths.multiples=1,2", "train.lr=0.1", "task.seq_len=6"])
    assert config.max_length == 12
    run_config = variant_config("rpe", config)
    assert run_config.model.n_ctx == 12 and run_config.task.seq_len == 6 and run_config.train.lr == 0.1


def test_cpu_preset_keeps_the_prototype_recipe():
    cpu = PRESETS["cpu"]
    assert (cpu.model.d_model, cpu.task.seq_len, cpu.task.n_triggers, cpu.max_length) == (128, 64, 5, 512)
    train = cpu.train
    assert (train.optimizer, train.lr, train.weight_decay, train.lr_scaling) == ("adamw", 0.03, 0.0, "none")
    assert (train.steps, train.batch_size, train.eval_every, train.checkpoint_every) == (1500, 64, 150, 1500)
    assert (train.device, train.seed, cpu.model.seed, cpu.lengths.threads) == ("cpu", 0, 0, 1)


def test_ape_positions_beyond_training_exist_and_are_never_seen(stats, monkeypatch):
    lengths_seen = []
    sample = TriggerTask.sample

    def recording(self, *args, **kwargs):
        batch = sample(self, *args, **kwargs)
        lengths_seen.append(batch.tokens.shape[1])
        return batch

    monkeypatch.setattr(TriggerTask, "sample", recording)
    config = variant_config("ape", STUDY)
    result = train(config, None, progress=False)
    assert set(lengths_seen) == {T}, "training and its evaluation only ever see T_train positions"
    W_pos = result.model.pos_embed.W_pos
    assert W_pos.shape[0] == L and not W_pos.requires_grad
    beyond = W_pos[T:]
    assert beyond.norm(dim=-1).min() > 0.3, "p_t for t >= T_train are random, not zero"
    fresh = model_of(config.with_vocab(stats.n_tokens).model, "cpu")
    assert torch.equal(W_pos, fresh.pos_embed.W_pos), "p_t are frozen: trained and untrained alike"


# -- rpe and rope -------------------------------------------------------------------------------


def test_relative_bias_adds_b_of_the_offset_and_trains(stats):
    config, model, _ = tiny("rpe", stats)
    randomise_trainables(model)
    stream = torch.randn(1, L, D, generator=torch.Generator().manual_seed(3))
    with_bias = scores_with_stream(model, 0, stream)
    bias = relative_position_bias(model).detach().clone()
    with torch.no_grad():
        relative_position_bias(model).zero_()
    without = scores_with_stream(model, 0, stream)
    t = torch.arange(L)
    offsets = t[:, None] - t[None, :]
    causal = offsets >= 0
    torch.testing.assert_close((with_bias - without)[causal], bias[offsets[causal]])
    assert torch.isinf(with_bias[~causal]).all(), "the causal mask stays -inf"
    assert not model.pos_embed.W_pos.any(), "no absolute positions in the stream"
    trained = train(config, None, progress=False).model
    assert relative_position_bias(trained).requires_grad
    assert relative_position_bias(trained)[:T].abs().sum() > 0, "b_(t-s) trains"
    assert not relative_position_bias(trained)[T:].any(), "offsets >= T_train never get a gradient"


def test_clipped_relative_bias_shares_the_last_trained_offset_and_restores(stats):
    _, model, _ = tiny("rpe", stats)
    randomise_trainables(model)
    bias = relative_position_bias(model)
    before = bias.detach().clone()
    with clipped_relative_bias(model, T - 1):
        assert torch.equal(bias[:T], before[:T]) and (bias[T:] == before[T - 1]).all()
    assert torch.equal(bias, before)


def test_length_scaled_layer1_sets_far_offsets_and_scales_scores_beyond_T_train_only(stats):
    _, model, _ = tiny("rpe", stats)
    randomise_trainables(model)
    stream = torch.randn(1, L, D, generator=torch.Generator().manual_seed(3))
    bias = relative_position_bias(model)
    before = bias.detach().clone()
    far_mean = before[2:T].mean()
    with length_scaled_layer1(model, T):
        assert torch.equal(bias[:T], before[:T]) and (bias[T:] == far_mean).all()
        scaled = scores_with_stream(model, 0, stream)
    assert torch.equal(bias, before), "the trained bias comes back"
    with length_scaled_layer1(model, T, log_scaling=False):
        far = scores_with_stream(model, 0, stream)
    with length_scaled_layer1(model, T, far_bias=False):
        assert torch.equal(bias, before)
    t = torch.arange(L)
    causal = t[:, None] >= t[None, :]
    factor = (torch.log(t + 1.0) / math.log(T)).clamp_min(1.0)
    assert factor[T - 1] == 1.0 and factor[L - 1] == pytest.approx(math.log(L) / math.log(T))
    torch.testing.assert_close(scaled[causal], (far * factor[:, None])[causal])
    torch.testing.assert_close(scaled[:T], far[:T]), "nothing changes at t < T_train"


@pytest.mark.parametrize("variant", ["rpe", "rope"])
def test_layer_two_scores_depend_on_content_only(stats, variant):
    _, model, _ = tiny(variant, stats)
    randomise_trainables(model)
    g = torch.Generator().manual_seed(4)
    n, m = 2 * T, T
    stream = torch.randn(1, n, D, generator=g)
    shifted = torch.cat([torch.randn(1, m, D, generator=g), stream], dim=1)
    # shifting the whole stream by m positions shifts layer 2's scores with it ...
    torch.testing.assert_close(scores_with_stream(model, 1, shifted)[m:, m:], scores_with_stream(model, 1, stream))
    # ... and a stream with the same vector everywhere gets the same score at every offset
    constant = stream[:, :1].expand(1, n, -1).contiguous()
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    layer2 = scores_with_stream(model, 1, constant)[causal]
    torch.testing.assert_close(layer2, layer2[:1].expand_as(layer2))
    layer1 = scores_with_stream(model, 0, constant)[causal]
    assert layer1.std() > 1e-3, "layer 1 does see the offset"


def test_rotary_bias_profile_is_the_score_of_the_biases_alone(stats):
    _, model, _ = tiny("rope", stats)
    randomise_trainables(model)
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.W_Q.zero_()
        attn.W_K.zero_()  # q = b_Q, k = b_K: the score is b_Q^T R_(s-t) b_K / sqrt(d)
    profile = rotary_bias_profile(model, L)
    scores = scores_with_stream(model, 0, torch.randn(1, L, D))
    t = torch.arange(L)
    offsets = t[:, None] - t[None, :]
    causal = offsets >= 0
    torch.testing.assert_close(scores[causal], profile[offsets[causal]])
    _, plain, _ = tiny("rope-nobias", stats)
    assert rotary_bias_profile(plain, L) is None


# -- the protocol -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_oversight_prompts_hold_no_trigger_before_the_last_window(stats, k):
    task = TriggerTask(stats, variant_config("ape", STUDY).task)
    batch = protocol_batch(task, "oversight", k, T, 64, torch.Generator().manual_seed(k))
    prefix = (k - 1) * T
    assert batch.tokens.shape == (64, k * T)
    is_trigger = (batch.tokens[:, :, None] == batch.triggers[:, None, :]).any(-1)
    assert not is_trigger[:, :prefix].any(), "the prefix holds no trigger"
    assert is_trigger[:, prefix:].any(), "the trigger process runs in the last window"
    assert not batch.in_context[:, :prefix].any(), "every in-context target lies in the window"
    assert batch.in_context[:, prefix:].any()
    ordinary = protocol_batch(task, "ordinary", k, T, 64, torch.Generator().manual_seed(k))
    if k > 1:
        assert ordinary.in_context[:, :prefix].any(), "ordinary prompts have evidence everywhere"
    with pytest.raises(ConfigError, match="protocol"):
        protocol_batch(task, "sideways", k, T, 2, torch.Generator())


def test_windows_cover_the_context_once():
    covered = [p for k in range(1, 9) for p in window(k, T)]
    assert covered == list(range(L))
    # the multiples 1, 2, 3, 4, 6, 8 leave the windows of 5x and 7x out
    scored = [p for k in STUDY.lengths.multiples for p in window(k, T)]
    assert sorted(set(range(L)) - set(scored)) == [*range(4 * T, 5 * T), *range(6 * T, 7 * T)]


# -- bookkeeping --------------------------------------------------------------------------------


def test_counts_match_a_direct_computation_and_do_not_depend_on_chunks(stats):
    _, model, task = tiny("ape", stats)
    randomise_trainables(model, scale=2.0)
    batch = protocol_batch(task, "ordinary", 3, T, 11, torch.Generator().manual_seed(0))
    counts = count_positions(model, batch, T, chunk_size=4)
    whole = count_positions(model, batch, T, chunk_size=100)
    for name in ("correct", "total", "previous", "after_trigger", "offset_count"):
        assert torch.equal(getattr(counts, name), getattr(whole, name)), name
    torch.testing.assert_close(counts.offset_score, whole.offset_score)
    torch.testing.assert_close(counts.previous_mass, whole.previous_mass)
    logits = model(batch.tokens)
    correct = (logits.argmax(-1) == batch.targets) & batch.in_context
    assert torch.equal(counts.total, batch.in_context.sum(0))
    assert torch.equal(counts.correct, correct.sum(0))
    w = window(3, T)
    expected = correct[:, w.start :].sum() / batch.in_context[:, w.start :].sum()
    assert counts.window_accuracy(w) == pytest.approx(expected.item())
    assert counts.previous_total[0] == 0 and (counts.previous_total[1:] == 11).all()


def test_previous_token_accuracy_of_a_sharp_relative_bias(stats):
    _, model, task = tiny("rpe", stats)
    with torch.no_grad():
        relative_position_bias(model)[1] = 50.0  # attend to t - 1 at every t >= 1
    result = evaluate_lengths(model, task, train_length=T, batch_size=6, chunk_size=4, seed=1)
    previous = result.previous_token_by_position[0]
    assert math.isnan(previous[0]) and all(v == 1.0 for v in previous[1:])
    summary = result.previous_token_summary()["layer1"]
    assert summary["in_range"] == summary["beyond"] == 1.0
    assert summary["mass_in_range"] == pytest.approx(1.0) and summary["mass_beyond"] == pytest.approx(1.0)
    assert result.offset_summary()["argmax_offset"] == 1
    assert result.late_attention[f"query_{L - 1}"][L - 2] == pytest.approx(1.0)


def test_evaluation_bookkeeping_of_windows_and_counts(stats):
    _, model, task = tiny("ape", stats)
    randomise_trainables(model, scale=2.0)
    result = evaluate_lengths(model, task, train_length=T, batch_size=9, chunk_size=4, seed=5)
    for protocol in (result.oversight, result.ordinary):
        assert list(protocol.accuracy_by_length) == ["1x", "2x", "3x", "4x", "6x", "8x"]
        assert len(protocol.correct_by_position) == len(protocol.count_by_position) == L
    # oversight: position p is counted on the prompts whose last window holds p
    for k in STUDY.lengths.multiples:
        w = window(k, T)
        n = sum(result.oversight.count_by_position[w.start : w.stop])
        assert n == result.oversight.n_in_context_by_length[f"{k}x"] > 0
        hits = sum(result.oversight.correct_by_position[w.start : w.stop])
        assert result.oversight.accuracy_by_length[f"{k}x"] == pytest.approx(hits / n)
    # the same seeded prompts are drawn again for another model
    batch = protocol_batch(task, "oversight", 2, T, 9, torch.Generator().manual_seed(5 + 2))
    assert result.oversight.n_in_context_by_length["2x"] == int(batch.in_context.sum())
    assert result.oversight.accuracy_by_length["1x"] == result.ordinary.accuracy_by_length["1x"]
    assert result.W_K1_recall_by_position is not None and len(result.W_K1_recall_by_position) == L
    assert result.example_patterns.shape == (2, 2 * T, 2 * T)
    assert len(result.previous_token_by_position) == 1


def test_nope_probes_two_layers_and_reports_its_read_out(stats):
    _, model, task = tiny("nope", stats)
    randomise_trainables(model)
    result = evaluate_lengths(model, task, train_length=T, multiples=(1, 2), batch_size=4, chunk_size=4)
    assert len(result.previous_token_by_position) == 2
    assert set(result.memories) == {"W_O3"}
    assert result.W_K1_recall_by_position is None and result.offset_bias is None


# -- the whole study, files and figures ---------------------------------------------------------


def test_study_writes_json_figures_and_view_then_loads_its_checkpoints(tmp_path, capsys):
    study = STUDY.with_overrides(["lengths.variants=ape,rpe"])
    first = run(study, tmp_path, progress=True)
    out, err = capsys.readouterr()
    assert out == "", "progress goes to stderr, so that --json output is the only stdout"
    assert "rpe-clipped: oversight 1x" in err
    data = json.loads((tmp_path / "result.json").read_text())
    assert set(data["variants"]) == {"ape", "rpe"}
    assert set(data["extra_variants"]) == {"rpe-clipped", "rpe-logn"}
    for variant in data["variants"].values():
        assert set(variant["accuracy_by_length"]) == {"1x", "2x", "3x", "4x", "6x", "8x"}
    assert LengthsResult.from_dict(data).to_dict() == first.to_dict()
    paths = save_figures(figures(first), tmp_path / "figures")
    names = "lengths_accuracy.png lengths_attention.html lengths_layer1_offsets.png lengths_previous_token.png"
    assert sorted(Path(p).name for p in paths) == names.split()
    for path in paths:
        assert Path(path).stat().st_size > 10_000
    html = (tmp_path / "figures" / "lengths_attention.html").read_text()
    assert "ape L1" in html and "rpe L2" in html
    again = run(study, tmp_path, progress=False)  # loads, does not retrain
    assert again.to_dict()["variants"] == first.to_dict()["variants"]


def _evaluated(stats, variants=("ape", "rpe", "rope", "nope")) -> LengthsResult:
    results = {}
    for variant in variants:
        _, model, task = tiny(variant, stats)
        randomise_trainables(model)
        results[variant] = evaluate_lengths(model, task, train_length=T, batch_size=4, chunk_size=4, variant=variant)
    return LengthsResult(STUDY, results, 1.5, stats.vocab)


def test_figures_take_results_and_the_view_stays_offline(stats):
    result = _evaluated(stats, ("ape", "rpe", "nope"))
    for plot in (plot_accuracy_by_position, plot_previous_token, plot_layer1_offsets):
        assert isinstance(plot(result), Figure)
    view = lengths_attention_view(result, layers=[0])
    assert "nope L1" in view.local_src and "nope L2" not in view.local_src
    # the same figures from the result read back from JSON
    loaded = LengthsResult.from_dict(json.loads(dumps_json(result.to_dict())))
    assert set(figures(loaded)) == set(figures(result))
    same_page = [re.sub("circuits-vis-[0-9a-f-]+", "", lengths_attention_view(r).local_src) for r in (loaded, result)]
    assert same_page[0] == same_page[1]


def test_result_round_trips_through_json(stats):
    result = _evaluated(stats)
    data = json.loads(dumps_json(result.to_dict()))  # strict JSON: NaN (position 0, untrained runs) -> null
    loaded = LengthsResult.from_dict(data)
    assert loaded.to_dict() == result.to_dict()
    assert loaded.config == STUDY and loaded.vocab == stats.vocab and list(loaded.variants) == list(result.variants)
    ape, back = result.variants["ape"], loaded.variants["ape"]
    assert math.isnan(back.train_seconds) and math.isnan(back.previous_token_by_position[0][0])
    assert back.oversight == ape.oversight and back.W_K1_recall_by_position[1:] == ape.W_K1_recall_by_position[1:]
    assert loaded.variants["rpe"].offset_bias == result.variants["rpe"].offset_bias
    assert loaded.variants["nope"].W_K1_recall_by_position is None
    torch.testing.assert_close(back.example_patterns, ape.example_patterns.double(), atol=5e-4, rtol=0)


def _with_accuracy(result: LengthsResult, name: str, oversight: dict, ordinary: dict) -> LengthsResult:
    r = result.variants[name]
    over, ordi = replace(r.oversight, accuracy_by_length=oversight), replace(r.ordinary, accuracy_by_length=ordinary)
    return replace(result, variants={**result.variants, name: replace(r, oversight=over, ordinary=ordi)})


def test_claims_judge_the_accuracies_against_their_thresholds(stats):
    result = _evaluated(stats)
    result = _with_accuracy(result, "rpe", {"1x": 1.0, "2x": 0.95}, {"1x": 1.0, "2x": 1.0})
    result = _with_accuracy(result, "ape", {"1x": 1.0, "2x": 0.27}, {"1x": 1.0, "2x": 0.97})
    found = claims(result)
    assert [c.held for c in found] == [True, True, True, None]
    assert found[0].measured == "rpe 2x 0.950" and found[1].measured == "ape 1x 1.000, 2x 0.270"
    assert found[3].measured.startswith("rope ") and "; nope " in found[3].measured
    assert [(c.threshold, c.direction) for c in found] == [(0.9, ">="), (0.3, ">="), (0.9, ">="), (None, None)]
    assert [c.value for c in found[:3]] == [0.95, pytest.approx(0.73), 0.97] and found[3].kind == "reported"
    # just past each threshold the verdicts flip
    result = _with_accuracy(result, "rpe", {"1x": 1.0, "2x": 0.89}, {"1x": 1.0, "2x": 1.0})
    result = _with_accuracy(result, "ape", {"1x": 1.0, "2x": 0.71}, {"1x": 1.0, "2x": 0.89})
    assert [c.held for c in claims(result)] == [False, False, False, None]
    # Wang & Sato's "RPE works at any length", judged at 4x and 8x under their own ids
    result = _with_accuracy(result, "rpe", {"1x": 1.0, "2x": 1.0, "4x": 0.9, "8x": 0.89}, {"1x": 1.0, "2x": 1.0})
    found = {c.statement.split("]")[0] + "]": c for c in claims(result) if c.statement.startswith("[")}
    assert list(found) == ["[lengths.rpe-any-length.4x]", "[lengths.rpe-any-length.8x]"]
    assert [(c.held, c.value, c.threshold, c.direction) for c in found.values()] == [
        (True, 0.9, 0.9, ">="),
        (False, 0.89, 0.9, ">="),
    ]
    assert found["[lengths.rpe-any-length.8x]"].statistic == "rpe in-context accuracy at 8x, oversight prompts"
    # the variant built from the measurements, under its own ids
    result = replace(result, variants={**result.variants, "rpe-logn": result.variants["rpe"]})
    result = _with_accuracy(result, "rpe-logn", {"1x": 1.0, "4x": 0.95, "8x": 0.5}, {"1x": 1.0})
    found = {c.statement.split("]")[0] + "]": c for c in claims(result) if c.statement.startswith("[lengths.rpe-logn")}
    assert [(c.held, c.value, c.threshold) for c in found.values()] == [(True, 0.95, 0.9), (False, 0.5, 0.9)]
    assert list(found) == ["[lengths.rpe-logn.4x]", "[lengths.rpe-logn.8x]"]
    # a variant that was not run makes no claim
    only_rope = replace(result, variants={"rope": result.variants["rope"]})
    assert [c.held for c in claims(only_rope)] == [None]


def test_accuracy_over_seeds_is_the_clipped_t_interval_of_the_seeds(stats):
    result = _evaluated(stats, variants=("ape", "rpe"))
    seeds = [
        _with_accuracy(result, "rpe", {"1x": 1.0, "2x": v, "4x": w}, {"1x": 1.0})
        for v, w in ((0.9, 0.2), (1.0, float("nan")), (1.0, 0.3))
    ]
    table = accuracy_over_seeds(seeds)
    assert set(table) == {"ape", "rpe"} and list(table["rpe"]) == ["1x", "2x"], "a NaN in some seed leaves 4x out"
    mean, low, high = table["rpe"]["2x"]
    assert mean == pytest.approx(29 / 30) and high == 1.0
    assert low == pytest.approx(29 / 30 - 4.302653 * math.sqrt(1 / 300) / math.sqrt(3), abs=1e-5)
    assert table["rpe"]["1x"] == (1.0, 1.0, 1.0)
    assert accuracy_over_seeds(seeds, "ordinary")["rpe"]["1x"] == (1.0, 1.0, 1.0)
    without_rpe = replace(result, variants={"ape": result.variants["ape"]})
    assert set(accuracy_over_seeds([*seeds, without_rpe])) == {"ape"}


# -- a real training --------------------------------------------------------------------------


@pytest.mark.slow
def test_rpe_keeps_long_prompts_while_ape_overlooks_them():
    settings = "variants=ape,rpe multiples=1,2 eval_batch_size=128 chunk_size=64 rpe_clipped=false threads=1"
    train = "steps=400 batch_size=32 eval_batch_size=128 eval_every=40 checkpoint_every=400"
    study = PRESETS["cpu"].with_overrides(
        ["task.seq_len=16", "model.d_model=64"]
        + [f"lengths.{item}" for item in settings.split()]
        + [f"train.{item}" for item in train.split()]
    )
    threads = torch.get_num_threads()
    result = run(study, None, progress=False)
    assert torch.get_num_threads() == threads, "the study restores the thread count"
    ape, rpe = result.variants["ape"], result.variants["rpe"]
    assert rpe.oversight.accuracy_by_length["2x"] >= 0.9
    assert ape.oversight.accuracy_by_length["2x"] <= ape.oversight.accuracy_by_length["1x"] - 0.3
    recall = ape.to_dict()["W_K1_recall"]
    assert recall["in_range"] > 0.8 and recall["beyond"] < 0.2, "W_K^1 is learned only where trained"
