"""The ARENA induction-head habits on this package's models, on either TransformerLens (issue 31):
each works as on TL 3, or is refused with the reason and what to do instead."""

from __future__ import annotations

import pytest
import torch

import induction_bigram as ib
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.model import build_standard_model
from induction_bigram.model.backend import TL4
from tests.numerics import assert_float32_close

TEXT = "First Citizen: Before we proceed any further, hear me speak. First Citizen"


@pytest.fixture(scope="module")
def general():
    return ib.load_pretrained("general", "cpu")


def test_prepend_bos_is_refused_saying_what_to_do(general):
    tokens = general.to_tokens("abcabc", prepend_bos=True)  # ARENA's repeated-token recipe
    with pytest.raises(ib.errors.DataError, match="trained without a BOS: tokenize with prepend_bos=False"):
        general(tokens)
    assert general(general.to_tokens("abcabc", prepend_bos=False)).shape == (1, 6, 65)


def _multi_head():
    cfg = StandardModelConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=96)
    return build_standard_model(cfg, "cpu", vocab="".join(sorted(set(TEXT))))


@pytest.mark.parametrize(
    "build", [lambda: ib.load_pretrained("general", "cpu"), _multi_head], ids=["general", "4 heads"]
)
def test_per_head_results_work_as_on_tl3(build):
    model = build()
    tokens = model.to_tokens(TEXT[: model.cfg.n_ctx])  # a longer prompt is refused (it would be cut)
    plain, plain_cache = model.run_with_cache(tokens)
    model.set_use_attn_result(True)
    try:
        logits, cache = model.run_with_cache(tokens)
        for layer in range(model.cfg.n_layers):
            result = cache["result", layer]  # [batch, pos, head, d_model]: z_h W_O^h
            assert result.shape == (1, tokens.shape[1], model.cfg.n_heads, model.cfg.d_model)
            expected = torch.einsum("bphd,hdm->bphm", cache["z", layer], model.blocks[layer].attn.W_O)
            assert_float32_close(result, expected, "hook_result")
            assert_float32_close(result.sum(-2) + model.blocks[layer].attn.b_O, cache["attn_out", layer], "sum")
        assert_float32_close(logits, plain, "logits")
        assert_float32_close(cache.stack_head_results(), plain_cache.stack_head_results(), "stack")
        last = model.cfg.n_layers - 1
        on_result = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{last}.attn.hook_result", lambda x, hook: 0 * x)])
        on_z = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{last}.attn.hook_z", lambda x, hook: 0 * x)])
        assert_float32_close(on_result, on_z, "ablated")  # the ablation takes effect
    finally:
        model.set_use_attn_result(False)
    assert torch.equal(model(tokens), plain)


@pytest.mark.skipif(not TL4, reason="TL 3 runs a KV cache (tests/test_transformerlens_workflow.py)")
def test_a_kv_cache_is_refused_with_the_reason_and_the_alternative_on_tl4(general):
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    cache = TransformerLensKeyValueCache.init_cache(general.cfg, general.cfg.device, 1)
    with pytest.raises(ib.errors.ConfigError, match=r"keeps no keys and values.*generate\(use_past_kv_cache=True\)"):
        general(general.to_tokens("First"), past_kv_cache=cache)
    out = general.generate("First", max_new_tokens=4, use_past_kv_cache=True, do_sample=False, verbose=False)
    assert len(out) == len("First") + 4


def test_hook_names_and_incl_mid_are_as_the_readme_says(general):
    """docs/transformerlens-versions.md: inside a hook, ``hook.name`` is TL 4's internal name;
    ``accumulated_resid(incl_mid=True)`` needs ``hook_resid_mid``, which attention-only models lack."""
    names = []
    general.run_with_hooks(
        general.to_tokens("First"), fwd_hooks=[("blocks.1.attn.hook_z", lambda z, hook: names.append(hook.name))]
    )
    assert names == ["blocks.1.attn.o.hook_in" if TL4 else "blocks.1.attn.hook_z"]
    _, cache = general.run_with_cache(general.to_tokens("First"))
    assert cache.accumulated_resid().shape[0] == 3
    with pytest.raises(KeyError, match="hook_resid_mid"):
        cache.accumulated_resid(incl_mid=True)


def test_the_head_pair_display_shows_no_k_composition_as_it_does_not_tell_a_circuit_from_shuffled_weights(general):
    """TL's K-composition of the real circuit (general: L0H0 -> L1H0) is within 1.5x of the same
    weights shuffled, both near 1/sqrt(d): the printed pair leaves it out (anymodel/heads.py)."""
    pair = ib.find_head_pairs(general, top=1).best
    assert (pair.previous_token, pair.induction) == ((0, 0), (1, 0)) and "K-composition" not in str(pair)
    shuffled = ib.load_pretrained("general", "cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in shuffled.parameters():
            if weight.requires_grad:  # the trained matrices, each one's entries permuted
                weight.copy_(weight.flatten()[torch.randperm(weight.numel(), generator=g)].view_as(weight))
    trained = general.all_composition_scores("K")[0, 0, 1, 0].item()
    baseline = shuffled.all_composition_scores("K")[0, 0, 1, 0].item()
    assert baseline < trained < 1.5 * baseline and abs(baseline - general.cfg.d_model**-0.5) < 0.01
