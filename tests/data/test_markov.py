"""The in-context Markov chain task (induction_bigram/data/markov.py, docs/THEORY.md section 9.1)."""

import pytest
import torch

from induction_bigram.config.markov import MarkovTaskConfig
from induction_bigram.data.markov import MarkovTask, log_gamma_sample
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import ConfigError


def _task(corpus: str = "tinyshakespeare", alpha: float = 1.0, seq_len: int = 64) -> MarkovTask:
    return MarkovTask.from_config(MarkovTaskConfig(corpus=corpus, seq_len=seq_len, alpha=alpha))


def test_each_row_is_a_distribution_on_the_corpus_bigrams_support_and_the_chain_stays_on_it():
    task = _task()
    batch = task.sample(16, torch.Generator().manual_seed(0))
    P = batch.transitions
    assert batch.tokens.shape == batch.targets.shape == (16, 64)
    assert torch.equal(batch.tokens[:, 1:], batch.targets[:, :-1])
    assert torch.allclose(P.sum(-1), torch.ones(16, 65), atol=1e-5)
    assert not ((P > 0) & (task.bigram == 0)).any(), "mass on a transition the corpus never shows"
    steps = P[torch.arange(16)[:, None], batch.tokens, batch.targets]
    assert (steps > 0).all()
    assert ((P > 0).sum(-1) > 1).float().mean() > 0.5, "rows are not point masses"


def test_the_same_generator_state_gives_the_same_batch_and_another_seed_another():
    task = _task()
    a, b = (task.sample(8, torch.Generator().manual_seed(3)) for _ in range(2))
    c = task.sample(8, torch.Generator().manual_seed(4))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.transitions, b.transitions)
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize("alpha", [0.5, 4.0])
def test_the_rows_have_the_dirichlet_mean_and_variance(alpha):
    """E P(j | i) = pi_b(j | i) and Var P(j | i) = pi_b (1 - pi_b) / (alpha + 1)."""
    task = _task("zipf:6:1.0:0", alpha)
    P = task.transitions(20_000, torch.Generator().manual_seed(1)).double()
    pi = task.bigram
    assert torch.allclose(P.mean(0), pi, atol=0.01)
    assert torch.allclose(P.var(0), pi * (1 - pi) / (alpha + 1), atol=0.01)


def test_the_first_token_follows_the_unigram():
    task = _task("zipf:6:1.0:0", seq_len=2)
    first = task.sample(20_000, torch.Generator().manual_seed(2)).tokens[:, 0]
    assert torch.allclose(torch.bincount(first, minlength=6) / 20_000, task.unigram.float(), atol=0.015)


@pytest.mark.parametrize("a", [1e-3, 0.3, 1.0, 5.0])
def test_gamma_draws_have_mean_and_variance_a(a):
    g = log_gamma_sample(torch.full((100_000,), a), torch.Generator().manual_seed(0)).exp()
    assert g.mean().item() == pytest.approx(a, rel=0.05)
    assert g.var().item() == pytest.approx(a, rel=0.1)


def test_a_vanishing_concentration_gives_valid_near_point_mass_rows():
    """alpha pi = 1e-9: U^(1/a) underflows in linear space; the draws are in log space."""
    task = _task(alpha=1e-9)
    P = task.transitions(4, torch.Generator().manual_seed(0))
    assert torch.isfinite(P).all() and torch.allclose(P.sum(-1), torch.ones(4, 65), atol=1e-5)
    assert (P.max(-1).values > 0.99).float().mean() > 0.9


def test_zipf_statistics_resolve_through_the_corpus_name():
    task = _task("zipf:12:1.0:0")
    assert task.sample(2, torch.Generator().manual_seed(0)).transitions.shape == (2, 12, 12)
    assert task.stats is BigramStats.from_corpus("zipf:12:1.0:0")


@pytest.mark.parametrize("alpha", [0, 0.0, -1.0])
def test_alpha_must_be_positive(alpha):
    with pytest.raises(ConfigError, match="task.alpha"):
        MarkovTaskConfig(alpha=alpha)


def test_a_bad_batch_size_is_a_clear_error():
    with pytest.raises(ConfigError, match="batch_size"):
        _task().sample(0, torch.Generator())
