"""Designed prompts for docs/THEORY.md sections 5 and 6: counted in-context evidence against the bigram.

A designed prompt of length T ends in a trigger q. Its filler is global-bigram text that never
holds q (nor any other token in ``exclude``); into it we plant n pairs "q x", each x an
in-context output: o (n_o times) and optionally a rival b (n_b times). Every prompt carries what
the theory needs:

- S, the positions right after an earlier q (``after_trigger``), so n = |S|;
- n_j = #{t in S : z_t = j} (``in_context_counts``) and m_j = #{t not in S : z_t = j}
  (``other_counts``), over all T positions (the final q included);
- g = argmax_j pi_b(j | q), the global favourite, which o and b never equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Int
from torch import Tensor

from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import bigram_text
from induction_bigram.errors import DataError


@dataclass(frozen=True)
class DesignedPrompts:
    """A batch of designed prompts of one length, each ending in its trigger.

    Attributes:
        tokens: the prompts.
        trigger: q of each prompt (also its last token).
        output: o, the main in-context output.
        rival: b, a second in-context output, or -1 when there is none.
        favourite: g = argmax_j pi_b(j | q).
        after_trigger: S as a mask: position t holds z_t with z_(t-1) = q.
    """

    tokens: Int[Tensor, "batch pos"]
    trigger: Int[Tensor, " batch"]
    output: Int[Tensor, " batch"]
    rival: Int[Tensor, " batch"]
    favourite: Int[Tensor, " batch"]
    after_trigger: Bool[Tensor, "batch pos"]
    vocab_size: int

    @property
    def length(self) -> int:
        return self.tokens.shape[1]

    @property
    def n(self) -> Int[Tensor, " batch"]:
        """n = |S|."""
        return self.after_trigger.sum(-1)

    @property
    def in_context_counts(self) -> Int[Tensor, "batch vocab"]:
        """n_j: occurrences of j at positions in S."""
        return self._counts(self.after_trigger)

    @property
    def other_counts(self) -> Int[Tensor, "batch vocab"]:
        """m_j: occurrences of j at positions not in S (the final q included)."""
        return self._counts(~self.after_trigger)

    def count_of(self, tokens: Int[Tensor, " batch"], in_context: bool = True) -> Int[Tensor, " batch"]:
        """n_j (or m_j) of one token per prompt, e.g. ``count_of(p.output)`` = n_o."""
        counts = self.in_context_counts if in_context else self.other_counts
        return counts.gather(1, tokens.clamp_min(0)[:, None]).squeeze(1) * (tokens >= 0)

    def _counts(self, mask: Bool[Tensor, "batch pos"]) -> Int[Tensor, "batch vocab"]:
        return (F.one_hot(self.tokens, self.vocab_size) * mask[..., None]).sum(1)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def rows(self, rows: slice) -> "DesignedPrompts":
        """A sub-batch."""
        return DesignedPrompts(
            self.tokens[rows],
            self.trigger[rows],
            self.output[rows],
            self.rival[rows],
            self.favourite[rows],
            self.after_trigger[rows],
            self.vocab_size,
        )


def after_trigger_mask(tokens: Int[Tensor, "batch pos"], trigger: Int[Tensor, " batch"]) -> Bool[Tensor, "batch pos"]:
    """S: positions t whose previous token is the trigger (position 0 never is)."""
    previous_is_q = tokens[:, :-1] == trigger[:, None]
    return F.pad(previous_is_q, (1, 0), value=False)


def check_prompts(tokens: Int[Tensor, "batch pos"], trigger: Int[Tensor, " batch"]) -> None:
    """Raise :class:`DataError` unless every prompt ends in its trigger."""
    bad = tokens[:, -1] != trigger
    if bad.any():
        row = int(bad.nonzero()[0])
        raise DataError(
            f"prompt {row} ends in token {int(tokens[row, -1])}, not its trigger {int(trigger[row])}: "
            "designed prompts must end in the trigger"
        )


class PromptDesigner:
    """Draws :class:`DesignedPrompts` for a corpus.

    Args:
        stats: the corpus statistics (filler text follows pi_b).
        triggers: the pool q is drawn from: the fixed triggers the model was trained with, which
            then never appear in the filler nor as outputs; ``None`` (random-trigger models):
            every token, and only q itself is kept out of the filler.
        device: where the tensors live.
    """

    def __init__(
        self, stats: BigramStats, triggers: Int[Tensor, " k"] | None = None, device: str | torch.device = "cpu"
    ):
        self.stats = stats
        self.device = torch.device(device)
        n = stats.n_tokens
        self.pool = (torch.arange(n) if triggers is None else triggers.cpu()).to(self.device)
        self.unigram = stats.unigram.float().to(self.device)
        self.bigram = stats.bigram.float().to(self.device)
        self.favourite_of = self.bigram.argmax(-1)
        self.reserved = torch.zeros(n, dtype=torch.bool, device=self.device)  # never filler or output
        if triggers is not None:
            self.reserved[self.pool] = True

    def sample(
        self,
        *,
        length: int,
        n_output: int,
        n_rival: int = 0,
        batch_size: int,
        generator: torch.Generator,
        trigger: Int[Tensor, " batch"] | None = None,
        output: Int[Tensor, " batch"] | None = None,
        rival: Int[Tensor, " batch"] | None = None,
        pair_starts: Int[Tensor, " pairs"] | None = None,
    ) -> DesignedPrompts:
        """Prompts of ``length`` with ``n_output`` pairs "q o" and ``n_rival`` pairs "q b".

        q, o and b are drawn per prompt unless given (pass the same tensors to get the same
        prompts at several lengths): q from the pool; o, b never a reserved trigger, never
        g(q), never q, and b != o. Pair positions are uniform over non-overlapping placements.
        """
        n_pairs = n_output + n_rival
        if n_output < 0 or n_rival < 0:
            raise DataError(f"counts must be >= 0, got n_output={n_output}, n_rival={n_rival}")
        if 2 * n_pairs > length - 1:
            raise DataError(
                f"{n_pairs} pairs 'q x' need {2 * n_pairs + 1} positions, more than the prompt length {length}"
            )
        g, dev, B = generator, self.device, batch_size
        q = self._pick(self.pool, B, g) if trigger is None else trigger.to(dev)
        favourite = self.favourite_of[q]
        forbidden = self.reserved[None, :].expand(B, -1).clone()
        forbidden[torch.arange(B, device=dev), favourite] = True
        forbidden[torch.arange(B, device=dev), q] = True
        o = self._pick_allowed(~forbidden, g) if output is None else output.to(dev)
        if n_rival:
            forbidden[torch.arange(B, device=dev), o] = True
            b = self._pick_allowed(~forbidden, g) if rival is None else rival.to(dev)
        else:
            b = torch.full_like(o, -1)

        excluded = self.reserved[None, :].expand(B, -1).clone()
        excluded[torch.arange(B, device=dev), q] = True
        tokens = bigram_text(self.unigram, self.bigram, excluded, torch.rand(B, length, generator=g, device=dev))
        if n_pairs:
            if pair_starts is None:
                free = length - 1 - 2 * n_pairs
                offsets = torch.randint(0, free + 1, (B, n_pairs), generator=g, device=dev).sort(-1).values
                starts = offsets + 2 * torch.arange(n_pairs, device=dev)
            else:
                starts = _checked_starts(pair_starts.to(dev), n_pairs, length).expand(B, -1)
            kinds = torch.rand(B, n_pairs, generator=g, device=dev).argsort(-1) < n_output  # shuffled o/b
            planted = torch.where(kinds, o[:, None], b[:, None])
            tokens.scatter_(1, starts, q[:, None].expand(-1, n_pairs))
            tokens.scatter_(1, starts + 1, planted)
        tokens[:, -1] = q
        return DesignedPrompts(tokens, q, o, b, favourite, after_trigger_mask(tokens, q), self.stats.n_tokens)

    def evenly_spaced(self, n_pairs: int, length: int) -> Int[Tensor, " pairs"]:
        """Pair positions spread evenly over a prompt (for aligned prompts)."""
        return torch.linspace(0, length - 3, n_pairs + 2, device=self.device)[1:-1].round().long()

    def _pick(self, candidates: Tensor, n: int, g: torch.Generator) -> Tensor:
        return candidates[torch.randint(0, len(candidates), (n,), generator=g, device=self.device)]

    def _pick_allowed(self, allowed: Bool[Tensor, "batch n"], g: torch.Generator) -> Int[Tensor, " batch"]:
        if not allowed.any(-1).all():
            raise DataError("no token is left to be an in-context output (vocabulary too small?)")
        return torch.multinomial(allowed.float(), 1, generator=g).squeeze(1)


def _checked_starts(starts: Int[Tensor, " pairs"], n_pairs: int, length: int) -> Int[Tensor, "1 pairs"]:
    starts = starts.sort().values
    if len(starts) != n_pairs or starts[0] < 0 or starts[-1] > length - 3 or (starts.diff() < 2).any():
        raise DataError(
            f"pair_starts {starts.tolist()} must be {n_pairs} non-overlapping positions in [0, {length - 3}]"
        )
    return starts[None]
