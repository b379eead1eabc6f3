"""Our components for TransformerLens 4 (``TransformerBridge``), the counterparts of this package's
TL 3 modules (which subclass ``transformer_lens.components``, removed in TL 4).

TL 4 builds its own small models as a ``NativeModel`` wrapped by ``TransformerBridge``
(``TransformerBridge.boot_native``). :func:`induction_bigram.model.tl4.build_model` builds that
``NativeModel`` with the parts below swapped in, then wraps it the way ``boot_native`` does:

- :class:`CircuitAttention` (``NativeAttention``): an encoding's optional term on layer 1's scores
  (:attr:`~induction_bigram.model.encodings.Encoding.scores`, ``rpe``'s b_(t-s)),
  ``hook_attn_scores`` fired on the forward path with the pre-softmax, causally
  masked scores (as TL 3 does; stock TL 4 native attention fills that hook with the *pattern*
  and discards edits), the context check, and the circuit hook point its output passes through;
- :class:`CircuitMLP` (``NativeMLP``): the output passes through ``circuit.hook_global``; the
  identity activation ``"linear"`` (W_F) is registered in TL 4's native activation table;
- :class:`HalfSplitRotary`: TL 3's rotary layout (pairs (i, i + d/2)); TL 4's ``NativeRotary``
  rotates adjacent pairs, which is another model for the same weights;
- :class:`CheckedNativeModel`: the token-id and context checks (TL 3: ``TokenEmbed``,
  ``CheckedPosEmbed``), raising :class:`~induction_bigram.errors.DataError`;
- :class:`BridgeCircuitHooks`: ``model.circuit`` (``circuit.hook_*``), registered by the bridge;
- :class:`RecordingEmbedding`: the token embedding that hands w_E(z_t) to an FFN that reads
  only it (``model.ffn_reads="token"``, :mod:`.token_input`).

Everything here that reaches past TL 4's public API is listed in :data:`TL_INTERNALS` and
checked by :func:`missing_internals`, so a TL 4.x that moved one gives a :class:`ConfigError`
naming the variant and the version instead of a wrong model.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version as _version

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.model_bridge.sources.native import NativeAttention, NativeMLP, NativeModel
from transformer_lens.model_bridge.sources.native import model as _native

from induction_bigram.errors import ConfigError
from induction_bigram.hooks.circuit import CircuitHooks
from induction_bigram.model.components import LINEAR_ACT_FN
from induction_bigram.model.components.checks import check_context_length, check_token_tensor
from induction_bigram.model.components.token_input import EmbeddingRecord
from induction_bigram.model.encodings import SCORES_MODULE

TL_INTERNALS = {
    "native activation table (ffn='linear')": lambda: isinstance(getattr(_native, "_ACTIVATIONS", None), dict),
    "NativeAttention q/k/v/o, scale, causal_mask": lambda: all(
        hasattr(NativeAttention, name) for name in ("forward", "_combine_attention_mask")
    ),
    "TransformerBridge._scan_existing_hooks (an encoding's score module)": lambda: hasattr(
        _bridge_class(), "_scan_existing_hooks"
    ),
    "AttentionBridge.supports_attn_result (set_use_attn_result)": lambda: hasattr(
        _attention_bridge_class(), "supports_attn_result"
    ),
}


def _bridge_class():
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge


def _attention_bridge_class():
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    return AttentionBridge


def missing_internals() -> list[str]:
    """The TL 4 internals this module relies on that the installed TL lacks."""
    return [what for what, present in TL_INTERNALS.items() if not present()]


def _identity(x: Tensor) -> Tensor:
    return x


if isinstance(getattr(_native, "_ACTIVATIONS", None), dict):
    _native._ACTIVATIONS.setdefault(LINEAR_ACT_FN, _identity)


# -- components ----------------------------------------------------------------------------


class HalfSplitRotary(nn.Module):
    """TL 3's rotary: channel i rotates with i + rotary_dim/2, angle pos / base^(i / (rotary_dim/2)).

    Same ``apply_rope`` interface as TL 4's ``NativeRotary`` (which pairs channels 2i, 2i+1 and
    ignores ``cfg.rotary_adjacent_pairs``)."""

    def __init__(self, n_ctx: int, rotary_dim: int, base: float = 10000.0):
        super().__init__()
        self.rotary_dim = rotary_dim
        half = rotary_dim // 2
        freq = base ** (torch.arange(half).float() / half)
        angles = torch.arange(n_ctx).float()[:, None] / freq.repeat(2)[None, :]
        self.register_buffer("cos_cached", angles.cos(), persistent=False)
        self.register_buffer("sin_cached", angles.sin(), persistent=False)

    def apply_rope(self, q: Tensor, k: Tensor, *, position_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        seq, rd = q.shape[-2], self.rotary_dim
        if position_ids is None:
            cos, sin = self.cos_cached[:seq].to(q.dtype), self.sin_cached[:seq].to(q.dtype)
        else:
            cos = self.cos_cached[position_ids].to(q.dtype).unsqueeze(1)
            sin = self.sin_cached[position_ids].to(q.dtype).unsqueeze(1)

        def rope(x: Tensor) -> Tensor:
            x_rot, x_pass = x[..., :rd], x[..., rd:]
            x1, x2 = x_rot[..., : rd // 2], x_rot[..., rd // 2 :]
            x_rot = x_rot * cos + torch.cat([-x2, x1], dim=-1) * sin
            return torch.cat([x_rot, x_pass], dim=-1) if x_pass.shape[-1] else x_rot

        return rope(q), rope(k)


class CircuitAttention(NativeAttention):
    """``NativeAttention`` with our additions (module doc). It returns ``(out, None)``, so the
    bridge's ``AttentionBridge`` fires no post-hoc score/pattern hooks: ``hook_attn_scores`` is
    fired here (pre-softmax, -inf above the diagonal, edits take effect), ``hook_pattern`` through
    the ``pattern_fn`` the bridge passes in."""

    def __init__(self, cfg, rotary: nn.Module | None = None, rel_pos: nn.Module | None = None):
        super().__init__(cfg, rotary=rotary)
        # tuples, not children: one owner each (rel_pos: the native model; hook points: the bridge)
        self._rel_pos: tuple[nn.Module, ...] = (rel_pos,) if rel_pos is not None else ()
        self._scores_point: tuple[HookPoint, ...] = ()
        self._circuit_point: tuple[HookPoint, ...] = ()
        self._bridge: tuple[nn.Module, ...] = ()  # the AttentionBridge around us: hook_result, its config

    def forward(
        self,
        hidden_states: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        pattern_fn: Callable[[Tensor], Tensor] | None = None,
        **kwargs,
    ) -> tuple[Tensor, None]:
        batch, seq, _ = hidden_states.shape
        n_key = seq if position_ids is None else int(position_ids.max()) + 1
        check_context_length(max(seq, n_key), self.cfg.n_ctx)
        q = self.q(hidden_states).view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k(hidden_states).view(batch, seq, self.n_kv_heads, self.d_head).transpose(1, 2)
        v = self.v(hidden_states).view(batch, seq, self.n_kv_heads, self.d_head).transpose(1, 2)
        if self.rotary is not None:
            q, k = self.rotary.apply_rope(q, k, position_ids=position_ids)
        if self.kv_repeats > 1:
            k = k.repeat_interleave(self.kv_repeats, dim=1)
            v = v.repeat_interleave(self.kv_repeats, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / self.scale
        if self._rel_pos:
            scores = scores + self._rel_pos[0](batch, self.n_heads, seq, seq)
        block_mask = self.causal_mask[:seq, :seq]
        if attention_mask is not None:
            block_mask = self._combine_attention_mask(block_mask, attention_mask, batch=batch)
        scores = scores.masked_fill(block_mask, float("-inf"))
        if self._scores_point:
            scores = self._scores_point[0](scores)
        pattern = F.softmax(scores, dim=-1)
        if attention_mask is not None:  # a fully padded query row is NaN; it contributes nothing
            pattern = pattern.masked_fill(block_mask, 0.0)
        if pattern_fn is not None:
            pattern = pattern_fn(pattern)
        z = torch.matmul(pattern, v).transpose(1, 2).contiguous().view(batch, seq, -1)
        out = self._per_head_output(z) if self._use_attn_result() else self.o(z)
        if self._circuit_point:
            out = self._circuit_point[0](out)
        return out, None

    def _use_attn_result(self) -> bool:
        return bool(self._bridge) and bool(getattr(self._bridge[0].config, "use_attn_result", False))

    def _per_head_output(self, z: Tensor) -> Tensor:
        """TL 3's ``use_attn_result`` path: ``hook_result`` [batch, pos, head, d_model] is each head's
        z_h W_O^h before the sum over heads (b_O added after it); ``o`` is the bridge's linear, whose
        ``hook_in`` is ``hook_z`` and ``hook_out`` the attention output."""
        z = self.o.hook_in(z)
        batch, seq, _ = z.shape
        linear = self.o.original_component
        w_o = linear.weight.view(-1, self.n_heads, self.d_head)  # [d_model, head, d_head]
        result = self._bridge[0].hook_result(torch.einsum("bphd,mhd->bphm", z.view(batch, seq, self.n_heads, -1), w_o))
        out = result.sum(-2)
        return self.o.hook_out(out if linear.bias is None else out + linear.bias)


class CircuitMLP(NativeMLP):
    """``NativeMLP`` whose output passes through ``circuit.hook_global``."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self._circuit_point: tuple[HookPoint, ...] = ()

    def forward(self, hidden_states: Tensor, **kwargs) -> Tensor:
        out = super().forward(hidden_states, **kwargs)
        return self._circuit_point[0](out) if self._circuit_point else out


