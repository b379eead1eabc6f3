"""The hijack against Bayes (induction_bigram.markov.hijack, docs/THEORY.md section 9.4): Bayes n*
by hand and against the Bayes strategy, the designed pairs and prompts, and the measured parts."""

import dataclasses

import pytest
import torch

from induction_bigram.config.markov import markov_preset
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.data.strategies import Bayes, transition_counts
from induction_bigram.errors import DataError
from induction_bigram.markov.hijack import (
    PARTS,
    bayes_threshold,
    candidate_pairs,
    measure_hijack,
    model_thresholds,
    select_pairs,
)
from induction_bigram.model import build_standard_model


@pytest.mark.parametrize(
    "pi_g, pi_o, alpha, expected",
    [
        (0.5, 0.1, 4.0, 2),  # 1 + 0.4 < 2 <= 2 + 0.4
        (0.5, 0.1, 1.0, 1),  # every pair switches at once when alpha <= 1
        (0.3, 0.05, 64.0, 17),  # 64 x 0.25 = 16 exactly: n = 16 ties, so 17
        (0.5, 0.3, 10.0, 3),  # 10 x 0.2 = 2 up to rounding: 2 + 3 = 5 is no more than 5
    ],
)
def test_bayes_threshold_by_hand(pi_g, pi_o, alpha, expected):
    assert bayes_threshold(pi_g, pi_o, alpha) == expected
    n = expected
    assert n + alpha * pi_o > alpha * pi_g and not (n - 1) + alpha * pi_o > alpha * pi_g


def test_bayes_threshold_refuses_a_non_positive_alpha():
    with pytest.raises(DataError, match="alpha must be > 0, got 0"):
        bayes_threshold(0.5, 0.1, 0.0)


def test_candidate_pairs_are_possible_transitions_away_from_the_favourite(stats):
    pairs = candidate_pairs(stats)
    weights = [float(stats.unigram[p.trigger] * stats.bigram[p.trigger, p.output]) for p in pairs]
    assert weights == sorted(weights, reverse=True)
    bigram = stats.bigram.tolist()
    expected = {
        (q, o)
        for q, row in enumerate(bigram)
        for o, p in enumerate(row)
        if p > 0 and o != q and o != max(range(len(row)), key=row.__getitem__)
    }
    assert {(p.trigger, p.output) for p in pairs} == expected and len(pairs) == len(expected)
    for p in pairs[:50]:
        assert p.output not in (p.trigger, p.favourite) and p.pi_output > 0
        assert p.favourite == int(stats.bigram[p.trigger].argmax()) and p.pi_favourite >= p.pi_output


def test_selected_pairs_spread_bayes_n_star_over_the_counts(stats):
    candidates = candidate_pairs(stats)
    spread = select_pairs(candidates, 64.0, 6, 15)
    values = [p.bayes(64.0) for p in spread]
    assert values == [1, 4, 6, 9, 11, 14] and len({p.trigger for p in spread}) == 6
    at_one = select_pairs(candidates, 1.0, 4, 15)
    assert [p.bayes(1.0) for p in at_one] == [1, 1, 1, 1] and at_one == candidates[:4]
    assert select_pairs(candidates, 64.0, 3, 1) == []  # max_count 1 leaves no n* below it


def test_a_designed_prompt_holds_n_transitions_from_q_all_to_o_and_bayes_switches_at_n_star(stats):
    pair = select_pairs(candidate_pairs(stats), 16.0, 4, 10)[2]
    alpha, designer = 16.0, PromptDesigner(stats)
    bayes = Bayes(stats, alpha)
    for n in range(9):
        prompts = designer.sample(
            length=24,
            n_output=n,
            batch_size=3,
            generator=torch.Generator().manual_seed(n),
            trigger=torch.tensor([pair.trigger] * 3),
            output=torch.tensor([pair.output] * 3),
        )
        counts = transition_counts(prompts.tokens, stats.n_tokens)[:, -1]
        assert counts.sum(-1).tolist() == [n] * 3 and counts[:, pair.output].tolist() == [n] * 3
        log_p = bayes(prompts.tokens)[:, -1]
        switched = log_p[:, pair.output] > log_p[:, pair.favourite]
        assert switched.tolist() == [n >= pair.bayes(alpha)] * 3


def test_model_thresholds_read_the_first_positive_cell_mean():
    rows = [[-1.0, -0.5, 0.2, -0.1], [-1.0, -1.0, -1.0, -1.0], [0.3, 0.4, 0.5, 0.6]]
    assert model_thresholds(rows) == [2, None, 0]


@pytest.fixture(scope="module")
def tiny_model(stats):
    config = markov_preset("markov-test").with_vocab("".join(stats.vocab))
    model = build_standard_model(dataclasses.replace(config.model, n_ctx=16), "cpu")
    model.eval()
    return model


def test_measured_parts_are_the_models_own_logits_on_the_same_prompts(stats, tiny_model):
    pairs = select_pairs(candidate_pairs(stats), 4.0, 2, 3)
    cells = measure_hijack(tiny_model, PromptDesigner(stats), pairs, (8, 16), 3, 2, (1, 0), seed=5, chunk_size=3)
    assert list(cells) == ["8", "16"] and set(cells["8"]) == set(PARTS)
    assert all(len(rows) == len(pairs) and all(len(r) == 4 for r in rows) for rows in cells["16"].values())
    # the same prompts again (same seed, same order of draws), through the model itself
    generator, designer = torch.Generator().manual_seed(5), PromptDesigner(stats)
    q = torch.tensor([p.trigger for p in pairs]).repeat_interleave(2)
    o = torch.tensor([p.output for p in pairs]).repeat_interleave(2)
    for n in range(4):
        prompts = designer.sample(length=8, n_output=n, batch_size=4, generator=generator, trigger=q, output=o)
        with torch.no_grad():
            logits = tiny_model(prompts.tokens)[:, -1].double()
        rows = torch.arange(4)
        difference = (logits[rows, prompts.output] - logits[rows, prompts.favourite]).view(2, 2).mean(-1)
        probs = logits.softmax(-1)[rows, prompts.output].view(2, 2).mean(-1)
        measured = torch.tensor([cells["8"]["logit"][i][n] for i in range(2)], dtype=torch.float64)
        assert torch.allclose(measured, difference, atol=1e-4)
        assert torch.allclose(
            torch.tensor([cells["8"]["prob_output"][i][n] for i in range(2)]).double(), probs, atol=1e-5
        )
