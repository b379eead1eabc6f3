"""The attention layer of our TL 3 models: TL's ``Attention`` plus what TL has no switch for.

:class:`CircuitAttention` is a subclass, so every TL hook point (``hook_q`` ... ``hook_pattern``,
``hook_z``, ``hook_result`` with ``use_attn_result``) fires as in TL, and TL's settings, KV
cache and attention masks work unchanged. It adds, as modules on the forward path rather than
permanent hooks (which ``reset_hooks(including_permanent=True)`` removes):

- an optional term added to the scores, ``rel_pos``: a positional encoding's
  :attr:`~induction_bigram.model.encodings.Encoding.scores` module (``rpe``'s b_(t-s)), told the
  number of cached positions under a KV cache;
- an optional circuit hook point its output passes through (``circuit.hook_induction`` ...);
- the context check: more than ``n_ctx`` positions (cached ones included) is a
  :class:`~induction_bigram.errors.DataError`, never a silent read past the trained positions.

It also has a lean path, measured to pay on ``train`` where the fused loss does not apply
(``benchmarks/bench_attention.py``: the ``amt`` step 1.13x), computing the same hook values bitwise
with less of the bookkeeping our model does not need: no product with the frozen identity W_Q
(q = x + b_Q, checked again whenever W_Q changes), the causal mask applied once from a cached
boolean mask, no copy of W_O per call, no NaN guard (a causal row always keeps its diagonal,
so a NaN there means the weights are NaN, which should show). It serves a layer whose TL config
sets only what it supports (:func:`lean_path_serves`); any other setting, TL's general path does.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import HookedTransformerConfig
from transformer_lens.components import Attention
from transformer_lens.utilities.attention import simple_attn_linear

from induction_bigram.hooks.circuit import RoutesOutput
from induction_bigram.model.components.checks import check_context_length, check_positions

# the TL config fields the lean path serves at any value: the shapes it reads and the settings that
# act outside the attention layer (tokenizer, norms, MLP, initialisation)
_SERVED = frozenset(
    {
        "d_model", "d_head", "n_layers", "n_ctx", "n_heads", "d_mlp", "d_vocab", "d_vocab_out", "n_params",
        "attn_only", "act_fn", "normalization_type", "eps", "attn_scale", "dtype", "device", "n_devices",
        "model_name", "tokenizer_name", "default_prepend_bos", "tokenizer_prepends_bos", "use_hook_tokens",
        "use_hook_mlp_in", "seed", "init_weights", "init_mode", "initializer_range",
    }
)  # fmt: skip
# every other field at TL's default: a rotary, a soft cap, split or per-head inputs and outputs, or an
# option a later TL adds, which the lean path would not know to apply, sends the layer to TL's path
_REFERENCE = HookedTransformerConfig(n_layers=1, d_model=2, n_ctx=2, d_head=1)
_DEFAULTS = {f.name: getattr(_REFERENCE, f.name) for f in dataclasses.fields(_REFERENCE) if f.name not in _SERVED}


def lean_path_serves(cfg: HookedTransformerConfig) -> bool:
    """Whether the lean path computes an attention layer of ``cfg``: it sets nothing beyond
    :data:`_SERVED` away from TL's default."""
    return all(getattr(cfg, name) == default for name, default in _DEFAULTS.items())


class CircuitAttention(RoutesOutput, Attention):
    rel_pos: nn.Module | None

    def __init__(self, cfg, attn_type: str = "global", layer_id: int | None = None, scores: nn.Module | None = None):
        super().__init__(cfg, attn_type, layer_id)
        self.rel_pos = scores  # an encoding's term on the scores (rpe's b_(t-s)), or None
        self._query_identity_key: tuple | None = None
        self._query_identity = False
        self._causal: Tensor | None = None

    def forward(
        self,
        query_input: Float[Tensor, "batch pos d_model"],
        key_input: Float[Tensor, "batch kv_pos d_model"],
        value_input: Float[Tensor, "batch kv_pos d_model"],
        past_kv_cache_entry=None,
        additive_attention_mask=None,
        attention_mask=None,
        position_bias=None,
    ) -> Float[Tensor, "batch pos d_model"]:
        general = (past_kv_cache_entry, additive_attention_mask, attention_mask, position_bias) != (None,) * 4
        if general or not self._lean_path_applies():
            out = super().forward(
                query_input, key_input, value_input, past_kv_cache_entry, additive_attention_mask, attention_mask
            )
        else:
            out = self._lean_forward(query_input, key_input, value_input)
        return self._routed(out)

    def calculate_attention_scores(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        scores = super().calculate_attention_scores(q, k)
        batch, n_heads, n_query, n_key = scores.shape
        check_context_length(n_key, self.cfg.n_ctx)
        if self.rel_pos is not None:
            scores = scores + self.rel_pos(batch, n_heads, n_query, n_key)
        return scores

    def apply_rotary(self, x: Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> Tensor:
        # before TL indexes its rotary tables, which would raise a bare IndexError past n_ctx
        check_positions(x.shape[1], past_kv_pos_offset, attention_mask, self.cfg.n_ctx)
        return super().apply_rotary(x, past_kv_pos_offset, attention_mask)

    # -- the lean path -----------------------------------------------------------------------

    def _lean_path_applies(self) -> bool:
        return self._attention_dir_override is None and lean_path_serves(self.cfg)

    def _query_is_input(self) -> bool:
        """W_Q is the frozen identity, so q = x + b_Q (re-checked whenever W_Q is written)."""
        W_Q = self.W_Q
        key = (W_Q._version, W_Q.data_ptr(), W_Q.requires_grad, W_Q.device)
        if key != self._query_identity_key:
            self._query_identity_key = key
            identity = torch.eye(W_Q.shape[-1], dtype=W_Q.dtype, device=W_Q.device)
            self._query_identity = (
                not W_Q.requires_grad
                and W_Q.shape[0] == 1
                and W_Q.shape[1] == W_Q.shape[2]
                and torch.equal(W_Q[0], identity)
            )
        return self._query_identity

    def _causal_mask(self, n: int, device: torch.device) -> Tensor:
        if self._causal is None or self._causal.shape[0] < n or self._causal.device != device:
            size = max(n, self.cfg.n_ctx)
            self._causal = torch.ones(size, size, dtype=torch.bool, device=device).triu(1)
        return self._causal[:n, :n]

    def _lean_forward(self, x_q: Tensor, x_k: Tensor, x_v: Tensor) -> Tensor:
        # under torch.compile the identity check would guard on W_Q's storage and recompile
        # for every new model; the product with the identity is exact, so take it there
        if not torch.compiler.is_compiling() and self._query_is_input():
            q = x_q.unsqueeze(2) + self.b_Q  # a new tensor: hooks may edit q in place
        else:
            q = simple_attn_linear(x_q, self.W_Q, self.b_Q)
        q = self.hook_q(q)
        k = self.hook_k(simple_attn_linear(x_k, self.W_K, self.b_K))
        v = self.hook_v(simple_attn_linear(x_v, self.W_V, self.b_V))
        scores = self.calculate_attention_scores(q, k)
        scores = self.hook_attn_scores(
            scores.masked_fill(self._causal_mask(scores.shape[-1], scores.device), float("-inf"))
        )
        pattern = self.hook_pattern(F.softmax(scores, dim=-1))
        z = self.calculate_z_scores(v, pattern)  # fires hook_z
        n_heads, d_head, d_model = self.W_O.shape
        return F.linear(
            z.reshape(*z.shape[:2], n_heads * d_head), self.W_O.reshape(n_heads * d_head, d_model).T, self.b_O
        )
