import math

import pytest
import torch

from induction_bigram.config import ModelConfig
from induction_bigram.errors import DataError, ModelShapeError
from induction_bigram.model import (
    check_tokens,
    get_paper_matrix,
    portable_state_dict,
    positional_embeddings,
    set_paper_matrix,
    swap_convention,
    tl3_parameters,
    token_embeddings,
    trainable_names,
    trainable_parameters,
    unembeddings,
)
from induction_bigram.model.access import MARKER_KEY
from induction_bigram.model.initial import initial_weights
from tests.conftest import model_of, randomise_trainables

D, N, T = 16, 11, 12


def small(**kw) -> ModelConfig:
    return ModelConfig(**{"d_model": D, "n_ctx": T, "d_vocab": N, **kw})


def paper_attention(X, W_K, W_V, W_O):
    """One layer of docs/THEORY.md section 2 with column vectors: rows of X are x_t."""
    scores = torch.einsum("bti,ij,bsj->bts", X, W_K, X) / math.sqrt(X.shape[-1])
    causal = torch.ones(X.shape[1], X.shape[1], dtype=torch.bool).tril()
    beta = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    return torch.einsum("bts,bsj->btj", beta, X) @ W_V.T @ W_O.T


def test_hooked_transformer_matches_the_paper_forward_pass():
    model = model_of(small())
    randomise_trainables(model)
    tokens = torch.randint(0, N, (3, T), generator=torch.Generator().manual_seed(1))
    X = token_embeddings(model)[tokens] + positional_embeddings(model)
    for layer in (1, 2):
        W = {k: get_paper_matrix(model, f"{k}{layer}") for k in ("W_K", "W_V", "W_O")}
        X = X + paper_attention(X, W["W_K"], W["W_V"], W["W_O"])
    expected = X @ unembeddings(model).T
    torch.testing.assert_close(model(tokens), expected, atol=1e-5, rtol=1e-5)


def test_linear_feed_forward_is_W_F_after_layer_two():
    model = model_of(small(ffn="linear"))
    randomise_trainables(model)
    tokens = torch.randint(0, N, (2, T), generator=torch.Generator().manual_seed(2))
    _, cache = model.run_with_cache(tokens)
    resid_mid = cache["blocks.1.hook_resid_mid"]
    torch.testing.assert_close(cache["blocks.1.hook_mlp_out"], resid_mid @ get_paper_matrix(model, "W_F").T)
    assert not cache["blocks.0.hook_mlp_out"].any(), "layer 1 has no feed-forward"


def test_paper_convention_of_keys_and_ov():
    model = model_of(small())
    randomise_trainables(model)
    W_K_tl = model.blocks[1].attn.W_K[0]
    assert torch.equal(get_paper_matrix(model, "W_K2"), W_K_tl.T)
    ov_tl = model.OV[0, 0].AB  # TL's W_V W_O
    phi1 = get_paper_matrix(model, "W_O1") @ get_paper_matrix(model, "W_V1")
    torch.testing.assert_close(phi1, swap_convention(ov_tl))
    x = torch.randn(D)
    torch.testing.assert_close(phi1 @ x, x @ ov_tl)  # the same linear map on a vector


def test_set_paper_matrix_inverts_get():
    model = model_of(small())
    W = torch.randn(D, D)
    set_paper_matrix(model, "W_O2", W)
    assert torch.equal(get_paper_matrix(model, "W_O2"), W)
    with pytest.raises(ModelShapeError, match="W_O2 needs shape"):
        set_paper_matrix(model, "W_O2", torch.randn(D, D + 1))
    with pytest.raises(ModelShapeError, match="layers 1..2"):
        get_paper_matrix(model, "W_K3")
    with pytest.raises(ModelShapeError, match="linear feed-forward"):
        get_paper_matrix(model, "W_F")


