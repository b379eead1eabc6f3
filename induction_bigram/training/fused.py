"""The training loss computed from the weights at the positions it reads (``train.fused_loss``).

The in-context loss (docs/THEORY.md section 2) reads the logits at the in-context targets
only, about a quarter of the positions in ``quick`` and ``reference``, yet a forward pass through the model computes
the last layer and the unembedding at every position, through TransformerLens's general
attention. :class:`FusedLoss` computes the same loss from the same parameters, for training:

- layers 1..L-1 at every position (layer L reads them all), with the frozen W_Q = I skipped,
  the value and output maps applied as their product Phi^l = W_O^l W_V^l (one matmul where TL
  does two), 1/sqrt(d) folded into W_K^l and the causal mask added inside the score matmul.
  Layer 1 reads the frozen embeddings x = w_E(z) + p_t, so its keys and values are looked up
  from W_K^1 and Phi^1 applied to the N token and T position embeddings, not multiplied at
  each of the batch x T positions;
- layer L only at the readout positions, laid out in rows (:func:`readout_rows`: each
  sequence's first row reads it in place; the few sequences that read out nearly every
  position take extra rows, with a copy of their context), with W_K^L moved to
  the query side and Phi^L after the mixing: q (x W_K)^T = (q W_K^T) x^T and P (x Phi) =
  (P x) Phi, so no d x d product runs at every position;
- the linear W_F of ``model.ffn = "linear"`` (its W_in the frozen identity) folded into the
  readout: logits = (x + P x Phi^L)(I + W_F) W_U, so at the readout positions only N-wide
  products run; in the idealised model (``model.ffn_reads = "token"``) W_F reads w_E(z_t), and
  its logits are looked up from w_E W_F W_U; the other layers' FFNs are frozen zeros, so left out;
- every bias zero, so left out; a positional encoding's term on layer 1's scores (RPE's
  b_(t-s)) is its own module's output, added with the mask; a rotary encoding's rotation of
  layer 1's queries and keys (RoPE, with its trained b_Q and b_K) is the model's own
  (:func:`~induction_bigram.model.rotate_layer1`).

It does less arithmetic than the model, not the same arithmetic faster: benchmarks/README.md
has the times. The loss and the gradients equal the model's within float rounding
(``tests/training/test_fused.py``), so a run learns what it would through the model; hooks,
evaluation and every analysis still run the TransformerLens model. It covers the models whose
maths it writes out (an encoding whose registry entry says so, :attr:`Encoding.fused
<induction_bigram.model.encodings.Encoding.fused>`: APE, RPE, RoPE or NoPE; no FFN or the linear W_F,
W_Q the frozen identity, zero frozen biases);
:func:`fused_loss_decision` says which, and :func:`training_loss` is what the loop runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from induction_bigram.config import RunConfig
from induction_bigram.errors import ConfigError
from induction_bigram.model import Model, ffn_reads_token, model_config, rotate_layer1, scores_module, tl3_parameters
from induction_bigram.model.encodings import ENCODINGS, encoding
from induction_bigram.training.compile import compile_decision
from induction_bigram.training.metrics import masked_cross_entropy

BatchLoss = Callable[
    [Int[Tensor, "batch pos"], Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"], Tensor], Float[Tensor, ""]
]
"""(tokens, targets, selected, normalizer) -> the summed cross-entropy over the ``selected``
targets divided by ``normalizer``, differentiable in the trained weights."""


def logits_loss(forward: Callable[[Tensor], Tensor]) -> BatchLoss:
    """The loss through a full forward pass (the model, or its compiled version)."""

    def loss(tokens: Tensor, targets: Tensor, selected: Tensor, normalizer: Tensor) -> Tensor:
        return masked_cross_entropy(forward(tokens), targets, selected, normalizer=normalizer)

    return loss


class FusedLoss:
    """The training loss of a circuit model, computed from its weights (module doc).

    The weights are read afresh on every call, so optimiser steps, loads and edits apply.
    ``row_quantile``: the rows of the last layer (:func:`readout_rows`) are as wide as this
    quantile of the batch's readouts per sequence.
    """

    def __init__(self, model: Model, row_quantile: float = 0.75):
        self.model, self.row_quantile = model, row_quantile
        cfg = model_config(model)
        self.n_layers, self.d_model = cfg.n_layers, cfg.d_model
        # what the linear W_F reads: nothing (no FFN), the stream, or w_E(z_t) (the idealised model)
        self.ffn_input = "none" if cfg.ffn == "none" else "token" if ffn_reads_token(model) else "stream"
        self.scale = 1.0 / math.sqrt(cfg.d_model)  # TL's attn_scale, sqrt(d_head) with d_head = d
        self._causal: Tensor | None = None
        self._scores = scores_module(model)  # the encoding's term on layer 1's scores, or None
        self.rotary = encoding(cfg).rotary

    def _causal_mask(self, n: int, like: Tensor) -> Float[Tensor, "pos pos"]:
        """0 on and below the diagonal, -inf above it: added to the scores inside the matmul."""
        if self._causal is None or self._causal.shape[0] != n or self._causal.device != like.device:
            self._causal = torch.full((n, n), float("-inf"), device=like.device, dtype=like.dtype).triu(1)
        return self._causal

    def __call__(
        self,
        tokens: Int[Tensor, "batch pos"],
        targets: Int[Tensor, "batch pos"],
        selected: Bool[Tensor, "batch pos"],
        normalizer: Tensor,
    ) -> Float[Tensor, ""]:
        # .contiguous(): the same memory layout on both backends, so the same kernels run
        w = {name: p.contiguous() for name, p in tl3_parameters(self.model).items()}
        n_pos = tokens.shape[1]
        w_E = w["embed.W_E"]
        w_pos = w["pos_embed.W_pos"][:n_pos] if "pos_embed.W_pos" in w else torch.zeros_like(w_E[:1])  # rotary: none
        x = F.embedding(tokens, w_E) + w_pos
        for layer in range(self.n_layers - 1):
            a = f"blocks.{layer}.attn."
            key_map, ov = w[a + "W_K"][0] * self.scale, w[a + "W_V"][0] @ w[a + "W_O"][0]  # Phi^l
            if layer == 0:  # x = w_E[z] + p_t, frozen: map the N + T embeddings, then look up
                keys, values = (F.embedding(tokens, w_E @ m) + w_pos @ m for m in (key_map, ov))
            else:
                keys, values = x @ key_map, x @ ov
            mask = self._causal_mask(n_pos, x)
            if layer == 0 and self._scores is not None:  # e.g. rpe's b_(t-s), added to layer 1's scores
                mask = mask + self._scores(1, 1, n_pos, n_pos)[0, 0]
            queries = x
            if layer == 0 and self.rotary:  # rope: R_t (x + b_Q) against R_s (x W_K + b_K), W_Q = I
                queries, keys = (
                    rotate_layer1(self.model, (t + w[a + b][0] * c)[:, :, None])[:, :, 0]
                    for t, b, c in ((x, "b_Q", 1.0), (keys, "b_K", self.scale))
                )
            scores = torch.baddbmm(mask, queries, keys.transpose(1, 2))
            x = torch.baddbmm(x, F.softmax(scores, dim=-1), values)
        a = f"blocks.{self.n_layers - 1}.attn."
        batch = len(tokens)
        seq, read, valid = readout_rows(selected, self._row_width(selected))
        slots = ((seq * n_pos)[:, None] + read).flatten()
        # index_select, not indexing: its backward is an index_add, not a serial index_put
        flat = x.reshape(-1, self.d_model)
        queries = flat.index_select(0, slots).view(*read.shape, self.d_model)
        # W_K^L and Phi^L act on the query side and after the mixing (q (x W_K)^T = (q W_K^T) x^T,
        # P (x W_V W_O) = (P x) Phi): on the readout rows only, never at every position
        queries_k = queries @ (w[a + "W_K"][0].T * self.scale)
        mixed = self._attend(queries_k[:batch], x, read[:batch])
        if len(seq) > batch:  # rows past each sequence's first read a copy of its context
            more = self._attend(queries_k[batch:], x.index_select(0, seq[batch:]), read[batch:])
            mixed = torch.cat([mixed, more])
        used = valid.flatten().nonzero().squeeze(1)
        read_slots = slots[used]
        # logits = resid (I + W_F) W_U with resid = x + (P x) Phi^L: the d x N readout R = (I + W_F) W_U
        # (W_U without an FFN) is applied to x and, through Phi^L R, to P x, so no d x d product runs
        # at the readout positions either
        w_U, w_F = w["unembed.W_U"], w.get(f"blocks.{self.n_layers - 1}.mlp.W_out")
        readout = w_U + w_F @ w_U if self.ffn_input == "stream" else w_U
        phi = w[a + "W_V"][0] @ w[a + "W_O"][0]
        mixed = mixed.reshape(-1, self.d_model).index_select(0, used)
        logits = flat.index_select(0, read_slots) @ readout + mixed @ (phi @ readout)
        if self.ffn_input == "token":  # W_F reads w_E(z_t): its logits looked up from w_E W_F W_U
            logits = logits + F.embedding(tokens.reshape(-1)[read_slots], w_E @ (w_F @ w_U))
        return F.cross_entropy(logits, targets.reshape(-1)[read_slots], reduction="sum") / normalizer

    @staticmethod
    def _attend(
        queries_k: Float[Tensor, "row width d_model"],
        context: Float[Tensor, "row pos d_model"],
        read: Int[Tensor, "row width"],
    ) -> Float[Tensor, "row width d_model"]:
        """Causal attention of the readout queries (W_K^L applied) over their rows' contexts:
        P x, before Phi^L."""
        scores = torch.bmm(queries_k, context.transpose(1, 2))
        future = torch.arange(context.shape[1], device=read.device) > read[..., None]
        return torch.bmm(F.softmax(scores.masked_fill(future, float("-inf")), dim=-1), context)

    def _row_width(self, selected: Bool[Tensor, "batch pos"]) -> int:
        counts = selected.sum(1).float()
        return max(int(counts.quantile(self.row_quantile).ceil()), 1)


def readout_rows(
    selected: Bool[Tensor, "batch pos"], width: int
) -> tuple[Int[Tensor, " row"], Int[Tensor, "row width"], Bool[Tensor, "row width"]]:
    """The readout positions laid out in rows of ``width``: row r holds up to ``width``
    positions of sequence ``seq[r]``, in order (``read``), ``valid`` where a slot is used.

    Row b < batch holds sequence b's first ``width`` readouts (``seq[b] = b``); the rows after
    them hold the rest of the sequences that have more, ``width`` at a time. So the padding is
    set by ``width``, not by the longest readout (a few sequences read out nearly every
    position), and only the extra rows need a copy of their sequence.
    """
    counts = selected.sum(1)
    batch = len(counts)
    extra = (counts - 1).clamp_min(0) // width
    index = torch.arange(batch, device=selected.device)
    seq = torch.cat([index, torch.repeat_interleave(index, extra)])
    which, pos = selected.nonzero(as_tuple=True)  # row-major: by sequence, then position
    rank = torch.arange(len(pos), device=pos.device) - (counts.cumsum(0) - counts)[which]
    chunk = rank // width
    row = torch.where(chunk == 0, which, batch + (extra.cumsum(0) - extra)[which] + chunk - 1)
    read = torch.zeros(len(seq), width, dtype=torch.long, device=selected.device)
    valid = torch.zeros(len(seq), width, dtype=torch.bool, device=selected.device)
    read[row, rank % width] = pos
    valid[row, rank % width] = True
    return seq, read, valid


def fused_loss_decision(model: Model, config: RunConfig) -> tuple[FusedLoss | None, str]:
    """The :class:`FusedLoss` the training loop runs (``None``: the model's forward), and the
    one-line reason the progress output shows.

    ``train.fused_loss = "auto"`` uses it wherever it computes the model's maths and
    ``train.compile`` is not ``True`` (where it applies it is faster than the compiled model:
    benchmarks/README.md); ``True`` demands it (a :class:`ConfigError` says why it cannot),
    ``False`` turns it off."""
    setting = config.train.fused_loss
    if setting is False:
        return None, "fused loss off (train.fused_loss=false)"
    why_not = _unsupported(model)
    if config.train.compile is True:
        why_not = "train.compile=true compiles the model's forward instead"
    if why_not is None:
        return FusedLoss(model), "fused loss on: the last layer and the unembedding at the readout positions only"
    if setting is True:
        raise ConfigError(f"train.fused_loss=true, but {why_not}")
    return None, f"fused loss off (auto: {why_not})"


def _unsupported(model: Model) -> str | None:
    """Why :class:`FusedLoss` would not compute ``model``'s maths (``None`` when it would)."""
    cfg = model_config(model)
    if not encoding(cfg).fused:
        covered = ", ".join(name for name, entry in ENCODINGS.items() if entry.fused)
        return f"model.positional={cfg.positional} (it covers {covered})"
    if cfg.ffn not in ("none", "linear"):
        return f"model.ffn={cfg.ffn} (it covers no FFN or the linear W_F)"
    last_ffn = f"blocks.{cfg.n_layers - 1}.mlp."
    used = set(encoding(cfg).trained(cfg))  # e.g. rope's trained b_Q and b_K of layer 1
    for name, param in tl3_parameters(model).items():
        kind = name.rsplit(".", 1)[-1]
        if kind == "W_Q" or name == last_ffn + "W_in":
            if param.requires_grad or not torch.equal(param.squeeze(0), torch.eye(param.shape[-1]).to(param)):
                return f"{name} is not the frozen identity"
        zero = name not in used and (kind.startswith("b_") or (".mlp." in name and not name.startswith(last_ffn)))
        if zero and (param.requires_grad or bool(param.any())):
            return f"{name} is not a frozen zero"
    return None


def training_loss(model: Model, config: RunConfig, device: torch.device) -> tuple[BatchLoss, str]:
    """The loss a run trains on, and the line the progress output shows: the
    :class:`~induction_bigram.training.fused.FusedLoss` where it applies
    (:func:`~induction_bigram.training.fused.fused_loss_decision`), else the model's forward,
    compiled where :func:`~induction_bigram.training.compile.compile_decision` says so."""
    fused, fused_note = fused_loss_decision(model, config)
    if fused is not None:
        return fused, fused_note
    compiled, compile_note = compile_decision(config, device)
    return logits_loss(torch.compile(model) if compiled else model), f"{compile_note}; {fused_note}"
