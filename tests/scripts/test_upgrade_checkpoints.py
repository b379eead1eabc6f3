"""scripts/upgrade_checkpoints.py: checkpoints of the formats before version 2 load and resume
bitwise after the upgrade (the older payloads are made from new ones by undoing what version 2
added: the family, and for runs of the `standard` command the format name, version and text hash)."""

from __future__ import annotations

import importlib.util
import json
import sys

import torch

from induction_bigram import train
from induction_bigram.config.standard import standard_preset
from induction_bigram.model import portable_state_dict
from induction_bigram.training.checkpoint import load_checkpoint
from induction_bigram.training.standard import train_standard
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


def _standard_0(payload):
    config = json.loads(payload["config"])
    config["data"]["sha256"] = ""  # the oldest such runs hashed no text
    kept = ("config", "model_state", "optimizer_state", "step", "elapsed_seconds", "data_rng_state")
    return {"format": script.STANDARD_V0, **{key: payload[key] for key in kept}, "config": json.dumps(config)}


def test_a_version_1_run_resumes_bitwise_after_the_upgrade(tmp_path):
    whole = train(tiny_config(), tmp_path / "whole", progress=False)
    train(tiny_config(**{"train.steps": 5}), tmp_path / "cut", progress=False)
    _rewrite(tmp_path / "cut" / "checkpoint.pt", _version_1)
    assert "upgraded to version 2 (circuit)" in script.upgrade(tmp_path / "cut")
    assert "already version 2" in script.upgrade(tmp_path / "cut")
    resumed = train(tiny_config(), tmp_path / "cut", resume=True, progress=False)
    a, b = portable_state_dict(whole.model), portable_state_dict(resumed.model)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_an_unversioned_standard_run_gets_its_texts_hash_and_resumes(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log.\n" * 40, encoding="utf-8")
    cfg = standard_preset("standard-test").with_overrides({"data.text": str(text)})
    whole = train_standard(cfg, tmp_path / "whole", progress=False)
    train_standard(cfg.with_overrides({"train.steps": 4}), tmp_path / "cut", progress=False)
    _rewrite(tmp_path / "cut" / "checkpoint.pt", _standard_0)
    assert "upgraded to version 2 (standard)" in script.upgrade(tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut", "cpu").config.data.sha256 == whole.config.data.sha256
    resumed = train_standard(cfg, tmp_path / "cut", resume=True, progress=False)
    a, b = portable_state_dict(whole.model), portable_state_dict(resumed.model)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_version_2_run_of_the_family_once_named_natural_becomes_standard(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat.\n" * 40, encoding="utf-8")
    cfg = standard_preset("standard-test").with_overrides({"data.text": str(text), "train.steps": 2})
    train_standard(cfg, tmp_path / "run", progress=False)
    _rewrite(tmp_path / "run" / "checkpoint.pt", lambda payload: {**payload, "family": "natural"})
    assert "upgraded to version 2 (standard)" in script.upgrade(tmp_path / "run")
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["family"] == "standard"
