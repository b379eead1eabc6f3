import pytest
import torch

from induction_bigram.data.prompts import PromptDesigner, after_trigger_mask, check_prompts
from induction_bigram.errors import DataError

TRIGGERS = torch.tensor([1, 43, 58, 53, 39])  # the five most frequent characters


@pytest.fixture
def designer(stats):
    return PromptDesigner(stats, TRIGGERS)


def recount(tokens, q, vocab):
    """n_j and m_j by hand, position by position."""
    n, m = [0] * vocab, [0] * vocab
    for t, token in enumerate(tokens):
        (n if t > 0 and tokens[t - 1] == q else m)[token] += 1
    return n, m


@pytest.mark.parametrize("n_output, n_rival", [(0, 0), (1, 0), (5, 0), (2, 3)])
def test_prompts_hold_exactly_the_counts_they_report(designer, stats, generator, n_output, n_rival):
    p = designer.sample(length=40, n_output=n_output, n_rival=n_rival, batch_size=32, generator=generator)
    assert p.tokens.shape == (32, 40)
    assert (p.tokens[:, -1] == p.trigger).all()
    assert (p.n == n_output + n_rival).all()
    assert (p.count_of(p.output) == n_output).all()
    assert (p.count_of(p.rival) == (n_rival if n_rival else 0)).all()
    assert ((p.tokens == p.trigger[:, None]).sum(-1) == n_output + n_rival + 1).all(), "no stray q"
    for b in range(32):
        n, m = recount(p.tokens[b].tolist(), int(p.trigger[b]), stats.n_tokens)
        assert p.in_context_counts[b].tolist() == n and p.other_counts[b].tolist() == m


def test_outputs_are_neither_triggers_nor_the_global_favourite(designer, stats, generator):
    p = designer.sample(length=20, n_output=2, n_rival=2, batch_size=500, generator=generator)
    assert (p.favourite == stats.bigram.argmax(-1)[p.trigger]).all()
    for token in (p.output, p.rival):
        assert not torch.isin(token, TRIGGERS).any()
        assert (token != p.favourite).all() and (token != p.trigger).all()
    assert (p.output != p.rival).all()
    assert torch.isin(p.trigger, TRIGGERS).all()
    filler = p.tokens[:, :-1][~p.after_trigger[:, :-1] & (p.tokens[:, :-1] != p.trigger[:, None])]
    assert not torch.isin(filler, TRIGGERS).any()


def test_same_outputs_at_several_lengths(designer, generator):
    short = designer.sample(length=16, n_output=3, batch_size=8, generator=generator)
    long = designer.sample(
        length=64, n_output=3, batch_size=8, generator=generator, trigger=short.trigger, output=short.output
    )
    assert torch.equal(short.output, long.output) and (long.count_of(long.output) == 3).all()


def test_aligned_prompts_share_their_positions(designer, generator):
    starts = designer.evenly_spaced(4, 48)
    p = designer.sample(length=48, n_output=4, batch_size=6, generator=generator, pair_starts=starts)
    assert (p.after_trigger == p.after_trigger[:1]).all()
    assert p.after_trigger[0].nonzero().flatten().tolist() == (starts + 1).tolist()


def test_counts_that_do_not_fit_are_refused(designer, generator):
    with pytest.raises(DataError, match="5 pairs 'q x' need 11 positions, more than the prompt length 10"):
        designer.sample(length=10, n_output=5, batch_size=1, generator=generator)
    with pytest.raises(DataError, match="pair_starts"):
        designer.sample(length=10, n_output=2, batch_size=1, generator=generator, pair_starts=torch.tensor([0, 1]))


def test_a_prompt_that_does_not_end_in_its_trigger_is_refused():
    tokens = torch.tensor([[5, 1, 7, 1], [5, 1, 7, 2]])
    with pytest.raises(DataError, match="prompt 1 ends in token 2, not its trigger 1"):
        check_prompts(tokens, torch.tensor([1, 1]))
    assert after_trigger_mask(tokens, torch.tensor([1, 1]))[0].tolist() == [False, False, True, False]
