"""The idealised FFN (model/components/token_input.py, docs/THEORY.md section 4.2): W_F reads only w_E(z_t),
on either backend, whatever the heads write; a forward that does not start at the tokens fails
with a message; the path split sends nothing from the heads through W_F."""

from __future__ import annotations

import copy

import pytest
import torch

from induction_bigram.anymodel.paths import TOKEN, path_decomposition
from induction_bigram.config import ModelConfig
from induction_bigram.errors import ConfigError
from induction_bigram.incontext.weights_only import weight_memories
from induction_bigram.model import ffn_reads_token, get_paper_matrix, token_embeddings
from tests.conftest import model_of, randomise_trainables


def idealised(ffn_reads: str = "token"):
    cfg = ModelConfig(d_model=16, n_ctx=24, d_vocab=12, ffn="linear", ffn_reads=ffn_reads)
    return randomise_trainables(model_of(cfg), seed=3)


def tokens(batch: int = 3, length: int = 20) -> torch.Tensor:
    return torch.randint(0, 12, (batch, length), generator=torch.Generator().manual_seed(0))


def test_the_ffn_writes_W_F_of_the_token_embedding_alone():
    model = idealised()
    assert ffn_reads_token(model) and "reading only w_E(z_t)" in repr(model)
    x = tokens()
    _, cache = model.run_with_cache(x)
    expected = token_embeddings(model)[x] @ get_paper_matrix(model, "W_F").T
    torch.testing.assert_close(cache["blocks.1.hook_mlp_out"], expected)
    torch.testing.assert_close(cache["blocks.1.mlp.hook_pre"], token_embeddings(model)[x])
    # the stream-reading model with the same weights writes something else: the heads' outputs count
    stream = idealised("stream")
    stream.load_state_dict(model.state_dict())
    _, other = stream.run_with_cache(x)
    assert not torch.allclose(other["blocks.1.hook_mlp_out"], expected)


def test_patching_a_head_does_not_reach_the_ffn():
    model = idealised()
    x = tokens()
    _, clean = model.run_with_cache(x)
    with model.hooks(fwd_hooks=[("blocks.1.hook_attn_out", lambda act, hook: act * 0 + 7.0)]):
        _, patched = model.run_with_cache(x)
    torch.testing.assert_close(patched["blocks.1.hook_mlp_out"], clean["blocks.1.hook_mlp_out"])


def test_a_forward_that_skips_the_embedding_says_what_to_do():
    model = idealised()
    _, cache = model.run_with_cache(tokens())
    with pytest.raises(ConfigError, match="start_at_layer"):
        model(cache["blocks.1.hook_resid_pre"], start_at_layer=1)
    model(tokens())  # a later ordinary forward is unaffected


def test_generate_reads_the_whole_sequence_with_and_without_the_kv_cache():
    model = idealised()
    kwargs = dict(max_new_tokens=4, do_sample=False, verbose=False)
    x = tokens(1, 8)
    uncached = model.generate(x, use_past_kv_cache=False, **kwargs)
    by_hand = x
    for _ in range(4):  # greedy decoding, one whole forward pass per token
        by_hand = torch.cat([by_hand, model(by_hand)[:, -1:].argmax(-1)], 1)
    assert torch.equal(uncached, by_hand)
    if hasattr(model, "W_E") and type(model).__name__ == "HookedTransformer":  # TL 4's native model keeps no cache
        assert torch.equal(model.generate(x, use_past_kv_cache=True, **kwargs), by_hand)


def test_a_copy_reads_its_own_embedding():
    model = idealised()
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.embed.W_E.mul_(2.0) if hasattr(twin.embed, "W_E") else next(twin.embed.parameters()).mul_(2.0)
    x = tokens()
    assert not torch.allclose(twin(x), model(x))
    torch.testing.assert_close(model(x), idealised()(x))


def test_ffn_reads_token_needs_an_ffn():
    with pytest.raises(ConfigError, match="ffn_reads='token' needs a feed-forward layer"):
        ModelConfig(d_model=16, n_ctx=16, ffn="none", ffn_reads="token")
    with pytest.raises(ConfigError, match="ffn_reads"):
        ModelConfig(d_model=16, n_ctx=16, ffn="linear", ffn_reads="heads")


def test_the_path_split_sends_only_the_token_through_W_F():
    model = idealised()
    x = tokens()
    paths = path_decomposition(model, x, induction_head=(1, 0))
    assert paths.exact and (paths.parts.sum((0, 1)) - paths.logits).abs().max() < 1e-4
    for source in paths.sources:
        if source != TOKEN:
            assert paths.route(source, "mlp").abs().max() == 0, source
    W_F = get_paper_matrix(model, "W_F")
    expected = token_embeddings(model)[x[:, -1]] @ W_F.T @ model.unembed.W_U
    torch.testing.assert_close(paths.route(TOKEN, "mlp"), expected)
    assert weight_memories(model).ffn_read_out.abs().max() == 0  # layer 2's path through W_F, from the weights
