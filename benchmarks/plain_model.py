"""The model of docs/THEORY.md section 2 in plain PyTorch, as a speed anchor (no TransformerLens).

Written in the paper's column convention: every matrix here is the paper's matrix (the
transpose of its TransformerLens counterpart), and a sequence is a tensor whose rows are the
column vectors x_t^T, so a paper product W x_t is ``x @ W.T``:

    x_t     = w_E(z_t) + p_t                                  (frozen, APE)
    layer l = x_t + sum_{s <= t} softmax_s(x_t^T W_K^l x_s / sqrt(d)) M^l x_s
              M^1 = Phi_1 = W_O^1 W_V^1 (frozen), M^2 = W_O^2 W_V^2 (W_V^2 frozen, W_O^2 trained)
    logits  = w_U(i)^T x_t^(2)

W_Q = I is skipped; the causal mask is applied once per layer, by adding a precomputed upper
triangle of -inf inside the score matmul (``torch.baddbmm``, ``attention="mask"``) or inside
``torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)`` (``"sdpa"``); the
1/sqrt(d) scale is folded into W_K (a d x d multiply instead of a pass over the T x T scores).
The trained parameters are exactly W_K^1, W_K^2 and W_O^2 (``induction_bigram.model
.trainable_names`` for the APE, attention-only model).

:meth:`PlainModel.from_hooked` copies the weights of one of our HookedTransformers (built by
``induction_bigram.build_model``), so both compute the same function;
``tests/test_bench_anchor.py`` checks logits and gradients agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# TL name of each trained parameter -> the PlainModel attribute holding its paper matrix
TL_TO_PAPER = {"blocks.0.attn.W_K": "W_K1", "blocks.1.attn.W_K": "W_K2", "blocks.1.attn.W_O": "W_O2"}


class PlainModel(nn.Module):
    """Two attention layers of one head, d = head dimension, W_Q = I, no biases, no FFN.

    Args (all paper convention, [out, in] for matrices; tables have one row per token/position):
        w_E: [N, d] token embeddings w_E(i); p: [n_ctx, d] positions p_t; w_U: [N, d] rows w_U(i).
        W_K1, W_K2: [d, d] key matrices (trained). Phi1: [d, d] = W_O^1 W_V^1 (frozen).
        W_V2: [d, d] (frozen). W_O2: [d, d] (trained).
        attention: ``"mask"`` or ``"sdpa"`` (same maths, see the module doc).
    """

    def __init__(
        self,
        w_E: Tensor,
        p: Tensor,
        w_U: Tensor,
        W_K1: Tensor,
        Phi1: Tensor,
        W_K2: Tensor,
        W_V2: Tensor,
        W_O2: Tensor,
        attention: str = "mask",
    ):
        super().__init__()
        if attention not in ("mask", "sdpa"):
            raise ValueError(f"attention must be 'mask' or 'sdpa', got {attention!r}")
        self.attention = attention
        self.d = w_E.shape[1]
        self.register_buffer("w_E", w_E.detach().clone())
        self.register_buffer("p", p.detach().clone())
        self.register_buffer("w_U", w_U.detach().clone())
        self.register_buffer("Phi1", Phi1.detach().clone())
        self.register_buffer("W_V2", W_V2.detach().clone())
        self.W_K1 = nn.Parameter(W_K1.detach().clone())
        self.W_K2 = nn.Parameter(W_K2.detach().clone())
        self.W_O2 = nn.Parameter(W_O2.detach().clone())
        n_ctx = p.shape[0]
        upper = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=p.device).triu(1)
        causal = torch.zeros(n_ctx, n_ctx, dtype=p.dtype, device=p.device).masked_fill(upper, float("-inf"))
        self.register_buffer("causal", causal)

    @classmethod
    def from_hooked(cls, model, attention: str = "mask") -> "PlainModel":
        """The same function as ``model`` (a two-layer, attention-only APE model of
        ``induction_bigram.build_model``), its weights copied into the paper's convention.

        Raises ``ValueError`` for a model this class cannot express (another positional
        encoding, an FFN, nonzero biases, W_Q other than the identity).
        """
        from induction_bigram.model import get_paper_matrix, model_config, portable_state_dict, positional_embeddings

        cfg = model_config(model)
        if cfg.positional != "ape" or cfg.ffn != "none" or cfg.n_layers != 2 or cfg.rope_qk_bias:
            raise ValueError(
                "PlainModel expresses the two-layer attention-only APE model only, got "
                f"positional={cfg.positional!r}, ffn={cfg.ffn!r}, n_layers={cfg.n_layers}"
            )
        eye = torch.eye(cfg.d_model, device=model.embed.W_E.device)
        for layer in (1, 2):
            if not torch.equal(get_paper_matrix(model, f"W_Q{layer}"), eye):
                raise ValueError(f"W_Q{layer} is not the identity")
        for name, param in portable_state_dict(model).items():
            if name.split(".")[-1].startswith("b_") and param.any():
                raise ValueError(f"{name} is not zero; PlainModel has no biases")
        W = {name: get_paper_matrix(model, name) for name in ("W_K1", "W_V1", "W_O1", "W_K2", "W_V2", "W_O2")}
        return cls(
            w_E=model.embed.W_E.detach(),
            p=positional_embeddings(model),
            w_U=model.unembed.W_U.detach().T,
            W_K1=W["W_K1"],
            Phi1=W["W_O1"] @ W["W_V1"],
            W_K2=W["W_K2"],
            W_V2=W["W_V2"],
            W_O2=W["W_O2"],
            attention=attention,
        )

    def attend(self, x: Tensor, W_K: Tensor, v: Tensor) -> Tensor:
        """sum_{s <= t} softmax_s(x_t^T W_K x_s / sqrt(d)) v_s for every t: [batch, T, d]."""
        T = x.shape[1]
        k = x @ (W_K.T / math.sqrt(self.d))  # rows (W_K x_s)^T / sqrt(d)
        if self.attention == "sdpa":
            return F.scaled_dot_product_attention(x, k, v, is_causal=True, scale=1.0)
        scores = torch.baddbmm(self.causal[:T, :T], x, k.transpose(1, 2))  # the -inf triangle added in the matmul
        return torch.softmax(scores, dim=-1) @ v

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits [batch, T, N] for token ids [batch, T]."""
        T = tokens.shape[1]
        x = self.w_E[tokens] + self.p[:T]
        x = x + self.attend(x, self.W_K1, x @ self.Phi1.T)
        x = x + self.attend(x, self.W_K2, x @ self.W_V2.T) @ self.W_O2.T
        return x @ self.w_U.T


def in_context_loss(logits: Tensor, targets: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy on the in-context targets (label >= 2), as the training loss."""
    mask = labels >= 2
    return F.cross_entropy(logits[mask], targets[mask], reduction="sum") / mask.sum().clamp_min(1)


def make_optimizer(plain: PlainModel, cfg, multipliers: dict[str, float]) -> torch.optim.Optimizer:
    """The optimiser ``induction_bigram.training.loop.make_optimizer`` builds, for the plain model:
    one group per trained matrix, in the same order, lr = cfg.lr * multiplier and weight decay
    cfg.weight_decay / multiplier. ``multipliers`` is keyed by TL name
    (``induction_bigram.training.loop.learning_rate_multipliers``)."""
    groups = [
        {
            "params": [getattr(plain, paper)],
            "lr": cfg.lr * multipliers[tl],
            "weight_decay": cfg.weight_decay / multipliers[tl],
        }
        for tl, paper in TL_TO_PAPER.items()
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train_step(forward, optimizer: torch.optim.Optimizer, tokens: Tensor, targets: Tensor, labels: Tensor) -> float:
    """One step: forward, in-context loss, backward, optimiser step; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = in_context_loss(forward(tokens), targets, labels)
    loss.backward()
    optimizer.step()
    return loss.item()