class RecordingEmbedding(nn.Embedding):
    """The native token embedding that also hands its rows to the FFN of a model whose FFN
    reads only w_E(z_t) (:mod:`~induction_bigram.model.components.token_input`; TL 3: ``TokenEmbed``)."""

    def __init__(self, embedding: nn.Embedding, record: EmbeddingRecord) -> None:
        super().__init__(embedding.num_embeddings, embedding.embedding_dim)
        self.record = record

    def forward(self, input_ids: Tensor) -> Tensor:
        rows = super().forward(input_ids)
        self.record.record(rows)
        return rows


class BridgeCircuitHooks(CircuitHooks):
    """``model.circuit``: TL 3's :class:`~induction_bigram.hooks.circuit.CircuitHooks` plus the
    ``get_hooks`` by which ``TransformerBridge`` registers ``circuit.hook_*``."""

    def get_hooks(self) -> dict[str, HookPoint]:
        return {
            "hook_previous_token": self.hook_previous_token,
            "hook_induction": self.hook_induction,
            "hook_global": self.hook_global,
        }


class CheckedNativeModel(NativeModel):
    """``NativeModel`` whose input is checked first (a :class:`DataError` names the bad id or
    length, where TL 4 gives a bare ``IndexError`` or ``ValueError``)."""

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, **kwargs):
        if kwargs.get("past_kv_cache") is not None or kwargs.get("past_key_values") is not None:
            # the native attention (TL's and ours) keeps no keys and values: a cached step would
            # attend to the new tokens alone, a silently wrong answer
            raise ConfigError(
                f"a KV cache (past_kv_cache) cannot be used with induction_bigram models on TransformerLens "
                f"{_version('transformer-lens')}: TL 4's native model keeps no keys and values; run the whole prompt "
                "(generate(use_past_kv_cache=True) does), or use TransformerLens 3"
            )
        if input_ids is None and inputs_embeds is None:
            return super().forward(input_ids, attention_mask, position_ids, inputs_embeds, **kwargs)
        if input_ids is not None:
            check_token_tensor(input_ids, self.cfg.d_vocab, self.cfg.n_ctx, ranks=(2,))
        n = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if position_ids is not None and position_ids.numel():
            n = max(n, int(position_ids.max()) + 1)
        check_context_length(n, self.cfg.n_ctx)
        return super().forward(input_ids, attention_mask, position_ids, inputs_embeds, **kwargs)


