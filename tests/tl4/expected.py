"""The TL 3.9 logits of every shipped model, and of a small model of every variant (with seeded
trained tensors), on a few fixed prompts, stored in
``tests/tl4/expected_logits.safetensors``, so the TL 4 suite compares the TransformerBridge with
real HookedTransformer output (``test_expected_logits.py``: on TL 3 it checks the file is current,
on TL 4 that the bridge matches it within 1e-5).

Regenerate under TransformerLens 3 (after a shipped model changes)::

    .venv/bin/python -m tests.tl4.expected
"""

from __future__ import annotations

from pathlib import Path

import torch

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
    for positional in ("ape", "rpe", "rope", "nope")
    for ffn in ("none", "linear")
} | {
    "ape-relu": dict(positional="ape", ffn="relu", d_mlp=24),
    "rope-qkbias": dict(positional="rope", rope_qk_bias=True),
}
VOCAB = tuple("abcdefghij")


def variant_model(name: str):
    """``build_model`` of a small variant (d = 16, n_ctx = 12, N = 10), every trained tensor
    set to seeded values drawn in TL 3's layout (so both backends hold the same model)."""
    from induction_bigram.config import ModelConfig
    from induction_bigram.model import build_model, trainable_parameters
    from induction_bigram.model.backend import TL4

    model = build_model(
        ModelConfig(d_model=16, n_ctx=12, d_vocab=len(VOCAB), seed=3, **VARIANTS[name]), "cpu", vocab=VOCAB
    )
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for tl3_name, param in sorted(trainable_parameters(model), key=lambda pair: pair[0]):
            if not TL4:
                param.copy_(torch.randn(param.shape, generator=g) * 0.5)
            elif ".attn.W_" in tl3_name:  # TL 3 [1, d_in, d_out] -> nn.Linear [d_out, d_in]
                param.copy_(torch.randn((1, *param.T.shape), generator=g)[0].T * 0.5)
            elif ".mlp.W_" in tl3_name:
                param.copy_(torch.randn(param.T.shape, generator=g).T * 0.5)
            elif ".attn.b_" in tl3_name:  # TL 3 [1, d_head]
                param.copy_(torch.randn((1, *param.shape), generator=g)[0] * 0.5)
            else:
                param.copy_(torch.randn(param.shape, generator=g) * 0.5)
    return model.eval()


@torch.no_grad()
def variant_logits(name: str, model) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return {f"variant.{name}": model(torch.randint(0, len(VOCAB), (2, 12), generator=g)).float().cpu()}


def compute() -> dict[str, torch.Tensor]:
    from induction_bigram.pretrained import available, load_pretrained

    out: dict[str, torch.Tensor] = {}
    for name in available():
        out |= logits_of(load_pretrained(name, "cpu"), name)
    for name in VARIANTS:
        out |= variant_logits(name, variant_model(name))
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
