"""docs/extending.md, "A new positional encoding", followed step by step: a toy encoding (ALiBi with a
learned slope) is added here, in the test, through the registry alone, and built, trained, saved,
loaded and run with ``run_with_cache`` on whichever backend this venv has."""

from __future__ import annotations

import ast
import dataclasses

import pytest
import torch
from torch import nn
from transformer_lens.hook_points import HookPoint

import induction_bigram as ib
from induction_bigram.config import POSITIONAL_ENCODINGS, ModelConfig, preset, tiny
from induction_bigram.errors import ConfigError
from induction_bigram.model import describe, trainable_parameters
from induction_bigram.model.encodings import ENCODINGS, Encoding, zero_positions
from induction_bigram.training.fused import FusedLoss, logits_loss
from tests.conftest import REPO, model_of, randomise_trainables

PACKAGE = REPO / "induction_bigram"

SLOPE = "blocks.0.attn.rel_pos.slope"


class LearnedSlope(nn.Module):
    """-m (t - s) on layer 1's scores, one learned slope m (ALiBi's bias with m trained)."""

    def __init__(self) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.zeros(()))
        self.hook_slope = HookPoint()  # [batch, head, query_pos, key_pos]

    def forward(self, batch: int, n_heads: int, n_query: int, n_key: int) -> torch.Tensor:
        queries = torch.arange(n_key - n_query, n_key, device=self.slope.device)
        offsets = (queries[:, None] - torch.arange(n_key, device=self.slope.device)).clamp_min(0)
        return self.hook_slope((-self.slope * offsets).expand(batch, n_heads, n_query, n_key))


TOY = Encoding(  # the one file's entry: steps 1-3 of the page
    summary="a learned slope -m (t - s) on layer 1's scores, {scores}",
    initial=lambda cfg, normal: zero_positions(cfg, normal) | {SLOPE: normal(SLOPE, ())},
    trained=lambda cfg: [SLOPE],
    scores=lambda cfg: LearnedSlope(),
)


@pytest.fixture
def toy(monkeypatch):
    """Step 4: its name in the config's table and its entry in the registry."""
    monkeypatch.setitem(POSITIONAL_ENCODINGS, "alibi", 2)
    monkeypatch.setitem(ENCODINGS, "alibi", TOY)


def test_a_name_without_an_entry_is_refused_with_the_closest_one():
    with pytest.raises(ConfigError, match=r"model.positional must be one of .*got 'alibi'"):
        ModelConfig(positional="alibi")
    with pytest.raises(ConfigError, match=r"did you mean 'rope'\?"):
        ModelConfig(positional="rop")


def test_the_toy_encoding_builds_with_its_module_on_the_forward_path(toy):
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=12, d_vocab=65, positional="alibi")))
    assert "a learned slope" in describe(model)
    assert SLOPE in dict(trainable_parameters(model))
    tokens = torch.randint(0, 65, (3, 12), generator=torch.Generator().manual_seed(0))
    logits, cache = model.run_with_cache(tokens)
    slope = dict(trainable_parameters(model))[SLOPE].item()
    offsets = (torch.arange(12)[:, None] - torch.arange(12)).clamp_min(0)
    assert torch.allclose(cache["blocks.0.attn.rel_pos.hook_slope"][0, 0], -slope * offsets.float())
    flat = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.rel_pos.hook_slope", lambda b, hook: 0 * b)])
    assert not torch.allclose(flat, logits)  # the term is on layer 1's scores: removing it changes the model


def test_the_fused_loss_computes_the_toy_model(toy):
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=12, d_vocab=65, positional="alibi")))
    tokens = torch.randint(0, 65, (4, 12), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 65, (4, 12), generator=torch.Generator().manual_seed(2))
    selected = torch.rand(4, 12, generator=torch.Generator().manual_seed(3)) < 0.4
    normalizer = selected.sum()
    fused = FusedLoss(model)(tokens, targets, selected, normalizer)
    forward = logits_loss(model)(tokens, targets, selected, normalizer)
    assert torch.allclose(fused, forward, rtol=1e-5, atol=1e-6)


def test_the_toy_encoding_trains_saves_and_loads(toy, tmp_path):
    config = tiny(preset("quick"), seq_len=12, steps=6).with_overrides({"model.positional": "alibi"})
    result = ib.train(config, tmp_path / "run", progress=False)
    start = model_of(dataclasses.replace(config.model, d_vocab=result.model.cfg.d_vocab))
    trained = dict(trainable_parameters(result.model))[SLOPE]
    assert trained.item() != dict(trainable_parameters(start))[SLOPE].item()
    loaded = ib.load(tmp_path / "run")
    tokens = torch.randint(0, result.model.cfg.d_vocab, (2, 12), generator=torch.Generator().manual_seed(4))
    assert torch.equal(loaded(tokens), result.model(tokens))
    assert dict(trainable_parameters(loaded))[SLOPE].item() == trained.item()


BUILDERS = ["hooks", "model", "training"]  # what builds, trains and saves a model of any encoding


@pytest.mark.parametrize(
    "path",
    sorted(p for part in BUILDERS for p in (PACKAGE / part).rglob("*.py") if "encodings" not in p.parts),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_registry_names_an_encoding_where_models_are_built_and_trained(path):
    """An encoding is its registry entry: nothing that builds, trains or saves a model branches on its name."""
    named = {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in POSITIONAL_ENCODINGS
    }
    assert not named, f"{path.relative_to(PACKAGE)} names {sorted(named)}"
