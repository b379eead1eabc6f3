"""The initial weights of the paper's model (docs/THEORY.md section 2), by TL 3 parameter name:
the one source both backends load (:func:`induction_bigram.model.circuit.build_model` directly,
:func:`induction_bigram.model.tl4.build_model` converted to the bridge's layout).

Random frozen matrices are N(0, 1/d), each from its own generator seeded by (seed, name)
(:func:`~.access.seeded_normal`), so the same config gives bitwise the same model and a model
with a longer ``n_ctx`` shares its first positions with a shorter one; W_Q and a linear FFN's
W_in are the identity; every other tensor, the trained ones included, starts at zero (the table
in :mod:`.circuit`'s doc). The positional encoding gives its own tensors' values
(:attr:`~.encodings.Encoding.initial`: W_pos, b_(t-s), rotary's query and key biases).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from induction_bigram.config import ModelConfig
from induction_bigram.model.access import hidden_width, seeded_normal
from induction_bigram.model.encodings import encoding


def initial_weights(cfg: ModelConfig) -> dict[str, Tensor]:
    """Every parameter of ``cfg``'s model at initialisation, by TL 3 name, in TL 3's layout, on
    the CPU."""
    d, last = cfg.d_model, cfg.n_layers - 1
    std = 1.0 / math.sqrt(d)

    def normal(name: str, shape: tuple[int, ...]) -> Tensor:
        return seeded_normal(cfg.seed, name, shape, std)

    state = {
        "embed.W_E": normal("embed.W_E", (cfg.d_vocab, d)),
        "unembed.W_U": normal("unembed.W_U", (d, cfg.d_vocab)),
        "unembed.b_U": torch.zeros(cfg.d_vocab),
    }
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}.attn."
        state[p + "W_Q"] = torch.eye(d)[None]
        state[p + "W_K"] = torch.zeros(1, d, d)
        state[p + "W_V"] = normal(p + "W_V", (1, d, d))
        state[p + "W_O"] = normal(p + "W_O", (1, d, d)) if layer < last else torch.zeros(1, d, d)
        for b in "QKV":
            state[p + f"b_{b}"] = torch.zeros(1, d)
        state[p + "b_O"] = torch.zeros(d)
        if cfg.ffn != "none":
            m, h = f"blocks.{layer}.mlp.", hidden_width(cfg)
            if layer == last and cfg.ffn == "linear":
                w_in = torch.eye(d)
            elif layer == last and cfg.ffn == "relu":
                w_in = normal(m + "W_in", (d, h))
            else:
                w_in = torch.zeros(d, h)
            state |= {m + "W_in": w_in, m + "b_in": torch.zeros(h), m + "W_out": torch.zeros(h, d)}
            state[m + "b_out"] = torch.zeros(d)
    return state | encoding(cfg).initial(cfg, normal)
