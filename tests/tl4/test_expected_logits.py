"""Shipped models, and a small model of every variant and of the standard model, give TL 3.9's
logits on either backend (within float32 rounding at the logits' magnitude, ``tests/numerics.py``:
the file was written on another host), and either backend writes TL 3.9's weights."""

from __future__ import annotations

from importlib import resources

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from induction_bigram.model import CONFIG_BUFFERS, load_weights, portable_state_dict
from induction_bigram.model.backend import TL4
from induction_bigram.pretrained import WEIGHTS, available, load_pretrained, standard_models
from tests.numerics import assert_float32_close
from tests.tl4.expected import (
    FILE,
    STANDARD,
    VARIANTS,
    logits_of,
    standard_model,
    stored_weights,
    variant_logits,
    variant_model,
)


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return load_file(str(FILE))


def test_the_file_holds_tl3_logits_of_every_shipped_model(expected):
    with safe_open(str(FILE), "pt") as handle:
        assert handle.metadata()["transformer_lens"].startswith("3.")
    assert {key.split(".")[0] for key in expected} == set(available() + standard_models()) | {"variant", "weights"}
    small = set(VARIANTS) | {f"natural-{positional}" for positional in STANDARD}
    assert {key.split(".")[1] for key in expected if key.startswith("variant.")} == small


@pytest.mark.parametrize("name", available() + standard_models())
def test_shipped_model_logits(name, expected):
    """TL 3: the stored logits are this model's (regenerate: python -m tests.tl4.expected).
    TL 4: the TransformerBridge gives them too."""
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


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_weights_are_written_as_tl3_writes_them(name, expected):
    """``portable_state_dict`` gives TL 3's names, layouts and values on either backend, so a
    checkpoint written under TL 4 loads under TL 3."""
    assert_same_weights(portable_state_dict(variant_model(name)), stored_weights(expected, f"variant-{name}"))


@pytest.mark.parametrize("positional", STANDARD)
def test_standard_model_loads_tl3_weights_and_gives_tl3_logits(positional, expected):
    """TL 4 initialises a standard model its own way; with TL 3's weights loaded it is TL 3's model."""
    name = f"natural-{positional}"
    model = standard_model(positional)
    load_weights(model, stored_weights(expected, name))
    compare(variant_logits(name, model), expected)
    assert_same_weights(portable_state_dict(model), stored_weights(expected, name))


@pytest.mark.parametrize("name", available() + standard_models())
def test_shipped_weights_round_trip(name):
    """A shipped model, loaded and written again, is its file (TL 3 wrote them all)."""
    with resources.as_file(resources.files("induction_bigram.pretrained") / name / WEIGHTS) as path:
        shipped = {k: v for k, v in load_file(str(path)).items() if not CONFIG_BUFFERS.fullmatch(k)}
    assert_same_weights(portable_state_dict(load_pretrained(name, "cpu")), shipped)


def assert_same_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].shape == value.shape and torch.equal(got[key], value), key


def compare(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    for key, logits in got.items():
        assert_float32_close(logits, expected[key], f"{key} against the stored TL 3.9 logits")