def test_same_seed_same_weights_and_different_seed_differs():
    a, b, c = model_of(small()), model_of(small()), model_of(small(seed=1))
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.embed.W_E, c.embed.W_E)


def test_longer_context_shares_the_first_positions():
    short, long = model_of(small()), model_of(small(n_ctx=3 * T))
    assert torch.equal(long.pos_embed.W_pos[:T], short.pos_embed.W_pos)
    assert torch.equal(long.embed.W_E, short.embed.W_E)


@pytest.mark.parametrize("positional", ["ape", "rpe", "rope", "nope"])
@pytest.mark.parametrize("ffn", ["none", "linear", "relu"])
def test_only_the_trained_tensors_require_grad(positional, ffn):
    cfg = small(positional=positional, ffn=ffn)
    model = model_of(cfg)
    trained = dict(trainable_parameters(model))
    assert set(trained) == set(trainable_names(cfg))
    assert {id(p) for p in model.parameters() if p.requires_grad} == {id(p) for p in trained.values()}
    for name, tensor in portable_state_dict(model).items():
        if name.endswith(".W_K") or name == f"blocks.{cfg.n_layers - 1}.attn.W_O":
            assert not tensor.any(), f"{name} starts at zero"


@pytest.mark.parametrize("positional", ["ape", "rpe", "rope", "nope"])
@pytest.mark.parametrize("ffn", ["none", "linear", "relu"])
def test_every_parameter_starts_at_the_one_initialisers_value(positional, ffn):
    """Either backend's model holds exactly initial_weights(cfg), by TL 3 name and layout: every
    parameter (TL 4 keeps b_U as a buffer) and nothing else but the loader marker."""
    cfg = small(positional=positional, ffn=ffn, rope_qk_bias=positional == "rope")
    weights, model = initial_weights(cfg), model_of(cfg)
    state = portable_state_dict(model)
    assert set(tl3_parameters(model)) <= set(weights) and set(state) - set(weights) == {MARKER_KEY}
    for name, value in weights.items():
        assert torch.equal(state[name], value), name


def test_frozen_matrices_have_variance_one_over_d():
    model = model_of(ModelConfig(d_model=256, n_ctx=256, d_vocab=65))
    for tensor in (model.embed.W_E, model.pos_embed.W_pos, model.unembed.W_U, model.blocks[0].attn.W_V):
        assert abs(tensor.var().item() * 256 - 1) < 0.05
    assert torch.equal(model.blocks[0].attn.W_Q[0], torch.eye(256))


def test_prompts_longer_than_the_context_are_rejected():
    for positional in ("ape", "rope"):
        model = model_of(small(positional=positional))
        with pytest.raises(DataError, match=f"length {T + 1} exceeds the context n_ctx = {T}"):
            model(torch.zeros(1, T + 1, dtype=torch.long))


def test_check_tokens_names_bad_ids():
    model = model_of(small())
    with pytest.raises(DataError, match=f"token id {N} is outside"):
        check_tokens(model, torch.tensor([[0, N]]))
    with pytest.raises(DataError, match="shape"):
        check_tokens(model, torch.tensor([0, 1]))


def test_load_weights_is_strict_but_accepts_state_dicts_without_the_marker():
    from induction_bigram.errors import CheckpointError
    from induction_bigram.model import CONFIG_BUFFERS, MARKER_KEY, load_weights

    model = randomise_trainables(model_of(small()), seed=3)
    state = {k: v for k, v in portable_state_dict(model).items() if k != MARKER_KEY}
    twin = load_weights(model_of(small()), state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in twin.state_dict().items())
    config_buffers = {k: v for k, v in model.state_dict().items() if CONFIG_BUFFERS.fullmatch(k)}
    assert load_weights(model_of(small()), state | config_buffers)  # TL 3 state dicts hold them
    del state["blocks.1.attn.W_O"]
    with pytest.raises(CheckpointError, match="missing blocks.1.attn.W_O"):
        load_weights(model_of(small()), state)
