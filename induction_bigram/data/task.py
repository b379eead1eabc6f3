"""The bigram-with-triggers sequences of docs/THEORY.md section 1, sampled a batch at a time.

A sequence: K triggers q_1..q_K, one output o_k per trigger, z_1 ~ pi_u, then
z_{t+1} = o_k if z_t = q_k, else z_{t+1} ~ pi_b(. | z_t). The sampler walks the T positions
once, each step vectorised over the whole batch, so a batch of 512 sequences of length 256
costs 256 small tensor operations, not 131,072 Python-level draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from induction_bigram.config import TaskConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import ConfigError


@dataclass(frozen=True)
class TaskBatch:
    """A batch of sequences, aligned for next-token prediction.

    Attributes:
        tokens: inputs z_0..z_{T-1}.
        targets: z_1..z_T; ``targets[:, t]`` is predicted at position t.
        labels: per target, 0 for a global-bigram token and c >= 1 when the target is the
            output following the c-th occurrence of its trigger. In-context targets have c >= 2.
        triggers / outputs: q_k and o_k of each sequence.
    """

    tokens: Int[Tensor, "batch pos"]
    targets: Int[Tensor, "batch pos"]
    labels: Int[Tensor, "batch pos"]
    triggers: Int[Tensor, "batch n_triggers"]
    outputs: Int[Tensor, "batch n_triggers"]

    @property
    def in_context(self) -> Bool[Tensor, "batch pos"]:
        """Targets with label >= 2: the output is predictable from the context."""
        return self.labels >= 2

    @property
    def bigram(self) -> Bool[Tensor, "batch pos"]:
        """Targets with label 0: drawn from the global bigram pi_b."""
        return self.labels == 0


class TriggerTask:
    """Samples :class:`TaskBatch` es for a :class:`TaskConfig` from :class:`BigramStats`.

    Example::

        task = TriggerTask(BigramStats.default(), TaskConfig(seq_len=64, n_triggers=5))
        batch = task.sample(128, torch.Generator().manual_seed(0))
    """

    def __init__(self, stats: BigramStats, cfg: TaskConfig, device: str | torch.device = "cpu"):
        if cfg.n_triggers > stats.n_tokens:
            raise ConfigError(f"task.n_triggers ({cfg.n_triggers}) exceeds the vocabulary ({stats.n_tokens})")
        if cfg.no_repeat and cfg.output_mode == "bigram":
            only_self = stats.bigram.diagonal() >= 1.0
            if only_self.any():
                token = int(only_self.nonzero()[0])
                raise ConfigError(f"task.no_repeat: token {token} is only ever followed by itself")
        self.stats = stats
        self.cfg = cfg
        self.device = torch.device(device)
        self.unigram = stats.unigram.float().to(self.device)
        self.bigram = stats.bigram.float().to(self.device)
        self._unigram_cdf = cdf(self.unigram)
        self._bigram_cdf = cdf(self.bigram)
        self.fixed_triggers = stats.most_frequent(cfg.n_triggers).to(self.device)

    @property
    def shared_triggers(self) -> Int[Tensor, " k"] | None:
        """The triggers every sequence shares (fixed mode), or ``None`` when they are drawn
        per sequence, so that any token can be one."""
        return self.fixed_triggers if self.cfg.trigger_mode == "fixed" else None

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator,
        *,
        seq_len: int | None = None,
        trigger_free_prefix: int = 0,
    ) -> TaskBatch:
        """Draw ``batch_size`` sequences with the generator (same generator state, same batch).

        Args:
            seq_len: T for this batch (default ``cfg.seq_len``).
            trigger_free_prefix: the first this-many inputs are global-bigram text with every
                trigger excluded (pi_b renormalised over non-triggers); the trigger process runs
                after it. Used by the long-prompt protocol of the positional-encoding study.
        """
        T = self.cfg.seq_len if seq_len is None else seq_len
        if batch_size < 1 or T < 1:
            raise ConfigError(f"batch_size and seq_len must be >= 1, got {batch_size}, {T}")
        if not 0 <= trigger_free_prefix <= T:
            raise ConfigError(f"trigger_free_prefix must be in [0, {T}], got {trigger_free_prefix}")
        g = generator
        triggers = self._triggers(batch_size, g)
        outputs = self._outputs(triggers, g)
        # next_of[b, i] = o_k if i = q_k in sequence b, else -1
        next_of = torch.full((batch_size, self.stats.n_tokens), -1, device=self.device)
        next_of.scatter_(1, triggers, outputs)
        is_trigger = next_of >= 0

        u = torch.rand(batch_size, T + 1, generator=g, device=self.device)
        z = torch.empty(batch_size, T + 1, dtype=torch.long, device=self.device)
        start = max(trigger_free_prefix - 1, 0)
        if trigger_free_prefix:
            z[:, :trigger_free_prefix] = bigram_text(self.unigram, self.bigram, is_trigger, u[:, :trigger_free_prefix])
        else:
            z[:, 0] = sample_from_cdf(self._unigram_cdf.expand(batch_size, -1).contiguous(), u[:, 0])
        z[:, start:] = _trigger_chain(z[:, start], next_of, self._bigram_cdf, u[:, start + 1 :])

        tokens, targets = z[:, :-1], z[:, 1:]
        return TaskBatch(tokens, targets, occurrence_labels(tokens, triggers), triggers, outputs)

    def _triggers(self, batch_size: int, g: torch.Generator) -> Int[Tensor, "batch k"]:
        if self.cfg.trigger_mode == "fixed":
            return self.fixed_triggers.expand(batch_size, -1).clone()
        weights = self.unigram.expand(batch_size, -1)
        return torch.multinomial(weights, self.cfg.n_triggers, replacement=False, generator=g)

    def _outputs(self, triggers: Int[Tensor, "batch k"], g: torch.Generator) -> Int[Tensor, "batch k"]:
        n = self.stats.n_tokens
        if self.cfg.output_mode == "uniform":
            if not self.cfg.no_repeat:
                return torch.randint(0, n, triggers.shape, generator=g, device=self.device)
            # uniform over the N - 1 tokens other than q: draw from [0, N-1) and skip q
            draw = torch.randint(0, n - 1, triggers.shape, generator=g, device=self.device)
            return draw + (draw >= triggers).long()
        probs = self.bigram[triggers.flatten()]
        if self.cfg.no_repeat:
            probs = probs.scatter(1, triggers.flatten()[:, None], 0.0)
        return torch.multinomial(probs, 1, generator=g).reshape(triggers.shape)


def _trigger_chain(
    first: Int[Tensor, " batch"],
    next_of: Int[Tensor, "batch n"],
    bigram_cdf: Float[Tensor, "n n"],
    uniforms: Float[Tensor, "batch steps"],
) -> Int[Tensor, "batch steps_plus_1"]:
    """The chain from ``first``: z_(t+1) = next_of[z_t] where that is a trigger's output (>= 0),
    else the inverse-CDF draw from pi_b(. | z_t) with ``uniforms[:, t]``.

    The loop is sequential in t, so its cost is the per-step overhead of a few small ops, and
    numpy's is a fraction of torch's (benchmarks/bench_data.py). The draw counts the CDF entries
    <= u: for a non-decreasing CDF that is the index :func:`sample_from_cdf` returns, draw for draw."""
    cumulative, u = bigram_cdf.cpu().numpy(), uniforms.cpu().numpy()
    outputs = next_of.cpu().numpy()
    rows = np.arange(len(outputs))
    z = np.empty((len(outputs), u.shape[1] + 1), dtype=np.int64)
    z[:, 0] = first.cpu().numpy()
    for t in range(u.shape[1]):
        current = z[:, t]
        forced = outputs[rows, current]
        drawn = (cumulative[current] <= u[:, t, None]).sum(1)
        z[:, t + 1] = np.where(forced >= 0, forced, drawn)
    return torch.from_numpy(z).to(first.device)


def bigram_text(
    unigram: Float[Tensor, " n"],
    bigram: Float[Tensor, "n n"],
    excluded: Bool[Tensor, "batch n"],
    uniforms: Float[Tensor, "batch length"],
) -> Int[Tensor, "batch length"]:
    """Global-bigram text that never holds an excluded token.

    z_0 ~ pi_u and z_(t+1) ~ pi_b(. | z_t), both renormalised over each row's allowed tokens
    (a row whose successors are all excluded falls back to the allowed unigram). ``uniforms``
    drives the draws, one per token, so the caller controls the randomness.
    """
    allowed = (~excluded).to(unigram.dtype)
    start = unigram * allowed
    z = torch.empty(uniforms.shape, dtype=torch.long, device=uniforms.device)
    z[:, 0] = sample_from_cdf(cdf(start), uniforms[:, 0])
    for t in range(uniforms.shape[1] - 1):
        probs = bigram[z[:, t]] * allowed
        probs = torch.where(probs.sum(-1, keepdim=True) > 0, probs, start)
        z[:, t + 1] = sample_from_cdf(cdf(probs), uniforms[:, t + 1])
    return z


def occurrence_labels(tokens: Int[Tensor, "batch pos"], triggers: Int[Tensor, "batch k"]) -> Int[Tensor, "batch pos"]:
    """Label of each target: c >= 1 if ``tokens[:, t]`` is the c-th occurrence of a trigger."""
    hits = tokens[:, :, None] == triggers[:, None, :]  # [batch, pos, k]
    counts = hits.long().cumsum(1)
    return (counts * hits).sum(-1)


def cdf(probs: Float[Tensor, "*rows n"]) -> Float[Tensor, "*rows n"]:
    """Row-wise cumulative distribution, normalised, with the last entry exactly 1."""
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:]
    cdf[..., -1] = 1.0
    return cdf


def sample_from_cdf(cumulative: Float[Tensor, "batch n"], u: Float[Tensor, " batch"]) -> Int[Tensor, " batch"]:
    """Inverse-CDF sampling: the first index whose cumulative probability exceeds u."""
    return torch.searchsorted(cumulative, u[:, None].contiguous(), right=True).squeeze(1)
