"""scripts/upgrade_checkpoints.py: checkpoints of the formats before version 2 load and resume
bitwise after the upgrade (the older payloads are made from new ones by undoing what version 2
added: the family, and for natural runs the format name, version and text hash)."""

from __future__ import annotations

import importlib.util
import json
import sys

import torch

from induction_bigram import train
from induction_bigram.config.natural import natural_preset
from induction_bigram.model import portable_state_dict
from induction_bigram.training.checkpoint import load_checkpoint
from induction_bigram.training.natural import train_natural
from tests.conftest import REPO, tiny_config

spec = importlib.util.spec_from_file_location("upgrade_checkpoints", REPO / "scripts" / "upgrade_checkpoints.py")
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script
spec.loader.exec_module(script)


def _rewrite(path, change):
    payload = torch.load(path, weights_only=True)
    torch.save(change(payload), path)


def _version_1(payload):
    payload = {**payload, "version": 1}
    del payload["family"]
    return payload


def _natural_0(payload):
    config = json.loads(payload["config"])
    config["data"]["sha256"] = ""  # the oldest natural runs hashed no text
    kept = ("config", "model_state", "optimizer_state", "step", "elapsed_seconds", "data_rng_state")
    return {"format": script.NATURAL_V0, **{key: payload[key] for key in kept}, "config": json.dumps(config)}


def test_a_version_1_run_resumes_bitwise_after_the_upgrade(tmp_path):
    whole = train(tiny_config(), tmp_path / "whole", progress=False)
    train(tiny_config(**{"train.steps": 5}), tmp_path / "cut", progress=False)
    _rewrite(tmp_path / "cut" / "checkpoint.pt", _version_1)
    assert "upgraded to version 2 (circuit)" in script.upgrade(tmp_path / "cut")
    assert "already version 2" in script.upgrade(tmp_path / "cut")
    resumed = train(tiny_config(), tmp_path / "cut", resume=True, progress=False)
    a, b = portable_state_dict(whole.model), portable_state_dict(resumed.model)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_an_unversioned_natural_run_gets_its_texts_hash_and_resumes(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log.\n" * 40, encoding="utf-8")
    cfg = natural_preset("natural-test").with_overrides({"data.text": str(text)})
    whole = train_natural(cfg, tmp_path / "whole", progress=False)
    train_natural(cfg.with_overrides({"train.steps": 4}), tmp_path / "cut", progress=False)
    _rewrite(tmp_path / "cut" / "checkpoint.pt", _natural_0)
    assert "upgraded to version 2 (natural)" in script.upgrade(tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut", "cpu").config.data.sha256 == whole.config.data.sha256
    resumed = train_natural(cfg, tmp_path / "cut", resume=True, progress=False)
    a, b = portable_state_dict(whole.model), portable_state_dict(resumed.model)
    assert all(torch.equal(a[name], b[name]) for name in a)
