"""The path decomposition of the logits (anymodel/paths.py): exact parts sum to the logits, the
routes through W_F are what the weights say, estimated parts are labelled and still sum."""

from __future__ import annotations

import pytest
import torch

from induction_bigram.anymodel.paths import BIASES, INTERACTION, TOKEN, _normalise, path_decomposition
from induction_bigram.errors import DataError, ModelShapeError
from induction_bigram.incontext.decompose import decompose_logits, global_logits
from induction_bigram.model import get_paper_matrix, load_weights, portable_state_dict
from induction_bigram.pretrained import available, load_pretrained
from tests.anymodel.builders import plain_model
from tests.numerics import assert_float32_close


def tokens_for(model, batch: int = 4, length: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.cfg.d_vocab, (batch, min(length, model.cfg.n_ctx)), generator=g)


@pytest.fixture(scope="module")
def amt():
    return load_pretrained("amt", "cpu")


@pytest.mark.parametrize("name", available())
def test_exact_parts_of_every_shipped_model_sum_to_the_logits(name):
    model = load_pretrained(name, "cpu")
    paths = path_decomposition(model, tokens_for(model), induction_head=(1, 0))
    assert paths.exact
    assert paths.sources[:2] == (TOKEN, "position") and BIASES in paths.sources and INTERACTION not in paths.sources
    assert (paths.parts.sum((0, 1)) - paths.logits).abs().max() < 1e-4


def test_the_routes_through_W_F_are_what_the_weights_say(amt):
    """Analytic oracle: the induction head's path through the linear FFN is its output times
    W_F then W_U; the global total is the current token's embedding through (I + W_F)."""
    tokens = tokens_for(amt)
    paths = path_decomposition(amt, tokens, induction_head=(1, 0))
    _, cache = amt.run_with_cache(tokens)
    head_out = cache["blocks.1.hook_attn_out"][:, -1]
    W_F, W_U = get_paper_matrix(amt, "W_F"), amt.unembed.W_U
    assert_float32_close(paths.route("L1H0", "mlp"), head_out @ W_F.T @ W_U, "head through W_F")
    assert_float32_close(paths.route("L1H0", "direct"), head_out @ W_U, "head direct")
    assert_float32_close(paths.in_context, head_out @ (torch.eye(W_F.shape[0]) + W_F.T) @ W_U, "in-context")
    expected_global = global_logits(amt)[tokens[:, -1]] - amt.unembed.b_U
    assert_float32_close(paths.global_, expected_global, "global")


def test_the_component_view_is_the_direct_route_plus_each_source_through_W_F(amt):
    """The older split by component (incontext/decompose.py) reads the same model: its
    ``in_context`` part is the induction head's direct route, its ``global`` part (the FFN
    output) is every source's route through W_F."""
    tokens = tokens_for(amt)
    paths = path_decomposition(amt, tokens, induction_head=(1, 0))
    components = decompose_logits(amt, tokens).at(torch.full((len(tokens),), tokens.shape[1] - 1))
    assert_float32_close(components.in_context[:, 0], paths.route("L1H0", "direct"), "in_context component")
    assert_float32_close(components["global"][:, 0], paths.parts[:, 1].sum(0), "FFN component")


def test_paths_at_chosen_positions_and_their_table(amt):
    tokens = tokens_for(amt, length=20)
    positions = torch.tensor([3, 19, 7, 0])
    paths = path_decomposition(amt, tokens, positions=positions, induction_head=(1, 0))
    assert_float32_close(paths.logits, amt(tokens)[torch.arange(4), positions], "logits at the positions")
    a, b = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])
    table = paths.table(a, b)
    assert {row["route"] for row in table} == {"direct", "mlp"} and all(row["exact"] for row in table)
    total = sum(row["mean_difference"] for row in table)
    rows = torch.arange(4)
    assert total == pytest.approx((paths.logits[rows, a] - paths.logits[rows, b]).double().mean().item(), abs=1e-4)


@pytest.mark.parametrize("normalization", [None, "LN", "RMS"])
@pytest.mark.parametrize("act_fn", ["relu", "gelu"])
def test_estimated_parts_are_labelled_and_still_sum_to_the_logits(normalization, act_fn):
    model = plain_model(normalization, act_fn=act_fn).eval()
    paths = path_decomposition(model, tokens_for(model, length=20), induction_head=(1, 2))
    assert not paths.exact and INTERACTION in paths.sources
    zero, one = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    assert not any(row["exact"] for row in paths.table(zero, one) if row["route"] == "mlp")
    assert_float32_close(paths.parts.sum((0, 1)), paths.logits, "estimated parts plus interaction")
    assert paths.total("L1H2").shape == paths.logits.shape


@pytest.mark.parametrize("normalization", ["LN", "RMS"])
def test_the_mlp_input_is_normalised_as_the_model_does(normalization):
    """The estimate recomputes each MLP's LayerNorm: on the cached stream it gives the cached MLP output."""
    model = plain_model(normalization, act_fn="gelu").eval()
    _, cache = model.run_with_cache(tokens_for(model, length=20))
    for layer in range(model.cfg.n_layers):
        block = model.blocks[layer]
        recomputed = block.mlp(_normalise(model, block.ln2, cache[f"blocks.{layer}.hook_resid_mid"]))
        assert_float32_close(recomputed, cache[f"blocks.{layer}.hook_mlp_out"], f"MLP {layer}")


def test_a_relu_mlp_that_never_clips_is_estimated_as_its_exact_shares():
    """Oracle: a ReLU whose pre-activations are all positive is affine on these inputs, so the
    path-patching estimate of each source's share is the exact one and nothing is left over."""
    model = plain_model(None, act_fn="relu").eval()
    state = portable_state_dict(model)
    state["blocks.0.mlp.W_out"].zero_()  # so the last MLP reads a stream of order 1
    state["blocks.1.mlp.b_in"].fill_(100.0)
    load_weights(model, state)
    tokens = tokens_for(model, length=20)
    paths = path_decomposition(model, tokens, induction_head=(1, 2))
    assert paths.total(INTERACTION).abs().max() < 1e-3 * paths.logits.abs().max()
    _, cache = model.run_with_cache(tokens)
    last_mlp = model.blocks[1].mlp
    head = cache["blocks.1.attn.hook_z"][:, -1, 2] @ model.blocks[1].attn.W_O[2]
    exact_share = (last_mlp(head[None]) - last_mlp(torch.zeros_like(head)[None]))[0] @ model.unembed.W_U
    # the estimate subtracts two MLP outputs that both carry the large constant: float32 error at its size
    rounding = 64 * torch.finfo(torch.float32).eps * paths.total(BIASES).abs().max()
    assert (paths.route("L1H2", "mlp") - exact_share).abs().max() < rounding


def test_bad_arguments_are_named(amt):
    tokens = tokens_for(amt, length=10)
    with pytest.raises(DataError, match="positions"):
        path_decomposition(amt, tokens, positions=torch.tensor([10, 0, 0, 0]))
    with pytest.raises(ModelShapeError, match="no head"):
        path_decomposition(amt, tokens, induction_head=(2, 0))
    with pytest.raises(ModelShapeError, match="induction_head="):
        path_decomposition(amt, tokens).in_context
    with pytest.raises(KeyError, match="L5H0"):
        path_decomposition(amt, tokens)["L5H0"]
