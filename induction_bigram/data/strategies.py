"""Reference predictors of the next token: the strategies a model passes through while it learns
in-context Markov chains (docs/THEORY.md section 9.2; Edelman et al. 2024).

Each strategy maps a batch of tokens z_0..z_(T-1) to next-token log-probabilities at every
position, ``[batch pos vocab]``, position t predicting z_(t+1) from z_0..z_t, so a model's loss
and its KL to each strategy are measured on the same sequences. With q = z_t:

- ``uniform``: 1 / N;
- ``unigram``: the corpus unigram pi_u;
- ``bigram``: the corpus bigram pi_b(. | q), the prior's mean;
- ``in_context_unigram``: the frequency of each token among z_0..z_t;
- ``in_context_bigram``: n_qo / n_q, the transitions q -> o among z_0..z_t; uniform while
  n_q = 0 (no transition from q seen yet);
- ``bayes``: (n_qo + alpha pi_b(o | q)) / (n_q + alpha), the posterior predictive of the chain
  under its Dirichlet prior, the lowest expected loss on :class:`~.markov.MarkovTask` data.

On the trigger task (docs/THEORY.md section 1; :class:`~.task.TriggerTask`) the strategies are
the global bigram and ``in_context_copy`` (:class:`InContextCopy`, :func:`trigger_strategies`):
at a trigger seen before, all mass on the token that followed its previous occurrence; elsewhere
pi_b(. | q).

The counting strategies give probability 0 (log-probability -inf) to what the context has not
shown; their loss on such a target is infinite, and the KL from them to a model stays finite
(:func:`kl_divergence`).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import ConfigError, DataError


@runtime_checkable
class Strategy(Protocol):
    """A predictor: tokens ``[batch pos]`` -> next-token log-probabilities ``[batch pos vocab]``."""

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]: ...


class Uniform:
    """log(1 / N) everywhere."""

    def __init__(self, n_tokens: int):
        self.n_tokens = n_tokens

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        return torch.full((*tokens.shape, self.n_tokens), -math.log(self.n_tokens), device=tokens.device)


class Unigram:
    """log pi_u everywhere."""

    def __init__(self, stats: BigramStats):
        self.log_probs = stats.unigram.float().log()

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        return self.log_probs.to(tokens.device).expand(*tokens.shape, -1)


class Bigram:
    """log pi_b(. | z_t)."""

    def __init__(self, stats: BigramStats):
        self.log_probs = stats.bigram.float().log()

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        return self.log_probs.to(tokens.device)[tokens]


class InContextUnigram:
    """log of each token's frequency among z_0..z_t."""

    def __init__(self, n_tokens: int):
        self.n_tokens = n_tokens

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        counts = torch.nn.functional.one_hot(tokens, self.n_tokens).float().cumsum(1)
        return (counts / counts.sum(-1, keepdim=True)).log()


class InContextBigram:
    """log n_qo / n_q (:func:`transition_counts`), uniform where n_q = 0."""

    def __init__(self, n_tokens: int):
        self.n_tokens = n_tokens

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        counts = transition_counts(tokens, self.n_tokens)
        n_q = counts.sum(-1, keepdim=True)
        return torch.where(n_q > 0, counts / n_q.clamp_min(1), 1 / self.n_tokens).log()


class Bayes:
    """log (n_qo + alpha pi_b(o | q)) / (n_q + alpha): the posterior predictive when each row
    P(. | q) ~ Dirichlet(alpha pi_b(. | q)) (docs/THEORY.md section 9.2)."""

    def __init__(self, stats: BigramStats, alpha: float):
        if not alpha > 0:
            raise ConfigError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self.bigram = stats.bigram.float()

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        counts = transition_counts(tokens, self.bigram.shape[0])
        prior = self.alpha * self.bigram.to(tokens.device)[tokens]
        return ((counts + prior) / (counts.sum(-1, keepdim=True) + self.alpha)).log()


