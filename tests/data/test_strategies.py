"""The reference strategies (induction_bigram/data/strategies.py, docs/THEORY.md section 9.2)."""

import pytest
import torch

from induction_bigram.config import TaskConfig
from induction_bigram.config.markov import MarkovTaskConfig
from induction_bigram.data.markov import MarkovTask
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.strategies import (
    Bayes,
    InContextBigram,
    InContextCopy,
    kl_divergence,
    markov_strategies,
    token_losses,
    transition_counts,
    trigger_strategies,
)
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def shakespeare_batch():
    task = MarkovTask(BigramStats.default(), MarkovTaskConfig(seq_len=128, alpha=1.0))
    return task.sample(256, torch.Generator().manual_seed(0))


def test_every_strategy_gives_distributions_at_every_position(stats, shakespeare_batch):
    tokens = shakespeare_batch.tokens[:8]
    for name, strategy in markov_strategies(stats, 1.0).items():
        log_probs = strategy(tokens)
        assert log_probs.shape == (8, 128, 65), name
        assert torch.allclose(log_probs.logsumexp(-1), torch.zeros(8, 128), atol=1e-5), name


def test_transition_counts_count_the_earlier_transitions_from_the_current_token():
    tokens = torch.randint(0, 5, (3, 40), generator=torch.Generator().manual_seed(0))
    counts = transition_counts(tokens, 5)
    for b in range(3):
        for t in range(40):
            expected = torch.zeros(5)
            for s in range(t):
                if tokens[b, s] == tokens[b, t]:
                    expected[tokens[b, s + 1]] += 1
            assert torch.equal(counts[b, t], expected)


def test_bayes_is_the_global_bigram_where_the_context_has_no_transition_from_q(stats, shakespeare_batch):
    strategies = markov_strategies(stats, 4.0)
    tokens = shakespeare_batch.tokens[:16]
    unseen = transition_counts(tokens, 65).sum(-1) == 0
    assert unseen[:, 0].all() and unseen.sum() > 16
    bayes, bigram = strategies["bayes"](tokens), strategies["bigram"](tokens)
    assert torch.allclose(bayes[unseen].exp(), bigram[unseen].exp(), atol=1e-6)


def test_bayes_tends_to_the_in_context_counts_as_n_q_outgrows_alpha(stats):
    """p_Bayes - p_counts = alpha / (n_q + alpha) (pi_b(o | q) - n_qo / n_q), exactly."""
    alpha = 2.0
    tokens = stats.encode("the the that then this thee " * 8)[None]
    counts = transition_counts(tokens, 65)
    n_q = counts.sum(-1, keepdim=True)
    seen = n_q[..., 0] > 0
    bayes = Bayes(stats, alpha)(tokens).exp()
    in_context = InContextBigram(65)(tokens).exp()
    pi = stats.bigram.float()[tokens]
    gap = alpha / (n_q + alpha) * (pi - counts / n_q.clamp_min(1))
    assert torch.allclose((bayes - in_context)[seen], gap[seen], atol=1e-6)
    late = n_q[0, :, 0] >= 40
    assert late.any() and (bayes - in_context)[0, late].abs().max() <= alpha / (40 + alpha)


def test_bayes_has_the_lowest_expected_loss_on_the_chains(stats, shakespeare_batch):
    losses = {
        name: float(token_losses(strategy(shakespeare_batch.tokens), shakespeare_batch.targets).mean())
        for name, strategy in markov_strategies(stats, 1.0).items()
    }
    others = {name: loss for name, loss in losses.items() if name != "bayes"}
    assert losses["bayes"] < min(others.values()), losses
    # the one-seed probe of issue 29: Bayes 1.329 nats against the global bigram's 2.458
    assert losses["bayes"] == pytest.approx(1.33, abs=0.05) and losses["bigram"] == pytest.approx(2.46, abs=0.05)
    assert losses["in_context_bigram"] == float("inf"), "unseen transitions have probability 0 under counts"


