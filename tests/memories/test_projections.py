import json

import pytest
import torch

from induction_bigram import TriggerTask
from induction_bigram.anymodel.memory_scores import Projection, cosine, recall_at_1
from induction_bigram.config import ModelConfig, TaskConfig
from induction_bigram.errors import ModelShapeError
from induction_bigram.memories.projections import (
    ideal_W_K1,
    ideal_W_K2,
    ideal_W_O2,
    memory_report,
    project_W_K1,
    project_W_K2,
    project_W_O2,
)
from induction_bigram.model import (
    get_paper_matrix,
    positional_embeddings,
    set_paper_matrix,
    token_embeddings,
    unembeddings,
)
from induction_bigram.model.backend import TL4
from induction_bigram.training.metrics import evaluate
from tests.conftest import model_of, theory_model_of

TRIGGERS = torch.tensor([1, 4, 7, 9, 30])


@pytest.fixture(scope="module")
def wide_model():
    """d = 256: random embeddings are near-orthonormal, so ideal memories recall perfectly."""
    return model_of(ModelConfig(d_model=256, n_ctx=128, d_vocab=65))


def test_hand_built_memories_recall_perfectly_with_cosine_one(wide_model):
    set_paper_matrix(wide_model, "W_O2", ideal_W_O2(wide_model))
    set_paper_matrix(wide_model, "W_K2", ideal_W_K2(wide_model, TRIGGERS))
    set_paper_matrix(wide_model, "W_K1", ideal_W_K1(wide_model))
    report = memory_report(wide_model, TRIGGERS)
    for name in ("W_O2", "W_K2", "W_K1"):
        assert report[name].recall == 1.0, name
        assert report[name].cosine == pytest.approx(1.0, abs=1e-5), name
        assert report[name].margin > 3, name
    assert report["W_K2"].recalls["recall_vocab"] == 1.0
    assert report["W_K1"].recalls["recall_first64"] == 1.0
    assert report["W_K1"].recalls["recall_reference"] == 1.0


def test_random_matrices_score_near_chance(wide_model):
    g = torch.Generator().manual_seed(0)
    for name in ("W_O2", "W_K2", "W_K1"):
        set_paper_matrix(wide_model, name, torch.randn(256, 256, generator=g))
    report = memory_report(wide_model, None)
    assert report["W_O2"].recall < 0.1  # chance 1/65
    assert report["W_K2"].recall < 0.1
    assert report["W_K1"].recall < 0.2  # chance ~ H_n / n over causal keys
    assert abs(report["W_O2"].cosine) < 0.05 and abs(report["W_K1"].cosine) < 0.05


def test_projections_match_a_slow_reference_in_the_paper_convention():
    model = model_of(ModelConfig(d_model=8, n_ctx=6, d_vocab=5))
    g = torch.Generator().manual_seed(3)
    for name in ("W_O2", "W_K2", "W_K1"):
        set_paper_matrix(model, name, torch.randn(8, 8, generator=g))
    E, U, P = token_embeddings(model), unembeddings(model), positional_embeddings(model)
    W = {n: get_paper_matrix(model, n) for n in ("W_K1", "W_K2", "W_V1", "W_O1", "W_V2", "W_O2")}
    phi1 = W["W_O1"] @ W["W_V1"]
    for i in range(5):
        for j in range(5):
            # column vectors, left-multiplied, exactly as docs/THEORY.md section 3 writes them
            assert project_W_O2(model).coefficients[i, j] == pytest.approx(
                float(U[i] @ W["W_O2"] @ W["W_V2"] @ E[j]), abs=1e-4
            )
            assert project_W_K2(model).coefficients[i, j] == pytest.approx(
                float(E[i] @ W["W_K2"] @ phi1 @ E[j]), abs=1e-4
            )
    k1 = project_W_K1(model)
    for t in range(1, 6):
        for s in range(6):
            assert k1.coefficients[t - 1, s] == pytest.approx(float(P[t] @ W["W_K1"] @ P[s]), abs=1e-4)


def test_cosine_is_scale_free_and_signed():
    a = torch.randn(4, 4)
    assert cosine(a, 3 * a) == pytest.approx(1.0)
    assert cosine(a, -a) == pytest.approx(-1.0)
    assert cosine(a, torch.zeros(4, 4)) == 0.0


def test_report_prints_and_serialises(wide_model):
    report = memory_report(wide_model, TRIGGERS)
    text = str(report)
    assert "W_O2" in text and "first64" in text
    data = report.to_dict()
    assert set(data) == {"W_O2", "W_K2", "W_K1"}
    assert {"recall", "recall_causal", "recall_first64", "margin", "cosine", "convention"} <= set(data["W_K1"])
    assert "convention" not in report.to_dict(with_convention=False)["W_O2"]


def test_early_positions_are_scored_under_their_count(wide_model):
    set_paper_matrix(wide_model, "W_K1", ideal_W_K1(wide_model, 16))  # only t < 16 is stored
    recalls = memory_report(wide_model, TRIGGERS, first_positions=16)["W_K1"].recalls
    assert "recall_first64" not in recalls
    assert recalls["recall_first16"] == 1.0 > recalls["recall_causal"]


def test_a_projection_round_trips_through_json(wide_model):
    projection = project_W_K2(wide_model, TRIGGERS)
    back = Projection.from_dict(json.loads(json.dumps(projection.to_dict())))
    for name in ("coefficients", "targets", "candidates"):
        assert torch.equal(getattr(back, name), getattr(projection, name))
    assert back.by_row and recall_at_1(back) == recall_at_1(projection)


def test_models_of_another_shape_are_refused():
    nope = model_of(ModelConfig(d_model=8, n_ctx=6, d_vocab=5, positional="nope"))
    with pytest.raises(ModelShapeError, match="2 attention layers"):
        memory_report(nope)
    rpe = model_of(ModelConfig(d_model=8, n_ctx=6, d_vocab=5, positional="rpe"))
    with pytest.raises(ModelShapeError, match="needs absolute positional embeddings"):
        project_W_K1(rpe)
    assert set(memory_report(rpe).memories) == {"W_O2", "W_K2"}  # W_K1 does not apply


@pytest.mark.skipif(TL4, reason="builds a plain TL 3 HookedTransformer (TL 4 has none)")
def test_a_plain_tl_model_of_another_shape_is_refused():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with pytest.warns(DeprecationWarning, match="HookedTransformer is deprecated"):
        two_heads = HookedTransformer(
            HookedTransformerConfig(n_layers=2, d_model=8, d_head=4, n_heads=2, d_vocab=5, n_ctx=6, attn_only=True)
        )
    with pytest.raises(ModelShapeError, match=r"1 head per layer \(has 2\), d_head = d_model \(has 4 != 8\)"):
        memory_report(two_heads)


@pytest.mark.slow
def test_theory_built_model_solves_the_task_at_the_reference_shape(stats):
    task = TriggerTask(stats, TaskConfig(seq_len=256, n_triggers=5))
    model = theory_model_of(ModelConfig(d_model=256, n_ctx=256, d_vocab=65), task.shared_triggers)
    report = memory_report(model, task.shared_triggers)
    assert all(score.recall == 1.0 for score in report.memories.values())
    assert evaluate(model, task, batch_size=512, seed=12345).in_context_accuracy >= 0.98
