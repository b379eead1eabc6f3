"""Head finding on any HookedTransformer (induction_bigram/anymodel/heads.py)."""

import pytest
import torch
from transformer_lens.head_detector import detect_head

from induction_bigram.anymodel import (
    HeadPair,
    HeadScores,
    attention_by_offset,
    find_head_pairs,
    heads,
    repeated_random_tokens,
    score_heads,
)
from induction_bigram.anymodel.heads import head_pairs
from induction_bigram.errors import DataError, NoCircuitError
from induction_bigram.model import load_weights, model_vocab, portable_state_dict
from induction_bigram.pretrained import available, load_pretrained, pretrained_task
from tests.anymodel.builders import INDUCTION, PREVIOUS_TOKEN, ideal_circuit_model, random_model


@pytest.fixture(scope="module")
def general():
    return load_pretrained("general", "cpu")


def test_the_general_shipped_model_has_its_circuit_in_layer_0_head_0_and_layer_1_head_0(general):
    scores = score_heads(general)
    search = find_head_pairs(general)
    best = search.best
    assert search.found and "induction circuit: previous-token L0H0" in str(search)
    assert (best.previous_token, best.induction) == ((0, 0), (1, 0))
    assert best.previous_token_score > 0.9 and best.induction_score > 0.9
    assert scores.best("previous_token") == (0, 0) and scores.best("induction") == (1, 0)
    assert scores.duplicate_token.max() < 0.1
    assert best.k_composition == pytest.approx(general.all_composition_scores("K")[0, 0, 1, 0].item())


@pytest.mark.parametrize("name", [n for n in available() if n != "general"])
def test_a_fixed_trigger_head_passes_the_test_on_its_triggers_only(name):
    """docs/THEORY.md section 3.7: the layer-2 head of a fixed-trigger model is no induction head on
    random tokens, but is one on sequences of its K triggers; layer 1 is a previous-token head."""
    model = load_pretrained(name, "cpu")
    triggers = pretrained_task(name).shared_triggers
    on_vocab = score_heads(model)
    on_triggers = score_heads(model, vocabulary=triggers)
    assert on_vocab.best("previous_token") == (0, 0) and on_vocab.previous_token[0, 0] > 0.5
    assert on_vocab.induction[1, 0] < 0.25
    assert on_triggers.induction[1, 0] > 0.8
    assert on_triggers.half_length == len(triggers)


