"""Memory projections of a head pair of any HookedTransformer (induction_bigram/anymodel/projections.py)."""

import pytest
import torch

from induction_bigram.anymodel import pair_memory_report, pair_projections
from induction_bigram.anymodel.projections import project_positions
from induction_bigram.errors import ModelShapeError
from induction_bigram.memories.projections import memory_projections, memory_report
from induction_bigram.model import TL4, Model
from induction_bigram.pretrained import available, load_pretrained, pretrained_task
from tests.anymodel.builders import INDUCTION, PREVIOUS_TOKEN, build, ideal_circuit_model, plain_model, random_model

OURS = ((0, 0), (1, 0))  # our models: one head per layer


@pytest.fixture(scope="module")
def shipped():
    return {name: load_pretrained(name, "cpu") for name in available()}


@pytest.mark.parametrize("name", available())
@pytest.mark.parametrize("fixed_triggers", [True, False], ids=["triggers", "vocabulary"])
def test_on_our_models_the_general_projections_are_the_specialised_ones(shipped, name, fixed_triggers):
    """The main oracle: without LayerNorm, with W_Q = I and one head per layer, reading a head
    pair's memories must give exactly memories/projections.py's numbers."""
    model = shipped[name]
    triggers = pretrained_task(name).shared_triggers if fixed_triggers else None
    specialised, general = memory_projections(model, triggers), pair_projections(model, OURS, triggers)
    assert specialised.keys() == general.keys()
    assert ("W_K1" in general) == (name != "rpe")  # relative positions: no p_t in the stream
    for key, expected in specialised.items():
        torch.testing.assert_close(general[key].coefficients, expected.coefficients, rtol=1e-6, atol=1e-6)
        assert torch.equal(general[key].targets, expected.targets)
        assert torch.equal(general[key].candidates, expected.candidates)
        assert general[key].by_row == expected.by_row
    expected_report = memory_report(model, triggers).to_dict()
    report = pair_memory_report(model, OURS, triggers).to_dict()
    assert report.keys() == expected_report.keys()
    for key, scores in expected_report.items():
        for score, value in scores.items():
            assert report[key][score] == (pytest.approx(value, rel=1e-6, abs=1e-6) if score != "convention" else value)


def test_a_random_multi_head_model_gets_every_projection_with_its_shape():
    model = random_model()
    projections = pair_projections(model, ((0, 1), (1, 3)))
    assert projections["W_O2"].coefficients.shape == (50, 50)
    assert projections["W_K2"].coefficients.shape == (50, 50)
    assert projections["W_K1"].coefficients.shape == (31, 32)
    report = pair_memory_report(model, ((0, 1), (1, 3)), triggers=torch.tensor([3, 5, 7]), n_positions=16)
    assert report["W_K2"].recalls["recall_triggers"] >= 0 and len(report["W_K1"].recalls) == 3
    assert pair_projections(model, ((0, 1), (1, 3)), n_positions=16)["W_K1"].coefficients.shape == (15, 16)
    with pytest.raises(ModelShapeError, match="earlier layer"):
        pair_projections(model, ((1, 0), (1, 3)))
    with pytest.raises(ModelShapeError, match="no head"):
        pair_projections(model, ((0, 4), (1, 3)))


def test_without_absolute_positions_W_K1_is_left_out():
    model = build(positional="rotary")
    assert set(pair_projections(model, ((0, 0), (1, 0)))) == {"W_O2", "W_K2"}
    with pytest.raises(ModelShapeError, match="absolute positional"):
        project_positions(model, (0, 0))


def _folded(model: Model, center_unembed: bool) -> Model:
    """``model`` with its LayerNorms folded by TL itself: TL 3's ``load_and_process_state_dict``
    into a plain HookedTransformer, TL 4's ``process_weights`` on a ``boot_native`` bridge."""
    folded = plain_model(model.cfg.normalization_type)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    settings = dict(fold_ln=True, center_writing_weights=True, center_unembed=center_unembed, fold_value_biases=True)
    if TL4:
        folded.load_state_dict(state, strict=True)
        folded.process_weights(**settings)
    else:
        folded.load_and_process_state_dict(state, **settings)
    return folded.eval()


@pytest.mark.parametrize("normalization", ["LN", "RMS"])
def test_the_report_is_the_same_with_and_without_folding_layer_norm(normalization):
    """section 3.8: the effective embeddings fold LayerNorm's linear part exactly as TL's
    fold_ln / center_writing_weights, and biases are left out, so folding changes nothing."""
    model = random_model(normalization)
    folded = _folded(model, center_unembed=False)
    if TL4:  # TL 4 keeps cfg's type and leaves each folded norm with weight 1 (and bias 0)
        assert all(torch.all(v == float(k.endswith("weight"))) for k, v in folded.state_dict().items() if "ln" in k)
    else:
        assert folded.cfg.normalization_type == normalization + "Pre"
    tokens = torch.randint(50, (2, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(folded(tokens), model(tokens), rtol=1e-4, atol=1e-4)  # TL's promise
    pair = ((0, 1), (1, 2))
    before, after = pair_projections(model, pair), pair_projections(folded, pair)
    for key in before:
        torch.testing.assert_close(after[key].coefficients, before[key].coefficients, rtol=1e-4, atol=1e-4)
    a, b = pair_memory_report(model, pair).to_dict(False), pair_memory_report(folded, pair).to_dict(False)
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key


def test_centering_the_unembedding_shifts_W_O2_by_a_constant_per_column():
    model = random_model()
    pair = ((0, 1), (1, 2))
    before, after = pair_projections(model, pair)["W_O2"], pair_projections(_folded(model, True), pair)["W_O2"]
    centred = lambda C: C - C.mean(0, keepdim=True)  # noqa: E731
    torch.testing.assert_close(centred(after.coefficients), centred(before.coefficients), rtol=1e-4, atol=1e-4)
    a, b = pair_memory_report(model, pair)["W_O2"], pair_memory_report(_folded(model, True), pair)["W_O2"]
    assert (b.recall, b.margin) == pytest.approx((a.recall, a.margin), rel=1e-4, abs=1e-5)


def test_the_hand_written_circuit_recalls_every_memory():
    report = pair_memory_report(ideal_circuit_model(), (PREVIOUS_TOKEN, INDUCTION))
    for name in ("W_O2", "W_K2", "W_K1"):
        assert report[name].recall == 1.0, name
        assert report[name].margin > 0, name
    assert report["W_K2"].recalls["recall_vocab"] == 1.0
    assert report["W_O2"].cosine > 0.9 and report["W_K2"].cosine > 0.9
