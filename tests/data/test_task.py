import math

import pytest
import torch

from induction_bigram import TriggerTask
from induction_bigram.config import TaskConfig
from induction_bigram.data.task import _trigger_chain, cdf, sample_from_cdf
from induction_bigram.errors import ConfigError


def chi_square_p_value(observed: torch.Tensor, expected_probs: torch.Tensor) -> float:
    """Pearson chi-square over rows (sources), merging cells with expected count < 5.

    The p-value uses the Wilson-Hilferty normal approximation of the chi-square tail.
    """
    stat, dof = 0.0, 0
    for obs, probs in zip(observed.double(), expected_probs.double()):
        expected = probs * obs.sum()
        small = expected < 5
        obs = torch.cat([obs[~small], obs[small].sum()[None]])
        expected = torch.cat([expected[~small], expected[small].sum()[None]])
        keep = expected > 0
        stat += float(((obs[keep] - expected[keep]) ** 2 / expected[keep]).sum())
        dof += int(keep.sum()) - 1
    z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def transitions(batch, n_tokens):
    z = torch.cat([batch.tokens, batch.targets[:, -1:]], dim=1)
    src, dst = z[:, :-1], z[:, 1:]
    is_trigger = (src[..., None] == batch.triggers[:, None, :]).any(-1)
    pairs = src[~is_trigger] * n_tokens + dst[~is_trigger]
    return torch.bincount(pairs, minlength=n_tokens**2).reshape(n_tokens, n_tokens)


def test_non_trigger_transitions_follow_the_bigram(stats, generator):
    task = TriggerTask(stats, TaskConfig(seq_len=256, n_triggers=5))
    counts = transitions(task.sample(512, generator), stats.n_tokens)
    sources = counts.sum(-1).argsort(descending=True)[:12]  # enough data in each row
    assert chi_square_p_value(counts[sources], stats.bigram[sources]) > 1e-3
    # the test has power: the same counts are far from a wrong distribution
    wrong = stats.bigram[sources.roll(1)]
    assert chi_square_p_value(counts[sources], 0.5 * wrong + 0.5 * stats.bigram[sources]) < 1e-6


def test_first_token_follows_the_unigram(stats, generator):
    task = TriggerTask(stats, TaskConfig(seq_len=2, n_triggers=1))
    first = task.sample(20_000, generator).tokens[:, 0]
    counts = torch.bincount(first, minlength=stats.n_tokens)
    assert chi_square_p_value(counts[None], stats.unigram[None]) > 1e-3


@pytest.mark.parametrize("trigger_mode", ["fixed", "random"])
@pytest.mark.parametrize("output_mode", ["uniform", "bigram"])
def test_every_trigger_is_followed_by_its_output(stats, generator, trigger_mode, output_mode):
    cfg = TaskConfig(seq_len=128, n_triggers=5, trigger_mode=trigger_mode, output_mode=output_mode)
    batch = TriggerTask(stats, cfg).sample(64, generator)
    for k in range(5):
        at_trigger = batch.tokens == batch.triggers[:, k : k + 1]
        expected = batch.outputs[:, k : k + 1].expand_as(batch.targets)
        assert at_trigger.any()
        assert torch.equal(batch.targets[at_trigger], expected[at_trigger])


def test_fixed_triggers_are_the_most_frequent_tokens(stats, generator):
    batch = TriggerTask(stats, TaskConfig(n_triggers=5)).sample(4, generator)
    assert (batch.triggers == stats.most_frequent(5)).all()


def test_random_triggers_are_distinct_and_vary(stats, generator):
    batch = TriggerTask(stats, TaskConfig(n_triggers=5, trigger_mode="random")).sample(256, generator)
    assert all(len(set(row.tolist())) == 5 for row in batch.triggers)
    assert len({tuple(row.tolist()) for row in batch.triggers}) > 200


def test_no_repeat_never_maps_a_trigger_to_itself(stats, generator):
    for mode in ["uniform", "bigram"]:
        cfg = TaskConfig(seq_len=8, n_triggers=20, output_mode=mode, no_repeat=True)
        batch = TriggerTask(stats, cfg).sample(2000, generator)
        assert (batch.outputs != batch.triggers).all()


def test_bigram_outputs_follow_the_trigger_row(stats, generator):
    cfg = TaskConfig(seq_len=2, n_triggers=1, output_mode="bigram")
    outputs = TriggerTask(stats, cfg).sample(20_000, generator).outputs[:, 0]
    q = int(stats.most_frequent(1)[0])
    counts = torch.bincount(outputs, minlength=stats.n_tokens)
    assert chi_square_p_value(counts[None], stats.bigram[q][None]) > 1e-3


def test_labels_count_occurrences(stats, generator):
    batch = TriggerTask(stats, TaskConfig(seq_len=64, n_triggers=3)).sample(16, generator)
    for b in range(16):
        seen: dict[int, int] = {}
        triggers = batch.triggers[b].tolist()
        for t, token in enumerate(batch.tokens[b].tolist()):
            expected = 0
            if token in triggers:
                seen[token] = seen.get(token, 0) + 1
                expected = seen[token]
            assert batch.labels[b, t] == expected


def test_same_seed_same_batch(stats):
    task = TriggerTask(stats, TaskConfig(seq_len=32, trigger_mode="random"))
    a = task.sample(8, torch.Generator().manual_seed(7))
    b = task.sample(8, torch.Generator().manual_seed(7))
    c = task.sample(8, torch.Generator().manual_seed(8))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.outputs, b.outputs)
    assert not torch.equal(a.tokens, c.tokens)


def test_trigger_free_prefix_holds_no_trigger(stats, generator):
    task = TriggerTask(stats, TaskConfig(seq_len=32, n_triggers=5, trigger_mode="random"))
    batch = task.sample(64, generator, seq_len=96, trigger_free_prefix=64)
    prefix = batch.tokens[:, :64]
    assert not (prefix[..., None] == batch.triggers[:, None, :]).any()
    assert (batch.labels[:, :64] == 0).all()
    assert (batch.labels[:, 64:] >= 2).any()


def test_too_many_triggers_for_the_vocabulary(stats):
    with pytest.raises(ConfigError, match=r"task.n_triggers \(70\) exceeds the vocabulary \(65\)"):
        TriggerTask(stats, TaskConfig(n_triggers=70))


def test_the_chain_draws_what_inverse_cdf_sampling_draws(stats):
    """The sampler's numpy loop against sample_from_cdf step by step, ties included (u equal to
    a CDF entry, and u = 0)."""
    g = torch.Generator().manual_seed(3)
    cdf_rows = cdf(stats.bigram.float())
    batch, steps = 32, 40
    u = torch.rand(batch, steps, generator=g)
    ties = cdf_rows[torch.randint(0, stats.n_tokens, (batch,), generator=g), 7]
    u[:, ::5] = torch.where(ties < 1, ties, 0.5)[:, None]  # u is in [0, 1)
    u[0, :] = 0.0
    next_of = torch.full((batch, stats.n_tokens), -1)
    next_of[:, :3] = torch.randint(0, stats.n_tokens, (batch, 3), generator=g)
    first = torch.randint(0, stats.n_tokens, (batch,), generator=g)
    expected = [first]
    for t in range(steps):
        drawn = sample_from_cdf(cdf_rows[expected[-1]], u[:, t])
        forced = next_of.gather(1, expected[-1][:, None]).squeeze(1)
        expected.append(torch.where(forced >= 0, forced, drawn))
    assert torch.equal(_trigger_chain(first, next_of, cdf_rows, u), torch.stack(expected, 1))
