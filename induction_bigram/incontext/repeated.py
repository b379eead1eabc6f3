"""The repeated-random-sequence test: does the model have a *general* induction head?

The trigger task trains the induction circuit only where the loss looks: on the outputs that
follow a trigger's second and later occurrences. With ``task.trigger_mode="fixed"`` the triggers
are always the same K frequent tokens, so W_K^2 needs (and learns) the memory
sum_q w_E(q) (Phi_1 w_E(q))^T for those K tokens only: a *fixed-trigger* induction head that
copies after ``"e"`` or ``" "`` but not after ``"k"``. A *general* induction head matches every
token to the position that followed its previous occurrence, whatever the token.

The classical test for the general head (Olsson et al. 2022) is a sequence of random tokens
repeated twice. Here each half holds ``half_length`` *distinct* tokens, drawn without
replacement from the whole vocabulary (rare characters as often as frequent ones), so each
token of the second half occurs exactly once before, and its induction position is unique. No
bigram statistics help on such text, and nothing in it is a trigger of the training task. The
report measures the two heads of the circuit and what they buy:

- previous-token attention (layer 1, TL block ``previous_token_layer``): mean attention from
  query t to key t - 1, over t >= 1 of the whole sequence;
- induction attention (layer 2, the last TL block by default): with L = ``half_length``, query
  t in [L, 2L - 1] holds s_(t-L), whose earlier occurrence is at t - L, so the induction head
  should attend to t - L + 1. The attention there is averaged over the sequences per query
  position; the report gives the minimum over the query positions (the acceptance number: every
  position must be copied from, not only on average) and the mean;
- the next-token cross-entropy on the first half (predictions from positions 0..L-2, which
  nothing in the context predicts) and on the repeated half (predictions from positions
  L..2L-2, which the first half predicts exactly), their ratio, and the top-1 accuracy on the
  repeated half.

The model passes when previous-token >= :data:`PREVIOUS_TOKEN_THRESHOLD`, the minimum induction
attention >= :data:`INDUCTION_THRESHOLD` and the loss ratio <= :data:`LOSS_RATIO_THRESHOLD`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.errors import ConfigError, ModelShapeError
from induction_bigram.model import Model, check_tokens

PREVIOUS_TOKEN_THRESHOLD = 0.9
"""Minimum mean layer-1 attention from query t to key t - 1."""
INDUCTION_THRESHOLD = 0.7
"""Minimum, over the repeated half's query positions, of the mean induction attention."""
LOSS_RATIO_THRESHOLD = 0.5
"""Maximum of (loss on the repeated half) / (loss on the first half)."""


@dataclass(frozen=True)
class RepeatedSequenceReport:
    """Scores of a model on random sequences of distinct tokens repeated twice.

    Attributes:
        previous_token_attention: mean layer-1 attention from t to t - 1 (t >= 1).
        induction_attention_min: min over query positions t in [L, 2L - 1] of the attention on
            the induction position t - L + 1, averaged over the sequences first.
        induction_attention_mean: the same attention averaged over positions and sequences.
        induction_attention_by_position: the per-position means whose min and mean are above,
            for queries L..2L-1.
        first_half_loss: cross-entropy of the predictions from positions 0..L-2.
        repeated_half_loss: cross-entropy of the predictions from positions L..2L-2.
        loss_ratio: repeated_half_loss / first_half_loss.
        repeated_half_accuracy: top-1 accuracy of the predictions from positions L..2L-2.
        chance_induction_attention: the mean induction attention of a head that attends
            uniformly (1 / (t + 1) at query t): the floor a head without induction sits near.
        n_sequences, half_length, seed, previous_token_layer, induction_layer, head: what was
            measured.
    """

    previous_token_attention: float
    induction_attention_min: float
    induction_attention_mean: float
    induction_attention_by_position: tuple[float, ...]
    first_half_loss: float
    repeated_half_loss: float
    loss_ratio: float
    repeated_half_accuracy: float
    chance_induction_attention: float
    n_sequences: int
    half_length: int
    seed: int
    previous_token_layer: int
    induction_layer: int
    head: int

    @property
    def previous_token_ok(self) -> bool:
        return self.previous_token_attention >= PREVIOUS_TOKEN_THRESHOLD

    @property
    def induction_ok(self) -> bool:
        return self.induction_attention_min >= INDUCTION_THRESHOLD

    @property
    def loss_ok(self) -> bool:
        return self.loss_ratio <= LOSS_RATIO_THRESHOLD

    @property
    def passed(self) -> bool:
        """All three requirements of the general induction head hold."""
        return self.previous_token_ok and self.induction_ok and self.loss_ok

    def to_dict(self) -> dict[str, Any]:
        """The numbers, the per-position curve as a list, the thresholds and the verdicts."""
        data = asdict(self)
        data["induction_attention_by_position"] = list(self.induction_attention_by_position)
        data["thresholds"] = {
            "previous_token_attention": PREVIOUS_TOKEN_THRESHOLD,
            "induction_attention_min": INDUCTION_THRESHOLD,
            "loss_ratio": LOSS_RATIO_THRESHOLD,
        }
        data.update(
            previous_token_ok=self.previous_token_ok,
            induction_ok=self.induction_ok,
            loss_ok=self.loss_ok,
            passed=self.passed,
        )
        return data

    def __str__(self) -> str:
        def mark(ok: bool) -> str:
            return "ok" if ok else "FAIL"

        return "\n".join(
            [
                f"previous-token attention  {self.previous_token_attention:.3f}"
                f"  (>= {PREVIOUS_TOKEN_THRESHOLD}: {mark(self.previous_token_ok)})",
                f"induction attention min   {self.induction_attention_min:.3f}"
                f"  (>= {INDUCTION_THRESHOLD}: {mark(self.induction_ok)}),"
                f" mean {self.induction_attention_mean:.3f}, chance {self.chance_induction_attention:.3f}",
                f"loss repeated / first     {self.repeated_half_loss:.3f} / {self.first_half_loss:.3f}"
                f" = {self.loss_ratio:.3f}  (<= {LOSS_RATIO_THRESHOLD}: {mark(self.loss_ok)}),"
                f" repeated-half accuracy {self.repeated_half_accuracy:.3f}",
            ]
        )


