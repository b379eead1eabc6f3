"""The TL 3.9 logits of every shipped model (the standard TL ones included), and of a small model
of every variant (with seeded trained tensors) and of the standard model, on a few fixed prompts, stored in
``tests/tl4/expected_logits.safetensors`` with those small models' weights as TL 3 saves them
(``weights.<model>.<name>``), so the TL 4 suite compares the TransformerBridge with real
HookedTransformer output (``test_expected_logits.py``: on TL 3 it checks the file is current,
on TL 4 that the bridge matches it within float32 rounding, ``tests/numerics.py``, and
writes the same weights).

Regenerate under TransformerLens 3 (after a shipped model changes)::

    .venv/bin/python -m tests.tl4.expected
"""

from __future__ import annotations

from pathlib import Path

import torch

from induction_bigram.config import POSITIONAL_ENCODINGS

FILE = Path(__file__).with_name("expected_logits.safetensors")
SHORT = 24  # positions of the two short prompts
TAIL = 4  # positions kept of the full-context prompt (its last ones)


def prompts(name: str, d_vocab: int, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two short random prompts and one of the full context, fixed per model name."""
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    return torch.randint(0, d_vocab, (2, SHORT), generator=g), torch.randint(0, d_vocab, (1, n_ctx), generator=g)


@torch.no_grad()
def logits_of(model, name: str) -> dict[str, torch.Tensor]:
    short, full = prompts(name, model.cfg.d_vocab, model.cfg.n_ctx)
    return {
        f"{name}.short": model(short).float().cpu(),
        f"{name}.full_tail": model(full)[:, -TAIL:].float().cpu(),
    }


VARIANTS = {
    f"{positional}-{ffn}": dict(positional=positional, ffn=ffn)
    for positional in POSITIONAL_ENCODINGS
    for ffn in ("none", "linear")
} | {
    "ape-relu": dict(positional="ape", ffn="relu", d_mlp=24),
    "rope-qkbias": dict(positional="rope", rope_qk_bias=True),
    "ape-linear-token": dict(positional="ape", ffn="linear", ffn_reads="token"),
}
VOCAB = tuple("abcdefghij")


def variant_model(name: str):
    """``build_model`` of a small variant (d = 16, n_ctx = 12, N = 10), every trained tensor
    set to seeded values drawn in TL 3's layout (so both backends hold the same model)."""
    from induction_bigram.config import ModelConfig
    from induction_bigram.model import build_model, load_weights, portable_state_dict, trainable_names

    config = ModelConfig(d_model=16, n_ctx=12, d_vocab=len(VOCAB), seed=3, **VARIANTS[name])
    model = build_model(config, "cpu", vocab=VOCAB)
    state = portable_state_dict(model)
    g = torch.Generator().manual_seed(7)
    for tl3_name in sorted(trainable_names(config)):
        state[tl3_name] = torch.randn(state[tl3_name].shape, generator=g) * 0.5
    return load_weights(model, state).eval()


STANDARD = ("standard", "rotary")
"""The standard model's positional encodings checked here; their stored keys, natural-<positional>, keep the
family's former name."""


def standard_model(positional: str):
    """A small standard model (2 layers of 2 heads, LayerNorm), TL's own initialisation."""
    from induction_bigram.config.standard import StandardModelConfig
    from induction_bigram.model import build_standard_model

    config = StandardModelConfig(n_heads=2, d_model=16, d_head=8, n_ctx=12, positional=positional, seed=5)
    return build_standard_model(config, "cpu", vocab="".join(VOCAB)).eval()


def weights_of(model, name: str) -> dict[str, torch.Tensor]:
    from induction_bigram.model import portable_state_dict

    return {f"weights.{name}.{key}": value for key, value in portable_state_dict(model).items()}


def stored_weights(expected: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = f"weights.{name}."
    return {key.removeprefix(prefix): value for key, value in expected.items() if key.startswith(prefix)}


@torch.no_grad()
def variant_logits(name: str, model) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return {f"variant.{name}": model(torch.randint(0, len(VOCAB), (2, 12), generator=g)).float().cpu()}


def compute() -> dict[str, torch.Tensor]:
    from induction_bigram.pretrained import available, load_pretrained, standard_models

    out: dict[str, torch.Tensor] = {}
    for name in available() + standard_models():
        out |= logits_of(load_pretrained(name, "cpu"), name)
    for name in VARIANTS:
        model = variant_model(name)
        out |= variant_logits(name, model) | weights_of(model, f"variant-{name}")
    for positional in STANDARD:
        model = standard_model(positional)
        out |= variant_logits(f"natural-{positional}", model) | weights_of(model, f"natural-{positional}")
    return out


def main() -> None:
    from safetensors.torch import save_file

    from induction_bigram.model.backend import TL4, TL_VERSION

    if TL4:
        raise SystemExit(f"the expected logits are TL 3's; this is TransformerLens {TL_VERSION}")
    torch.set_num_threads(1)
    save_file({k: v.contiguous() for k, v in compute().items()}, str(FILE), metadata={"transformer_lens": TL_VERSION})
    print(f"wrote {FILE} (TransformerLens {TL_VERSION})")


if __name__ == "__main__":
    main()
