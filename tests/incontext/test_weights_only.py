"""The in-context logits predicted from the weights alone, and the cause decomposition
(induction_bigram.incontext.weights_only; docs/THEORY.md sections 5.3 and 5.7)."""

import math

import pytest
import torch

from induction_bigram.config import ModelConfig
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.errors import ModelShapeError
from induction_bigram.incontext.decompose import decompose_logits
from induction_bigram.incontext.measure import measure
from induction_bigram.incontext.weights_only import layer1_attention, weight_memories
from induction_bigram.model import get_paper_matrix, positional_embeddings, token_embeddings, unembeddings
from tests.conftest import model_of, randomise_trainables, theory_model_of


@pytest.fixture(scope="module")
def tiny(stats):
    """A randomised APE model with a linear FFN, and designed prompts with and without a rival."""
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, ffn="linear")), scale=0.3)
    designer = PromptDesigner(stats, stats.most_frequent(5))
    g = torch.Generator().manual_seed(0)
    batches = [designer.sample(length=T, n_output=2, batch_size=3, generator=g) for T in (12, 32)]
    batches.append(designer.sample(length=24, n_output=1, n_rival=2, batch_size=3, generator=g))
    return model, batches, measure(model, batches, chunk_size=2)


def _by_hand(model, prompts, row: int) -> dict[str, float]:
    """One prompt's weights-only prediction by explicit loops over the paper-convention matrices."""
    E, P, U = token_embeddings(model).double(), positional_embeddings(model).double(), unembeddings(model).double()
    W = {
        name: get_paper_matrix(model, name).double() for name in ("W_K1", "W_K2", "W_V1", "W_O1", "W_V2", "W_O2", "W_F")
    }
    sqrt_d = math.sqrt(model.cfg.d_model)
    z, q = prompts.tokens[row].tolist(), int(prompts.trigger[row])
    phi1 = W["W_O1"] @ W["W_V1"]
    scores = []
    for s in range(len(z)):
        beta1 = torch.tensor([float(P[s] @ W["W_K1"] @ P[r]) / sqrt_d for r in range(s + 1)]).softmax(0)
        scores.append(sum(float(beta1[r]) * float(E[q] @ W["W_K2"] @ phi1 @ E[z[r]]) / sqrt_d for r in range(s + 1)))
    beta2 = torch.tensor(scores).softmax(0)
    read = lambda j, M: sum(float(beta2[s]) * float(U[j] @ M @ W["W_O2"] @ W["W_V2"] @ E[z[s]]) for s in range(len(z)))  # noqa: E731
    o, g = int(prompts.output[row]), int(prompts.favourite[row])
    identity = torch.eye(model.cfg.d_model, dtype=torch.float64)
    return {
        "weights_ic_output": read(o, identity),
        "weights_ic_favourite": read(g, identity),
        "ffn_weights_ic_output": read(o, W["W_F"]),
        "weights_global_favourite": float(U[g] @ (identity + W["W_F"]) @ E[q]),
        "weights_attention_on_S": float((beta2 * prompts.after_trigger[row]).sum()),
    }


def test_the_batched_prediction_is_the_formula_of_section_5_7_computed_by_hand(tiny):
    model, batches, meas = tiny
    rows = [(0, 1), (1, 2), (2, 0)]  # (batch, row) pairs, one per length
    offsets = [0, 3, 6]
    for (b, row), offset in zip(rows, offsets):
        expected = _by_hand(model, batches[b], row)
        for column, value in expected.items():
            assert float(getattr(meas, column)[offset + row]) == pytest.approx(value, rel=1e-4, abs=1e-5), column


def test_the_full_value_read_out_reproduces_the_measured_in_context_logit(tiny):
    """Step (c) of the cause decomposition is layer 2's contribution exactly."""
    _, _, meas = tiny
    torch.testing.assert_close(meas.measured_values_ic_output, meas.ic_output)
    assert not torch.allclose(meas.measured_layer2_ic_output, meas.ic_output)  # the read-out model is a model


