import json

import pytest
import torch

from induction_bigram.config import ModelConfig
from induction_bigram.files import dumps_json
from induction_bigram.incontext.decompose import (
    LogitDecomposition,
    decompose_cache,
    decompose_logits,
    global_logits,
    global_memory_kl,
    run_for_decomposition,
)
from induction_bigram.model import set_paper_matrix, token_embeddings, unembeddings
from tests.conftest import model_of, randomise_trainables


def randomised(cfg: ModelConfig, seed: int = 0):
    return randomise_trainables(model_of(cfg), seed, scale=0.3)


@pytest.mark.parametrize("positional, ffn", [("ape", "none"), ("ape", "linear"), ("rpe", "relu"), ("nope", "none")])
def test_parts_sum_back_to_the_logits(positional, ffn):
    model = randomised(ModelConfig(d_model=16, n_ctx=10, d_vocab=9, positional=positional, ffn=ffn))
    tokens = torch.randint(0, 9, (3, 10), generator=torch.Generator().manual_seed(1))
    parts = decompose_logits(model, tokens)
    torch.testing.assert_close(parts.parts.sum(0), parts.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts.logits, model(tokens))
    expected = {"none": (), "linear": ("global",), "relu": ("global",)}[ffn]
    middle = ("layer_1", "layer_2") if positional == "nope" else ("previous_token",)
    assert parts.names == ("direct", *middle, "in_context", *expected)


def test_in_context_part_is_the_last_head_through_the_unembedding():
    model = randomised(ModelConfig(d_model=16, n_ctx=10, d_vocab=9, ffn="linear"))
    tokens = torch.randint(0, 9, (2, 10))
    _, cache = model.run_with_cache(tokens)
    parts = decompose_logits(model, tokens)
    torch.testing.assert_close(parts.in_context, cache["circuit.hook_induction"] @ model.unembed.W_U)
    torch.testing.assert_close(parts["global"], cache["circuit.hook_global"] @ model.unembed.W_U)
    last = parts.at(torch.full((2,), 9))
    assert last.parts.shape == (4, 2, 1, 9) and torch.equal(last.logits[:, 0], parts.logits[:, -1])


def test_circuit_hook_points_are_on_the_forward_path():
    model = randomised(ModelConfig(d_model=16, n_ctx=10, d_vocab=9, ffn="linear"))
    tokens = torch.randint(0, 9, (2, 10))
    clean = model(tokens)
    for circuit_name, tl_name in [
        ("circuit.hook_induction", "blocks.1.hook_attn_out"),
        ("circuit.hook_global", "blocks.1.hook_mlp_out"),
        ("circuit.hook_previous_token", "blocks.0.hook_attn_out"),
    ]:
        ablated = model.run_with_hooks(tokens, fwd_hooks=[(circuit_name, lambda a, hook: torch.zeros_like(a))])
        reference = model.run_with_hooks(tokens, fwd_hooks=[(tl_name, lambda a, hook: torch.zeros_like(a))])
        torch.testing.assert_close(ablated, reference)
        assert not torch.allclose(ablated, clean)


def test_global_memory_probe_is_zero_for_a_stored_bigram_and_large_for_none(stats):
    """Analytic oracle: with d >= N, W_F can store log pi_b exactly; then the KL vanishes."""
    model = model_of(ModelConfig(d_model=96, n_ctx=8, d_vocab=65, ffn="linear"))
    kl_empty = global_memory_kl(model, stats)
    E, U = token_embeddings(model).double(), unembeddings(model).double()
    target = stats.bigram.clamp_min(1e-9).log()
    # want E (I + W_F^T) U^T = target:  M = E^+ target (U^T)^+
    M = torch.linalg.pinv(E) @ target @ torch.linalg.pinv(U.T)
    set_paper_matrix(model, "W_F", (M - torch.eye(96, dtype=torch.float64)).T.float())
    kl_stored = global_memory_kl(model, stats, triggers=torch.tensor([1, 43]))
    assert kl_stored[1].isnan() and kl_stored[43].isnan()
    assert kl_stored.nan_to_num().max() < 1e-3
    assert kl_empty.mean() > 1.0
    assert global_logits(model).shape == (65, 65)


def test_one_cached_pass_gives_the_decomposition_and_it_round_trips_through_json():
    model = randomised(ModelConfig(d_model=16, n_ctx=10, d_vocab=9, ffn="linear"))
    tokens = torch.randint(0, 9, (2, 10), generator=torch.Generator().manual_seed(2))
    logits, cache = run_for_decomposition(model, tokens)
    assert "blocks.1.attn.hook_pattern" in cache.cache_dict
    parts = decompose_cache(model, logits, cache)
    torch.testing.assert_close(parts.parts, decompose_logits(model, tokens).parts)
    back = LogitDecomposition.from_dict(json.loads(dumps_json(parts.to_dict())))
    assert back.names == parts.names and back.to_dict() == parts.to_dict()
    torch.testing.assert_close(back.parts, parts.parts.double())