# -- wiring, after TransformerBridge wrapped the native model -----------------------------------


def _native_attn(bridge, layer: int) -> "CircuitAttention":
    return bridge.blocks[layer].attn.original_component


def wire_hooks(bridge, circuit: bool) -> None:
    """Fire each bridge's ``hook_attn_scores`` inside our attention; add ``circuit.*`` and the hook
    points of an encoding's score module (``blocks.0.attn.rel_pos.hook_bias``) to the bridge's."""
    n_layers = len(bridge.blocks)
    for layer in range(n_layers):
        attn = bridge.blocks[layer].attn
        attn.original_component._scores_point = (attn.hook_attn_scores,)
        attn.original_component._bridge = (attn,)
        attn.supports_attn_result = True  # set_use_attn_result: we fire hook_result (_per_head_output)
    if circuit:
        bridge.circuit = BridgeCircuitHooks()  # TransformerBridge.__setattr__ registers circuit.hook_*
        if n_layers == 2:
            _native_attn(bridge, 0)._circuit_point = (bridge.circuit.hook_previous_token,)
        _native_attn(bridge, n_layers - 1)._circuit_point = (bridge.circuit.hook_induction,)
        if not bridge.cfg.attn_only:
            bridge.blocks[n_layers - 1].mlp.original_component._circuit_point = (bridge.circuit.hook_global,)
    rel_pos = getattr(bridge.original_model, SCORES_MODULE, None)
    if rel_pos is not None:
        # the bridge's hook scan skips the inside of original components: show the points under
        # their TL 3 names through a holder without parameters, then scan again
        holder = nn.Module()
        for name, point in rel_pos.named_children():
            if isinstance(point, HookPoint):
                setattr(holder, name, point)
        setattr(bridge.blocks[0].attn, SCORES_MODULE, holder)
        bridge._scan_existing_hooks(bridge, "")
