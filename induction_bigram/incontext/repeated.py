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

The two heads read are the caller's (``heads``) or, by default, the best candidate pair of
:func:`~induction_bigram.anymodel.heads.find_head_pairs` (for our one-head models, layer 1's and
layer 2's heads); the report says which it read and whether the finder called them a circuit.

- previous-token attention (the pair's earlier head): mean attention from
  query t to key t - 1, over t >= 1 of the whole sequence;
- induction attention (the pair's later head): with L = ``half_length``, query
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

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from induction_bigram.anymodel.circuit import find_head_pairs
from induction_bigram.anymodel.heads import Head, bos_token, head_name, repeated_random_tokens, score_heads
from induction_bigram.errors import ConfigError, ModelShapeError
from induction_bigram.model import Model
from induction_bigram.model.components.checks import check_context_length
from induction_bigram.serialise import Record

PREVIOUS_TOKEN_THRESHOLD = 0.9
"""Minimum mean layer-1 attention from query t to key t - 1."""
INDUCTION_THRESHOLD = 0.7
"""Minimum, over the repeated half's query positions, of the mean induction attention."""
LOSS_RATIO_THRESHOLD = 0.5
"""Maximum of (loss on the repeated half) / (loss on the first half)."""


@dataclass(frozen=True)
class RepeatedSequenceReport(Record):
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
        n_sequences, half_length, seed: the probe.
        previous_token_head, induction_head: the heads read, ``(layer, head)``.
        chosen_by: ``"caller"`` (named in ``heads``), ``"only heads"`` (one head per layer),
            or the head finder's verdict, ``"find_head_pairs: circuit"`` / ``"find_head_pairs:
            no circuit"`` (then the best candidate was read).
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
    previous_token_head: Head
    induction_head: Head
    chosen_by: str

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

    def derived(self) -> dict[str, Any]:
        """The thresholds and the verdicts, written after the numbers."""
        thresholds = {
            "previous_token_attention": PREVIOUS_TOKEN_THRESHOLD,
            "induction_attention_min": INDUCTION_THRESHOLD,
            "loss_ratio": LOSS_RATIO_THRESHOLD,
        }
        verdicts = {"previous_token_ok": self.previous_token_ok, "induction_ok": self.induction_ok}
        return {"thresholds": thresholds, **verdicts, "loss_ok": self.loss_ok, "passed": self.passed}

    def __str__(self) -> str:
        def mark(ok: bool) -> str:
            return "ok" if ok else "FAIL"

        return "\n".join(
            [
                f"heads read: previous-token {head_name(self.previous_token_head)}, induction "
                f"{head_name(self.induction_head)} ({self.chosen_by})",
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


def _heads(model: Model, heads: tuple[Head, Head] | None, seed: int) -> tuple[Head, Head, str]:
    """The (previous-token, induction) heads to read and who chose them."""
    if heads is not None:
        for layer, head in heads:
            if not (0 <= layer < model.cfg.n_layers and 0 <= head < model.cfg.n_heads):
                raise ModelShapeError(
                    f"no head {(layer, head)}: the model has {model.cfg.n_layers} layers of {model.cfg.n_heads} heads"
                )
        if heads[0][0] >= heads[1][0]:
            raise ModelShapeError(f"the previous-token head {heads[0]} must sit in an earlier layer than {heads[1]}")
        return heads[0], heads[1], "caller"
    if model.cfg.n_heads == 1:
        return (0, 0), (model.cfg.n_layers - 1, 0), "only heads"
    search = find_head_pairs(model, seed=seed)
    best = search.candidates[0]
    verdict = "circuit" if search.found else "no circuit"
    return best.previous_token, best.induction, f"find_head_pairs: {verdict}"


@torch.no_grad()
def repeated_sequence_report(
    model: Model,
    *,
    n_sequences: int = 64,
    half_length: int = 30,
    seed: int = 0,
    heads: tuple[Head, Head] | None = None,
) -> RepeatedSequenceReport:
    """Score ``model`` on :func:`repeated_random_tokens` (see the module docstring).

    Args:
        heads: ``((layer, head), (layer, head))``, the previous-token head and the induction
            head to read; ``None``: the best pair :func:`find_head_pairs` gives (the only heads
            of a one-head-per-layer model).
    """
    previous_head, induction_head, chosen_by = _heads(model, heads, seed)
    if not 2 <= half_length <= model.cfg.d_vocab:
        raise ConfigError(
            f"half_length must be in [2, d_vocab = {model.cfg.d_vocab}] (distinct tokens), got {half_length}"
        )
    if n_sequences < 1:
        raise ConfigError(f"n_sequences must be >= 1, got {n_sequences}")
    check_context_length(2 * half_length + (bos_token(model) is not None), model.cfg.n_ctx)
    L = half_length
    tokens = repeated_random_tokens(model, n_sequences, L, seed)
    start = int(bos_token(model) is not None)  # the first token of r
    scores = score_heads(model, tokens, seed=seed)  # previous-token and induction: the means
    names = {f"blocks.{induction_head[0]}.attn.hook_pattern"}
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    induction_pattern: Float[Tensor, "batch query key"] = cache[f"blocks.{induction_head[0]}.attn.hook_pattern"][
        :, induction_head[1]
    ]
    query = torch.arange(start + L, start + 2 * L, device=tokens.device)
    on_induction = induction_pattern[:, query, query - L + 1].float().mean(0)  # [L] per query position

    logits = logits.float()
    targets = tokens[:, 1:]

    def loss(positions: slice) -> float:
        return F.cross_entropy(logits[:, positions].flatten(0, 1), targets[:, positions].flatten()).item()

    first, repeated = slice(start, start + L - 1), slice(start + L, start + 2 * L - 1)
    first_loss, repeated_loss = loss(first), loss(repeated)
    accuracy = (logits[:, repeated].argmax(-1) == targets[:, repeated]).float().mean().item()
    return RepeatedSequenceReport(
        previous_token_attention=float(scores.previous_token[previous_head]),
        induction_attention_min=on_induction.min().item(),
        induction_attention_mean=float(scores.induction[induction_head]),
        induction_attention_by_position=tuple(on_induction.tolist()),
        first_half_loss=first_loss,
        repeated_half_loss=repeated_loss,
        loss_ratio=repeated_loss / first_loss if first_loss > 0 else float("inf"),
        repeated_half_accuracy=accuracy,
        chance_induction_attention=scores.chance["induction"],
        n_sequences=n_sequences,
        half_length=L,
        seed=seed,
        previous_token_head=previous_head,
        induction_head=induction_head,
        chosen_by=chosen_by,
    )