class InContextCopy:
    """The trigger task's copy strategy: at a trigger q_k seen before (z_t = q_k = z_s for some
    s < t), log 1 on z_(s+1) for the latest such s (the output o_k, which always follows q_k)
    and log 0 elsewhere; at every other position log pi_b(. | z_t).

    It knows the triggers of each sequence (``triggers``: ``[batch, k]`` per sequence, or ``[k]``
    shared), as the task's own predictor would; a model must find them in the context. Where the
    first occurrence of a trigger is followed by a draw from pi_b(. | q) (``task.output_mode =
    "bigram"``) it is the lowest-loss predictor of the task's next tokens; with uniform outputs,
    an output the corpus never shows after its trigger gets probability 0 under it.
    """

    def __init__(self, stats: BigramStats, triggers: Int[Tensor, "*batch k"]):
        if triggers.ndim not in (1, 2) or triggers.shape[-1] < 1:
            raise DataError(f"triggers must have shape [k] or [batch, k] with k >= 1, got {tuple(triggers.shape)}")
        self.log_probs = stats.bigram.float().log()
        self.triggers = triggers

    def __call__(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
        triggers = self.triggers.to(tokens.device)
        if triggers.ndim == 2 and triggers.shape[0] != tokens.shape[0]:
            raise DataError(f"triggers are given for {triggers.shape[0]} sequences, the batch has {tokens.shape[0]}")
        T = tokens.shape[1]
        log_probs = self.log_probs.to(tokens.device)[tokens]
        causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)
        earlier = (tokens[:, :, None] == tokens[:, None, :]) & causal  # [batch, t, s]: z_s = z_t, s < t
        latest = torch.where(earlier, torch.arange(T, device=tokens.device), -1).amax(-1)  # -1: none
        per_sequence = triggers if triggers.ndim == 2 else triggers[None]
        is_trigger = (tokens[:, :, None] == per_sequence[:, None, :]).any(-1)
        copy = is_trigger & (latest >= 0)
        copied = tokens.gather(1, (latest + 1).clamp(max=T - 1))  # z_(s+1); s < t, so s + 1 <= t
        one_hot = torch.nn.functional.one_hot(copied, log_probs.shape[-1]).bool()
        return torch.where(copy[..., None], torch.where(one_hot, 0.0, -math.inf), log_probs)


def transition_counts(tokens: Int[Tensor, "batch pos"], n_tokens: int) -> Float[Tensor, "batch pos vocab"]:
    """n_qo at each position t: how many s < t have z_s = z_t and z_(s+1) = o.

    The successors z_(s+1), s < t, are the positions right after earlier occurrences of the
    current token: what a statistical induction head attends to.
    """
    T = tokens.shape[1]
    earlier = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)
    same = (tokens[:, :, None] == tokens[:, None, :]) & earlier  # [batch, t, s]
    successors = torch.nn.functional.one_hot(tokens[:, 1:], n_tokens).float()  # z_(s+1), s < T - 1
    return same[:, :, : T - 1].float() @ successors


def markov_strategies(stats: BigramStats, alpha: float) -> dict[str, Strategy]:
    """The six strategies of the module doc, simplest first, for data whose prior is ``stats``'s
    bigram with strength ``alpha``."""
    n = stats.n_tokens
    return {
        "uniform": Uniform(n),
        "unigram": Unigram(stats),
        "bigram": Bigram(stats),
        "in_context_unigram": InContextUnigram(n),
        "in_context_bigram": InContextBigram(n),
        "bayes": Bayes(stats, alpha),
    }


def trigger_strategies(stats: BigramStats, triggers: Int[Tensor, "*batch k"]) -> dict[str, Strategy]:
    """The trigger task's strategies, simplest first: ``uniform``, ``unigram``, ``bigram`` and
    ``in_context_copy`` (:class:`InContextCopy` of a batch's ``triggers``)."""
    n = stats.n_tokens
    return {
        "uniform": Uniform(n),
        "unigram": Unigram(stats),
        "bigram": Bigram(stats),
        "in_context_copy": InContextCopy(stats, triggers),
    }


def token_losses(
    log_probs: Float[Tensor, "batch pos vocab"], targets: Int[Tensor, "batch pos"]
) -> Float[Tensor, "batch pos"]:
    """-log p(target) at each position (infinite where a strategy gives the target 0)."""
    return -log_probs.gather(-1, targets[..., None]).squeeze(-1)


def kl_divergence(
    reference: Float[Tensor, "batch pos vocab"], model: Float[Tensor, "batch pos vocab"]
) -> Float[Tensor, "batch pos"]:
    """KL(reference || model) = sum_o p_ref(o) (log p_ref(o) - log p_model(o)) at each position,
    from log-probabilities. Outcomes the reference rules out add nothing, so a counting strategy's
    zeros keep it finite; with the Bayes predictive as reference its mean over data is the
    model's expected excess loss over Bayes."""
    p = reference.exp()
    return torch.where(p > 0, p * (reference - model), 0.0).sum(-1)
