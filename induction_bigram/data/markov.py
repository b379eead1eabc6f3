"""In-context Markov chains with the corpus bigram as prior (docs/THEORY.md section 9.1); the
task's settings are :class:`~induction_bigram.config.markov.MarkovTaskConfig`.

Each sequence draws its own transition matrix P, row i ~ Dirichlet(alpha pi_b(. | i)) with pi_b
the corpus bigram, then z_0 ~ pi_u and z_(t+1) ~ P(. | z_t) (Edelman et al. 2024, "The evolution
of statistical induction heads", with the corpus bigram in place of their uniform prior). The
Bayes-optimal next-token distribution is then exact:
p(o | z_0..z_t, q = z_t) = (n_qo + alpha pi_b(o | q)) / (n_q + alpha)
(:class:`~induction_bigram.data.strategies.Bayes`).

Zeros of pi_b: a concentration of 0 is not a valid Dirichlet parameter, and the Dirichlet's limit
as one concentration goes to 0 puts no mass on that entry. So row i is a Dirichlet over the
support of pi_b(. | i) and zero off it: a transition the corpus never shows never occurs, and
the Bayes formula above stays exact (its n_qo and alpha pi_b(o | q) are both 0 off the support).

Gamma draws take the generator (``torch.distributions`` draws do not), so a seeded generator
gives the same batch anywhere: Marsaglia & Tsang (2000) for shape a + 1, times U^(1/a) for
shape a, in log space (a concentration of 1e-6 makes U^(1/a) underflow).
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.config.markov import MarkovTaskConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import cdf, sample_from_cdf
from induction_bigram.errors import ConfigError


@dataclass(frozen=True)
class MarkovBatch:
    """A batch of chains, aligned for next-token prediction at every position.

    Attributes:
        tokens: inputs z_0..z_(T-1).
        targets: z_1..z_T; ``targets[:, t]`` is predicted at position t.
        transitions: each sequence's own P, row i = P(. | i).
    """

    tokens: Int[Tensor, "batch pos"]
    targets: Int[Tensor, "batch pos"]
    transitions: Float[Tensor, "batch n_tokens n_tokens"]


class MarkovTask:
    """Samples :class:`MarkovBatch` es for a :class:`MarkovTaskConfig`.

    Example::

        task = MarkovTask(BigramStats.default(), MarkovTaskConfig(seq_len=128, alpha=1.0))
        batch = task.sample(32, torch.Generator().manual_seed(0))
    """

    def __init__(self, stats: BigramStats, cfg: MarkovTaskConfig, device: str | torch.device = "cpu"):
        self.stats = stats
        self.cfg = cfg
        self.device = torch.device(device)
        self.unigram = stats.unigram.to(self.device)
        self.bigram = stats.bigram.to(self.device)
        self._unigram_cdf = cdf(self.unigram.float())
        rows, cols = (self.bigram > 0).nonzero(as_tuple=True)
        self._support = rows * stats.n_tokens + cols  # flat indices of pi_b's non-zero entries
        self._concentration = cfg.alpha * self.bigram[rows, cols]

    @classmethod
    def from_config(cls, cfg: MarkovTaskConfig, device: str | torch.device = "cpu") -> "MarkovTask":
        """The task on ``cfg.corpus``'s statistics (:meth:`BigramStats.from_corpus`)."""
        return cls(BigramStats.from_corpus(cfg.corpus), cfg, device)

    def transitions(self, batch_size: int, generator: torch.Generator) -> Float[Tensor, "batch n n"]:
        """``batch_size`` transition matrices, row i ~ Dirichlet(alpha pi_b(. | i)) on the support
        of pi_b(. | i), zero off it (module doc)."""
        n = self.stats.n_tokens
        log_gamma = log_gamma_sample(self._concentration.expand(batch_size, -1), generator)
        logits = torch.full((batch_size, n * n), -torch.inf, dtype=log_gamma.dtype, device=self.device)
        logits[:, self._support] = log_gamma
        return logits.view(batch_size, n, n).softmax(-1).float()

    def sample(self, batch_size: int, generator: torch.Generator, *, seq_len: int | None = None) -> MarkovBatch:
        """Draw ``batch_size`` chains with the generator (same generator state, same batch)."""
        T = self.cfg.seq_len if seq_len is None else seq_len
        if batch_size < 1 or T < 1:
            raise ConfigError(f"batch_size and seq_len must be >= 1, got {batch_size}, {T}")
        P = self.transitions(batch_size, generator)
        u = torch.rand(batch_size, T + 1, generator=generator, device=self.device)
        z = torch.empty(batch_size, T + 1, dtype=torch.long, device=self.device)
        z[:, 0] = sample_from_cdf(self._unigram_cdf.expand(batch_size, -1).contiguous(), u[:, 0])
        P_cdf = cdf(P)
        for t in range(T):
            rows = P_cdf.gather(1, z[:, t, None, None].expand(-1, 1, P.shape[-1])).squeeze(1)
            z[:, t + 1] = sample_from_cdf(rows, u[:, t + 1])
        return MarkovBatch(z[:, :-1], z[:, 1:], P)


def log_gamma_sample(concentration: Float[Tensor, "*shape"], generator: torch.Generator) -> Float[Tensor, "*shape"]:
    """log G with G ~ Gamma(a, 1) for each entry a > 0 of ``concentration``, in float64.

    Marsaglia & Tsang's squeeze-free rejection for shape a + 1 (every proposal round accepts
    more than 95%; the rounds repeat on the rejected entries only), then
    log G = log G_(a+1) + log(U) / a. Every draw comes from ``generator``.
    """
    a = concentration.double()
    d = (a + 1 - 1 / 3).flatten()
    c = 1 / torch.sqrt(9 * d)
    out = torch.empty_like(d)
    pending = torch.arange(d.numel(), device=d.device)
    while pending.numel():
        x = torch.randn(pending.numel(), generator=generator, dtype=torch.float64, device=d.device)
        u = torch.rand(pending.numel(), generator=generator, dtype=torch.float64, device=d.device)
        dp, v = d[pending], (1 + c[pending] * x) ** 3
        log_v = torch.log(v.clamp_min(torch.finfo(v.dtype).tiny))
        accept = (v > 0) & (torch.log(u) < 0.5 * x**2 + dp - dp * v + dp * log_v)
        out[pending[accept]] = torch.log(dp[accept]) + log_v[accept]
        pending = pending[~accept]
    boost = torch.log(torch.rand(d.numel(), generator=generator, dtype=torch.float64, device=d.device))
    return (out + boost / a.flatten()).view(a.shape)
