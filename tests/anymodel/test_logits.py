"""Direct logit attribution and patching of one head of any HookedTransformer
(induction_bigram/anymodel/logits.py)."""

import math

import pytest
import torch

from induction_bigram.anymodel import (
    HeadLogitSplit,
    direct_logit_split,
    induction_prompts,
    logit_difference,
    patch_head,
    patch_head_metric,
    patching_gap,
)
from induction_bigram.errors import DataError
from induction_bigram.pretrained import load_pretrained, pretrained_task
from tests.anymodel.builders import INDUCTION, ideal_circuit_model, random_model


def test_prompts_repeat_q_o_from_the_vocabulary_and_corrupt_only_o():
    model = random_model()
    prompts = induction_prompts(model, n_prompts=8, length=20, seed=1)
    assert prompts.clean.shape == prompts.corrupted.shape == (8, 20)
    assert (prompts.clean[:, -1] == prompts.trigger).all()
    differs = prompts.clean != prompts.corrupted
    assert (differs.sum(1) == 1).all()
    after = differs.float().argmax(1)
    rows = torch.arange(8)
    assert (prompts.clean[rows, after] == prompts.output).all()
    assert (prompts.corrupted[rows, after] == prompts.replacement).all()
    assert (prompts.clean[rows, after - 1] == prompts.trigger).all() and (after >= 2).all()
    assert ((prompts.clean == prompts.trigger[:, None]).sum(1) == 2).all()  # q twice, nowhere else
    assert torch.equal(induction_prompts(model, 8, 20, seed=1).clean, prompts.clean)
    with pytest.raises(DataError):
        induction_prompts(model, length=4)


@pytest.mark.parametrize("normalization", ["LN", "RMS", None])
def test_the_per_head_split_sums_back_to_the_logits(normalization):
    model = random_model(normalization)  # LayerNorm weights and biases drawn: the final LN is not trivial
    prompts = induction_prompts(model, n_prompts=4, length=16)
    split = direct_logit_split(model, (1, 2), prompts.clean)
    assert isinstance(split, HeadLogitSplit)
    assert split.labels[:8] == tuple(f"L{layer}H{head}" for layer in range(2) for head in range(4))
    assert split.labels[-1] == "unembed_bias" and split.parts.shape == (len(split.labels), 4, 50)
    torch.testing.assert_close(split.parts.sum(0), split.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(split.head_logits + split.rest_logits, split.logits, rtol=1e-4, atol=1e-4)
    differences = split.differences(prompts)
    assert differences["head"] + differences["rest"] == pytest.approx(differences["logits"], abs=1e-4)


def test_the_split_of_a_shipped_model_with_a_feed_forward_layer_sums_back():
    model = load_pretrained("amt", "cpu")
    prompts = induction_prompts(model, n_prompts=4, triggers=pretrained_task("amt").shared_triggers)
    split = direct_logit_split(model, (1, 0), prompts.clean)
    assert "1_mlp_out" in split.labels
    torch.testing.assert_close(split.parts.sum(0), split.logits, rtol=1e-4, atol=1e-4)


def test_patching_clean_into_clean_changes_nothing():
    model = random_model()
    prompts = induction_prompts(model, n_prompts=4, length=16)
    logits, cache = model.run_with_cache(prompts.clean)
    clean = logit_difference(logits, prompts.output, prompts.replacement).mean().item()

    def metric(x: torch.Tensor) -> torch.Tensor:
        return logit_difference(x, prompts.output, prompts.replacement).mean()

    for all_positions in (False, True):
        patched = patch_head_metric(model, (1, 3), prompts.clean, cache, metric, all_positions)
        assert patched == pytest.approx(clean, abs=1e-6)


def test_an_untrained_model_has_no_gap_to_divide_by_and_its_fractions_are_nan():
    """No answer without its evidence: on an untrained model the clean and corrupted prompts
    differ by noise, so patch_head flags the gap and gives NaN, not fractions like 3.48."""
    model = random_model()
    with pytest.warns(RuntimeWarning, match="restored fractions are NaN"):
        result = patch_head(model, (1, 0), induction_prompts(model, n_prompts=32, length=16))
    assert result.head == (1, 0) and set(result.to_dict()) >= {"restored_last", "restored_all", "gap"}
    assert not result.gap.measurable
    assert abs(result.gap.gap) <= max(3 * result.gap.standard_error, 0.1 * result.gap.scale)
    assert math.isnan(result.restored_last) and math.isnan(result.restored_all)
    assert result.to_dict()["gap"]["measurable"] is False


@pytest.mark.parametrize(
    "clean, corrupted, measurable",
    [
        ([1.0, 1.2, 0.8, 1.1], [0.0, 0.1, -0.1, 0.05], True),  # a gap of ~1, standard error ~0.1
        ([1.0, -1.0, 1.1, -0.9], [0.0, 0.1, -0.1, 0.05], False),  # mean gap ~0, within noise
        ([5.01, 5.02, 5.01, 5.02], [5.0, 5.01, 5.0, 5.01], False),  # significant but 0.2% of the scale
        ([3.0], [3.0], False),  # one prompt: nothing to divide
        ([3.0], [1.0], True),
    ],
)
def test_the_gap_is_measurable_only_above_noise_and_rounding(clean, corrupted, measurable):
    gap = patching_gap(torch.tensor(clean), torch.tensor(corrupted))
    assert gap.measurable is measurable
    restored = gap.restored(torch.tensor(gap.clean))
    assert restored.isnan().item() is not measurable
    if measurable:
        assert restored.item() == pytest.approx(1.0) and gap.restored(torch.tensor(gap.corrupted)).item() == 0.0


def test_the_hand_written_induction_head_carries_the_prediction_and_restores_it():
    model = ideal_circuit_model()
    prompts = induction_prompts(model, n_prompts=16, length=24)
    differences = direct_logit_split(model, INDUCTION, prompts.clean).differences(prompts)
    assert differences["logits"] > 5 and differences["head"] > 0.9 * differences["logits"]
    result = patch_head(model, INDUCTION, prompts)
    assert result.gap.clean > 5 > -5 > result.gap.corrupted and result.gap.measurable
    assert result.restored_last == pytest.approx(1.0, abs=0.05)
    assert patch_head(model, (1, 0), prompts).restored_last == pytest.approx(0.0, abs=0.05)


def test_on_the_general_shipped_model_its_induction_head_restores_the_output():
    model = load_pretrained("general", "cpu")
    result = patch_head(model, (1, 0), induction_prompts(model, n_prompts=16))
    assert result.restored_last == pytest.approx(1.0, abs=0.05)
