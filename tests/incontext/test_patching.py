import json
import math
import warnings

import pytest
import torch

from induction_bigram.anymodel.logits import logit_difference, patching_gap, restoration_metric
from induction_bigram.config import ModelConfig
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.errors import DataError, ModelShapeError
from induction_bigram.files import dumps_json
from induction_bigram.incontext.patching import (
    PatchingResult,
    _tl_progress_bars,
    corrupt,
    patch_in_context_against_bigram,
    patch_positions,
)
from induction_bigram.model import build_model
from tests.conftest import theory_model_of, vocab


@pytest.fixture(scope="module")
def theory_setup(stats):
    triggers = stats.most_frequent(5)
    model = theory_model_of(ModelConfig(d_model=128, n_ctx=32, d_vocab=65), triggers)
    designer = PromptDesigner(stats, triggers)
    g = torch.Generator().manual_seed(0)
    prompts = designer.sample(
        length=32, n_output=3, batch_size=8, generator=g, pair_starts=designer.evenly_spaced(3, 32)
    )
    return model, prompts, g


def test_corruption_replaces_exactly_the_in_context_outputs(stats, theory_setup):
    _, prompts, g = theory_setup
    corrupted = corrupt(prompts, stats.bigram, g)
    changed = corrupted != prompts.tokens
    assert torch.equal(changed, prompts.after_trigger)
    assert not (corrupted[prompts.after_trigger] == prompts.output.repeat_interleave(3)).any()
    removed = corrupt(prompts, stats.bigram, g, mode="remove_triggers")
    assert ((removed == prompts.trigger[:, None]).sum(-1) == 1).all(), "only the final q is left"


def test_patching_clean_into_clean_is_one_and_corrupted_into_corrupted_is_zero(stats, theory_setup):
    model, prompts, g = theory_setup
    corrupted = corrupt(prompts, stats.bigram, g)
    clean_logits, clean_cache = model.run_with_cache(prompts.tokens)
    corrupted_logits, corrupted_cache = model.run_with_cache(corrupted)
    o, g_ = prompts.output, prompts.favourite
    gap = patching_gap(logit_difference(clean_logits, o, g_), logit_difference(corrupted_logits, o, g_))
    metric = restoration_metric(gap, o, g_)
    everywhere = torch.ones_like(prompts.after_trigger)
    hook = "blocks.0.hook_resid_pre"
    assert patch_positions(model, prompts.tokens, clean_cache, hook, everywhere, metric) == pytest.approx(1.0, abs=1e-5)
    assert patch_positions(model, corrupted, corrupted_cache, hook, everywhere, metric) == pytest.approx(0.0, abs=1e-5)
    assert patch_positions(model, corrupted, clean_cache, hook, everywhere, metric) == pytest.approx(1.0, abs=1e-5)


def test_layer2_head_carries_the_in_context_difference_of_the_theory_model(stats, theory_setup):
    model, prompts, g = theory_setup
    result = patch_in_context_against_bigram(model, prompts, corrupt(prompts, stats.bigram, g))
    assert result.clean_difference > result.corrupted_difference and result.gap.measurable
    assert result.layer2_head_last == pytest.approx(1.0, abs=0.05)
    assert result.resid_pre.shape == (2, 32) and result.head_out.shape == (2, 32)
    assert result.resid_pre[0, -1] == pytest.approx(0.0, abs=0.05)  # the last token is q in both
    assert not result.has_ffn and result.summary()["restore_ffn_last"] is None
    assert result.positions_after_trigger == (prompts.after_trigger[0].nonzero().flatten()).tolist()
    back = PatchingResult.from_dict(json.loads(dumps_json(result.to_dict())))
    assert back.to_dict() == result.to_dict() and back.summary() == result.summary()
    torch.testing.assert_close(back.head_out, result.head_out.double())
    # removing the earlier q's: restoring layer 1 after them restores the previous-token path
    removed = patch_in_context_against_bigram(model, prompts, corrupt(prompts, stats.bigram, g, "remove_triggers"))
    assert removed.layer1_after_trigger > 0.8


def test_an_unmeasurable_gap_reads_back_as_nan_and_no_ffn_as_none(stats):
    """JSON writes NaN as null: read back, a model with an FFN and nothing to divide by still
    has NaN fractions, and only a model without an FFN has no FFN patch."""
    triggers = stats.most_frequent(5)
    designer = PromptDesigner(stats, triggers)
    g = torch.Generator().manual_seed(0)
    prompts = designer.sample(length=16, n_output=2, batch_size=2, generator=g)
    for ffn in ("linear", "none"):
        model = build_model(ModelConfig(d_model=32, n_ctx=16, d_vocab=65, ffn=ffn), "cpu", vocab=vocab(65))
        with pytest.warns(RuntimeWarning, match="restored fractions are NaN"):
            result = patch_in_context_against_bigram(model, prompts, prompts.tokens)  # clean against itself
        back = PatchingResult.from_dict(json.loads(dumps_json(result.to_dict())))
        assert not back.gap.measurable and back.has_ffn == (ffn == "linear")
        assert math.isnan(back.layer2_head_last) and math.isnan(back.ffn_last)
        assert back.summary()["restore_ffn_last"] is (None if ffn == "none" else back.ffn_last)


def test_bad_inputs_are_named(stats, theory_setup):
    model, prompts, g = theory_setup
    with pytest.raises(DataError, match="corrupted prompts have shape"):
        patch_in_context_against_bigram(model, prompts, prompts.tokens[:, 1:])
    clean_logits, cache = model.run_with_cache(prompts.tokens)
    same = logit_difference(clean_logits, prompts.output, prompts.favourite)
    with pytest.warns(RuntimeWarning, match="restored fractions are NaN"):
        metric = restoration_metric(patching_gap(same, same), prompts.output, prompts.favourite)
    assert metric(clean_logits).isnan()
    # TL 3 registers hook_mlp_out on an attention-only model with no layer behind it; TL 4 has no such point
    with pytest.raises(ModelShapeError, match=r"no (layer behind )?hook point 'blocks\.1\.hook_mlp_out'"):
        patch_positions(
            model,
            prompts.tokens,
            cache,
            "blocks.1.hook_mlp_out",
            torch.ones_like(prompts.after_trigger),
            lambda logits: logits.sum(),
        )
    assert logit_difference(clean_logits, prompts.output, prompts.favourite).shape == (8,)


def test_transformer_lens_progress_bars_show_only_when_asked(stats, theory_setup, capfd):
    model, prompts, g = theory_setup
    corrupted = corrupt(prompts, stats.bigram, g)
    quiet = patch_in_context_against_bigram(model, prompts, corrupted)
    assert capfd.readouterr().err == ""
    shown = patch_in_context_against_bigram(model, prompts, corrupted, progress=True)
    assert "it/s" in capfd.readouterr().err
    assert torch.equal(quiet.resid_pre, shown.resid_pre)


def test_hidden_progress_keeps_warnings():
    with pytest.warns(UserWarning, match="still seen"):
        with _tl_progress_bars(False):
            warnings.warn("still seen", UserWarning)