def test_layer_2_through_the_ffn_is_what_removing_its_output_takes_from_the_logits(tiny):
    """With a linear FFN, zeroing layer 2's output removes its direct term and its path through W_F."""
    model, batches, meas = tiny
    prompts = batches[0]
    rows = torch.arange(len(prompts))
    clean = decompose_logits(model, prompts.tokens).logits[:, -1]
    hook = ("blocks.1.hook_attn_out", lambda out, hook: torch.zeros_like(out))
    ablated = model.run_with_hooks(prompts.tokens, fwd_hooks=[hook])[:, -1]
    removed = (clean - ablated)[rows, prompts.output]
    torch.testing.assert_close(removed, meas.ic_output[:3] + meas.ffn_ic_output[:3], atol=1e-5, rtol=1e-4)


def test_the_path_view_adds_the_route_through_W_F_to_every_in_context_column(tiny):
    """xi^IC at path level (docs/THEORY.md section 4.1): measured, predicted and the cause
    steps each gain layer 2's path through W_F; the rest of the logits loses it."""
    _, _, meas = tiny
    view = meas.path_view()
    torch.testing.assert_close(view.ic_output, meas.ic_output + meas.ffn_ic_output)
    torch.testing.assert_close(view.weights_ic_rival, meas.weights_ic_rival + meas.ffn_weights_ic_rival, equal_nan=True)
    torch.testing.assert_close(view.measured_values_ic_output, view.ic_output)
    torch.testing.assert_close(view.ic_output + view.global_output, meas.ic_output + meas.global_output)
    # the whole logit difference, measured or predicted from the weights, does not depend on the view
    torch.testing.assert_close(view.logit_difference, meas.logit_difference)
    torch.testing.assert_close(view.weights_logit_difference, meas.weights_logit_difference)
    assert (meas.ffn_ic_output != 0).any() and (view.ffn_ic_output == 0).all()  # the tiny model has a linear FFN


def test_the_weights_only_attention_on_S_of_a_theory_built_model_is_the_measured_one(stats):
    """Oracle: written memories make the weights-only pieces the model's own up to O(1/sqrt(d))
    crosstalk; prompts whose first token is q are left out (the position-0 sink of section 3.5,
    which the weights-only score does not model)."""
    triggers = stats.most_frequent(5)
    model = theory_model_of(ModelConfig(d_model=256, n_ctx=32, d_vocab=65), triggers)
    designer = PromptDesigner(stats, triggers)
    g = torch.Generator().manual_seed(0)
    batches = [designer.sample(length=T, n_output=n, batch_size=8, generator=g) for T in (16, 32) for n in (1, 2, 4)]
    meas = measure(model, batches)
    sink = torch.cat([b.tokens[:, 0] == b.trigger for b in batches])
    gap = (meas.weights_attention_on_S - meas.attention_on_S).abs()[~sink]
    assert gap.mean() < 0.05 and gap.max() < 0.25
    assert meas.weights_attention_on_S[~sink].min() > 0.5  # the written memories do find S


def test_without_absolute_positions_the_weights_only_columns_are_nan_and_the_measured_steps_are_not(stats):
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65, positional="rpe")), scale=0.3)
    memories = weight_memories(model)
    with pytest.raises(ModelShapeError, match="position embeddings p_t"):
        layer1_attention(memories, 8)
    designer = PromptDesigner(stats, stats.most_frequent(5))
    prompts = designer.sample(length=16, n_output=2, batch_size=4, generator=torch.Generator().manual_seed(0))
    meas = measure(model, [prompts])
    assert meas.weights_ic_output.isnan().all() and meas.weights_ic_output_by_score_scale.isnan().all()
    assert meas.measured_layer1_ic_output.isfinite().all()
    torch.testing.assert_close(meas.measured_values_ic_output, meas.ic_output)
    assert (meas.ffn_ic_output == 0).all()  # no FFN: layer 2 reaches the logits directly only