def test_scores_are_tl_detect_head_scores_over_the_queries_with_a_target(general):
    tokens = repeated_random_tokens(general, n_prompts=1, half_length=20, seed=3)
    text = "".join(model_vocab(general)[i] for i in tokens[0].tolist())
    assert torch.equal(general.to_tokens(text), tokens)
    ours = score_heads(general, tokens)
    n = tokens.shape[1]
    # queries with a target: every t >= 1 (previous), the repeated half (induction, duplicate)
    for kind, tl_name, with_target in [
        ("previous_token", "previous_token_head", n - 1),
        ("induction", "induction_head", n // 2),
        ("duplicate_token", "duplicate_token_head", n // 2),
    ]:
        tl = detect_head(general, text, tl_name)
        torch.testing.assert_close(ours[kind] * with_target / n, tl, rtol=1e-5, atol=1e-6)


def test_scores_are_seeded_and_deterministic(general):
    a, b = score_heads(general, seed=1), score_heads(general, seed=1)
    assert a.to_dict() == b.to_dict()
    assert not torch.equal(repeated_random_tokens(general, seed=1), repeated_random_tokens(general, seed=2))


def test_a_random_multi_head_model_gives_typed_scores_and_pairs_across_layers():
    model = random_model()
    scores = score_heads(model, n_prompts=4)
    assert isinstance(scores, HeadScores)
    for kind in ("previous_token", "induction", "duplicate_token"):
        assert scores[kind].shape == (2, 4)
        assert ((scores[kind] >= 0) & (scores[kind] <= 1)).all()
    assert scores.k_composition.shape == (2, 4, 2, 4)
    assert "L1H3" in str(scores)
    pairs = find_head_pairs(model, n_prompts=4).candidates
    assert len(pairs) == 3 and all(isinstance(p, HeadPair) for p in pairs)
    assert all(p.previous_token[0] < p.induction[0] for p in pairs)
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)
    assert len(head_pairs(scores, top=None)) == 16  # 4 heads of layer 0 x 4 of layer 1
    assert "previous-token L0H" in str(pairs[0])  # K-composition is not printed: anymodel/heads.py


@pytest.mark.parametrize("perturb", [False, True])
def test_an_untrained_model_has_no_circuit_and_says_so(perturb):
    """No answer without its evidence: the best candidate of an untrained model stays below the
    floors (a quarter of the way from a uniform head's score to 1), and asking for the best
    circuit raises with the candidate and the floors in the message."""
    search = find_head_pairs(random_model(perturb=perturb))
    assert not search.found and search.circuits == ()
    assert search.candidates and not any(search.clears(p) for p in search.candidates)
    chance = search.scores.chance
    assert 0 < chance["induction"] < 0.1 and 0 < chance["previous_token"] < 0.15
    assert search.floors["induction"] == pytest.approx(chance["induction"] + 0.25 * (1 - chance["induction"]))
    with pytest.raises(NoCircuitError, match="no induction circuit.*best candidate previous-token L0H.*floors"):
        search.best
    data = search.to_dict()
    assert data["found"] is False and all(c["circuit"] is False for c in data["candidates"])


def test_a_fixed_trigger_circuit_is_found_on_its_triggers_only():
    """The fixed-trigger models' heads are a circuit on sequences of their triggers (where a
    uniform head scores higher, and so does the floor), not on the whole vocabulary."""
    model = load_pretrained("amt", "cpu")
    assert not find_head_pairs(model).found
    on_triggers = find_head_pairs(model, vocabulary=pretrained_task("amt").shared_triggers)
    assert on_triggers.found and (on_triggers.best.previous_token, on_triggers.best.induction) == ((0, 0), (1, 0))
    assert on_triggers.floors["induction"] > find_head_pairs(model).floors["induction"]


def test_the_uniform_chance_level_is_the_score_of_a_uniform_head():
    """Oracle: on [r r] with r of length L (no BOS), a uniform head attends 1/(t+1) to t's
    previous token; averaged over the queries t = 1..2L-1 with a target."""
    model = random_model()
    tokens = repeated_random_tokens(model, n_prompts=2, half_length=10)
    chance = score_heads(model, tokens).chance
    t = torch.arange(1, 20, dtype=torch.float64)
    assert chance["previous_token"] == pytest.approx((1 / (t + 1)).mean().item(), rel=1e-5)
    t = torch.arange(10, 20, dtype=torch.float64)
    assert chance["induction"] == pytest.approx((1 / (t + 1)).mean().item(), rel=1e-5)


def test_the_finder_picks_exactly_the_hand_written_heads():
    model = ideal_circuit_model()
    scores = score_heads(model)
    best = find_head_pairs(model).best
    assert (best.previous_token, best.induction) == (PREVIOUS_TOKEN, INDUCTION)
    assert best.previous_token_score > 0.95 and best.induction_score > 0.95
    others = scores.previous_token.clone()
    others[PREVIOUS_TOKEN] = 0
    assert others.max() < 0.3
    assert int(scores.k_composition[0, :, INDUCTION[0], INDUCTION[1]].argmax()) == PREVIOUS_TOKEN[1]


def test_a_bos_is_prepended_and_left_out_of_the_scores(monkeypatch):
    model = random_model()
    monkeypatch.setattr(heads, "bos_token", lambda model: 49)  # as for a model whose tokenizer has BOS 49
    tokens = repeated_random_tokens(model, n_prompts=2, vocabulary=torch.arange(49))
    assert (tokens[:, 0] == 49).all() and not (tokens[:, 1:] == 49).any()
    assert tokens.shape[1] == 1 + 2 * 15  # (n_ctx - BOS) // 2 distinct tokens, twice
    scores = score_heads(model, tokens)
    assert scores.half_length == 15
    assert all(((scores[k] >= 0) & (scores[k] <= 1)).all() for k in ("previous_token", "induction"))


def test_attention_by_offset_is_uniform_causal_attention_for_a_model_without_queries():
    """W_Q = 0, b_Q = 0: every score is 0, so the query at t spreads 1 / (t + 1) over s <= t."""
    model = random_model()
    state = portable_state_dict(model)
    for name in state:
        if ".attn.W_Q" in name or ".attn.b_Q" in name:
            state[name] = torch.zeros_like(state[name])
    load_weights(model, state)
    tokens = torch.randint(0, 50, (3, 20), generator=torch.Generator().manual_seed(0))
    offsets = attention_by_offset(model, tokens, max_offset=4)
    t = torch.arange(5, 20, dtype=torch.float32)  # the queries with every offset 0..4
    expected = torch.cat([(1 / (t + 1)).mean().repeat(5), ((t - 4) / (t + 1)).mean()[None]])
    assert offsets.shape == (2, 4, 6)
    torch.testing.assert_close(offsets, expected.expand(2, 4, 6), rtol=1e-5, atol=1e-6)


def test_attention_by_offset_puts_the_hand_written_heads_where_they_look():
    model = ideal_circuit_model()
    tokens = repeated_random_tokens(model, n_prompts=4)  # 16 distinct tokens, twice
    # queries 15..31: 16 of the 17 have an earlier occurrence, whose successor is 15 back
    offsets = attention_by_offset(model, tokens, max_offset=14)
    torch.testing.assert_close(offsets.sum(-1), torch.ones(2, 4))
    assert offsets[PREVIOUS_TOKEN][1] > 0.95  # t - 1
    assert offsets[INDUCTION][-1] > 0.9  # beyond offset 14


def test_attention_by_offset_names_a_prompt_too_short_for_the_offsets():
    model = random_model()
    with pytest.raises(DataError, match=r"max_offset=8 needs queries past it\), got \(1, 9\)"):
        attention_by_offset(model, torch.zeros(1, 9, dtype=torch.long))
