"""The one training loop (training/trainer.py): a third model family plugs in as its module doc
says (a config class, a setup returning a sampler, a loss and an evaluator, a FAMILIES entry),
and ``train`` trains it, with run folders, resume and checkpoints that ``load`` reads, with
nothing else written."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from induction_bigram import load
from induction_bigram.config.standard import StandardConfig, standard_preset
from induction_bigram.errors import CheckpointError
from induction_bigram.model import build_standard_model, portable_state_dict
from induction_bigram.training import checkpoint
from induction_bigram.training.checkpoint import load_checkpoint
from induction_bigram.training.standard_loss import next_character_loss
from induction_bigram.training.trainer import Plan, train, train_or_load

VOCAB = "abcdefgh"


@dataclass(frozen=True)
class CopyConfig(StandardConfig):
    """A toy task's config: random sequences repeated once, on a standard TL model."""


def _setup(config: CopyConfig, ckpt):
    """The toy family's part: a sampler, a loss and an evaluator."""
    if ckpt is None:
        model = build_standard_model(config.model, "cpu")
        generator = torch.Generator().manual_seed(config.train.seed)
    else:
        model, generator = ckpt.model, torch.Generator()
    half = (config.model.n_ctx + 1) // 2 + 1

    def sample(generator):
        first = torch.randint(len(VOCAB), (config.train.batch_size, half), generator=generator)
        return torch.cat([first, first], 1)[:, : config.model.n_ctx + 1]

    def loss(batch):
        value = next_character_loss(model(batch[:, :-1]), batch)
        value.backward()
        return value.item()

    held_out = sample(torch.Generator().manual_seed(123))
    return Plan(
        config,
        model,
        torch.optim.AdamW(model.parameters(), lr=config.train.lr),
        generator,
        sample=sample,
        loss=loss,
        evaluate=lambda model: {"copy_loss": float(next_character_loss(model(held_out[:, :-1]), held_out))},
        tokens_per_step=config.train.batch_size * config.model.n_ctx,
    )


@pytest.fixture
def copy_family(monkeypatch):
    family = checkpoint.Family(
        "copy",
        "copy",
        CopyConfig,
        lambda c, stats, device: (c, build_standard_model(c.model, device)),
        lambda track: _setup,
    )
    monkeypatch.setitem(checkpoint.FAMILIES, "copy", family)


def _config(steps: int) -> CopyConfig:
    base = standard_preset("standard-test").with_overrides({"model.vocab": VOCAB, "train.steps": steps})
    return CopyConfig(base.data, base.model, base.train)


def test_a_third_family_trains_resumes_bitwise_and_loads(copy_family, tmp_path):
    whole = train(_config(6), tmp_path / "whole", progress=False)
    train(_config(3), tmp_path / "cut", progress=False)
    resumed = train(_config(6), tmp_path / "cut", resume=True, progress=False)
    assert [r["step"] for r in resumed.metrics] == [0, 3, 6] and "copy_loss" in resumed.final
    a, b = portable_state_dict(whole.model), portable_state_dict(resumed.model)
    assert all(torch.equal(a[name], b[name]) for name in a)
    ckpt = load_checkpoint(tmp_path / "cut", "cpu")
    assert isinstance(ckpt.config, CopyConfig) and ckpt.step == 6 and ckpt.stats is None
    assert torch.equal(load(tmp_path / "cut", "cpu").W_E, whole.model.W_E)
    reused = train_or_load(_config(6), tmp_path / "cut", progress=False)
    assert reused.metrics == resumed.metrics  # finished: returned, not trained again
    with pytest.raises(CheckpointError, match="is a run of `copy`, not of `standard`"):
        load_checkpoint(tmp_path / "cut", "cpu", family="standard")


def test_train_names_the_families_when_given_a_config_of_none():
    base = _config(1)
    with pytest.raises(TypeError, match="CopyConfig is the config of no model family .*RunConfig, StandardConfig"):
        train(base, None, progress=False)
