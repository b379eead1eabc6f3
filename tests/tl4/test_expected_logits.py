"""Shipped models, and a small model of every variant, give TL 3.9's logits on either backend
(issue 16: within 1e-5)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from induction_bigram.model.backend import TL4
from induction_bigram.pretrained import available, load_pretrained
from tests.tl4.expected import FILE, VARIANTS, logits_of, variant_logits, variant_model

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return load_file(str(FILE))


def test_the_file_holds_tl3_logits_of_every_shipped_model(expected):
    with safe_open(str(FILE), "pt") as handle:
        assert handle.metadata()["transformer_lens"].startswith("3.")
    assert {key.split(".")[0] for key in expected} == set(available()) | {"variant"}
    assert {key.split(".")[1] for key in expected if key.startswith("variant.")} == set(VARIANTS)


@pytest.mark.parametrize("name", available())
def test_shipped_model_logits(name, expected):
    """TL 3: the stored logits are this model's (regenerate: python -m tests.tl4.expected).
    TL 4: the TransformerBridge gives them within 1e-5."""
    model = load_pretrained(name, "cpu")
    if TL4:
        from transformer_lens.model_bridge import TransformerBridge

        assert isinstance(model, TransformerBridge)
    got = logits_of(model, name)
    assert set(got) == {key for key in expected if key.startswith(f"{name}.")}
    compare(got, expected)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_logits(name, expected):
    """Every variant: the same initial frozen matrices and the same function of the trained
    tensors on both backends."""
    compare(variant_logits(name, variant_model(name)), expected)


def compare(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    for key, logits in got.items():
        assert logits.shape == expected[key].shape, key
        diff = (logits - expected[key]).abs().max().item()
        assert diff <= (TOLERANCE if TL4 else 1e-6), f"{key}: max |logits - TL 3.9| = {diff:.2e}"