def test_the_mean_kl_from_bayes_is_the_excess_loss_over_bayes(stats, shakespeare_batch):
    """On data from the Bayes predictive's own model, E[loss_m - loss_Bayes] = E[KL(Bayes || m)]."""
    strategies = markov_strategies(stats, 1.0)
    tokens, targets = shakespeare_batch.tokens, shakespeare_batch.targets
    bayes, unigram = strategies["bayes"](tokens), strategies["unigram"](tokens)
    excess = (token_losses(unigram, targets) - token_losses(bayes, targets)).mean()
    assert float(excess) == pytest.approx(float(kl_divergence(bayes, unigram).mean()), rel=0.03)


def test_the_kl_divergence_is_zero_on_itself_and_finite_where_the_reference_has_zeros(stats, shakespeare_batch):
    tokens = shakespeare_batch.tokens[:4]
    strategies = markov_strategies(stats, 1.0)
    counts, uniform = strategies["in_context_bigram"](tokens), strategies["uniform"](tokens)
    assert torch.isinf(counts).any()
    assert torch.allclose(kl_divergence(counts, counts), torch.zeros(4, 128), atol=1e-6)
    kl = kl_divergence(counts, uniform)
    assert torch.isfinite(kl).all() and (kl >= -1e-6).all()


def test_bayes_refuses_a_non_positive_alpha(stats):
    with pytest.raises(ConfigError, match="alpha"):
        Bayes(stats, 0.0)


# -- the trigger task ---------------------------------------------------------------------------


def test_the_copy_strategy_copies_after_a_trigger_seen_before_and_is_the_bigram_elsewhere(stats):
    """Computed here position by position: the latest earlier occurrence of a trigger, and its successor."""
    task = TriggerTask(stats, TaskConfig(seq_len=48, n_triggers=3, trigger_mode="random", output_mode="bigram"))
    batch = task.sample(6, torch.Generator().manual_seed(0))
    log_probs = InContextCopy(stats, batch.triggers)(batch.tokens)
    bigram = stats.bigram.float().log()
    copied = 0
    for b in range(6):
        row, triggers = batch.tokens[b].tolist(), set(batch.triggers[b].tolist())
        for t, token in enumerate(row):
            earlier = [s for s in range(t) if row[s] == token]
            if token in triggers and earlier:
                expected = torch.full((65,), float("-inf"))
                expected[row[earlier[-1] + 1]] = 0.0
                copied += 1
            else:
                expected = bigram[token]
            assert torch.equal(log_probs[b, t], expected), (b, t)
    assert copied == int(batch.in_context.sum()), "a copy exactly where the task's target is in context"


def test_on_the_task_with_bigram_outputs_the_copy_strategy_has_the_lowest_loss(stats):
    """There it is the task's own predictor (the triggers known): the copied output is the target."""
    task = TriggerTask(stats, TaskConfig(seq_len=64, n_triggers=5, output_mode="bigram"))
    batch = task.sample(64, torch.Generator().manual_seed(1))
    strategies = trigger_strategies(stats, task.shared_triggers)
    assert list(strategies) == ["uniform", "unigram", "bigram", "in_context_copy"]
    losses = {name: float(token_losses(s(batch.tokens), batch.targets).mean()) for name, s in strategies.items()}
    assert losses["in_context_copy"] < min(v for k, v in losses.items() if k != "in_context_copy"), losses
    copy = token_losses(strategies["in_context_copy"](batch.tokens), batch.targets)
    assert (copy[batch.in_context] == 0).all(), "the copy is always right in context"
    # with uniform outputs, a first output the corpus never shows after its trigger has probability 0
    uniform_outputs = TriggerTask(stats, TaskConfig(seq_len=64, n_triggers=5)).sample(64, torch.Generator())
    assert token_losses(strategies["in_context_copy"](uniform_outputs.tokens), uniform_outputs.targets).isinf().any()


def test_the_copy_strategy_refuses_triggers_of_another_batch(stats):
    tokens = torch.zeros(4, 8, dtype=torch.long)
    with pytest.raises(DataError, match="triggers are given for 3 sequences, the batch has 4"):
        InContextCopy(stats, torch.zeros(3, 2, dtype=torch.long))(tokens)
    with pytest.raises(DataError, match=r"triggers must have shape \[k\] or \[batch, k\]"):
        InContextCopy(stats, torch.zeros(1, 2, 2, dtype=torch.long))