def repeated_random_tokens(d_vocab: int, n_sequences: int, half_length: int, seed: int) -> Int[Tensor, "batch pos"]:
    """``n_sequences`` rows of ``half_length`` distinct tokens (uniform, without replacement
    from ``range(d_vocab)``) followed by the same tokens again: shape [n, 2 * half_length].

    Seeded with its own :class:`torch.Generator`: the same arguments give the same tokens.
    """
    if not 1 <= half_length <= d_vocab:
        raise ConfigError(f"half_length must be in [1, d_vocab = {d_vocab}] (distinct tokens), got {half_length}")
    if n_sequences < 1:
        raise ConfigError(f"n_sequences must be >= 1, got {n_sequences}")
    generator = torch.Generator().manual_seed(seed)
    # a random permutation per row: argsort of i.i.d. uniforms
    first = torch.rand(n_sequences, d_vocab, generator=generator).argsort(-1)[:, :half_length]
    return torch.cat([first, first], dim=1)


def _layer(model: Model, layer: int, what: str) -> int:
    n = model.cfg.n_layers
    if not -n <= layer < n:
        raise ModelShapeError(f"{what} {layer} is out of range for a model with {n} layers")
    return layer % n


@torch.no_grad()
def repeated_sequence_report(
    model: Model,
    *,
    n_sequences: int = 64,
    half_length: int = 30,
    seed: int = 0,
    previous_token_layer: int = 0,
    induction_layer: int | None = None,
    head: int = 0,
) -> RepeatedSequenceReport:
    """Score ``model`` on :func:`repeated_random_tokens` (see the module docstring).

    Args:
        previous_token_layer: TL block of the previous-token head (the paper's layer 1).
        induction_layer: TL block of the induction head; ``None`` is the last block.
        head: the attention head read in both blocks.
    """
    prev_layer = _layer(model, previous_token_layer, "previous_token_layer")
    ind_layer = _layer(model, model.cfg.n_layers - 1 if induction_layer is None else induction_layer, "induction_layer")
    if not 0 <= head < model.cfg.n_heads:
        raise ModelShapeError(f"head {head} is out of range for {model.cfg.n_heads} heads")
    if half_length < 2:
        raise ConfigError(f"half_length must be >= 2 (a first-half prediction is needed), got {half_length}")
    L = half_length
    tokens = repeated_random_tokens(model.cfg.d_vocab, n_sequences, L, seed).to(model.cfg.device)
    check_tokens(model, tokens)
    names = {f"blocks.{prev_layer}.attn.hook_pattern", f"blocks.{ind_layer}.attn.hook_pattern"}
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)

    previous_pattern: Float[Tensor, "batch query key"] = cache[f"blocks.{prev_layer}.attn.hook_pattern"][:, head]
    induction_pattern: Float[Tensor, "batch query key"] = cache[f"blocks.{ind_layer}.attn.hook_pattern"][:, head]
    query = torch.arange(1, 2 * L, device=tokens.device)
    previous_token = previous_pattern[:, query, query - 1].float().mean().item()
    query = torch.arange(L, 2 * L, device=tokens.device)
    on_induction = induction_pattern[:, query, query - L + 1].float().mean(0)  # [L] per query position
    chance = (1.0 / (query + 1).float()).mean().item()

    logits = logits.float()
    targets = tokens[:, 1:]

    def loss(positions: slice) -> float:
        return F.cross_entropy(logits[:, positions].flatten(0, 1), targets[:, positions].flatten()).item()

    first, repeated = slice(0, L - 1), slice(L, 2 * L - 1)
    first_loss, repeated_loss = loss(first), loss(repeated)
    accuracy = (logits[:, repeated].argmax(-1) == targets[:, repeated]).float().mean().item()
    return RepeatedSequenceReport(
        previous_token_attention=previous_token,
        induction_attention_min=on_induction.min().item(),
        induction_attention_mean=on_induction.mean().item(),
        induction_attention_by_position=tuple(on_induction.tolist()),
        first_half_loss=first_loss,
        repeated_half_loss=repeated_loss,
        loss_ratio=repeated_loss / first_loss if first_loss > 0 else float("inf"),
        repeated_half_accuracy=accuracy,
        chance_induction_attention=chance,
        n_sequences=n_sequences,
        half_length=L,
        seed=seed,
        previous_token_layer=prev_layer,
        induction_layer=ind_layer,
        head=head,
    )
