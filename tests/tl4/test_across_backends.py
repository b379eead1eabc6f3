"""A run trained under one TransformerLens backend loads under the other with the same logits,
and resumes there as it would here (checkpoints hold ``portable_state_dict`` and
``portable_optimizer_state``: TL 3's names and layouts). The other backend is the
other venv of the Makefile (``.venv`` for TL 3.9, ``.venv-tl4`` for TL 4.3); ``.ci/run`` builds
both before either suite runs, so each suite checks its checkpoints under the other backend."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch

import induction_bigram as ib
from induction_bigram.model import TL4, portable_state_dict
from induction_bigram.training.checkpoint import load_checkpoint
from tests.conftest import REPO, tiny_config
from tests.numerics import assert_float32_close

OTHER = REPO / (".venv" if TL4 else ".venv-tl4") / "bin" / "python"
LOAD = """
import sys, torch, induction_bigram as ib
model = ib.load(sys.argv[1], "cpu")
torch.save({"logits": model(torch.load(sys.argv[2])).detach(), "class": type(model).__name__}, sys.argv[3])
"""


RESUME = """
import sys, induction_bigram as ib
from tests.conftest import tiny_config
ib.train(tiny_config(**{"model.ffn": "relu", "train.steps": 12}), sys.argv[1], resume=True, progress=False)
"""
other_backend = pytest.mark.skipif(
    not OTHER.exists(), reason=f"the other backend's venv {OTHER.parent.parent.name} is not built"
)


def run_there(code: str, *args) -> None:
    done = subprocess.run([str(OTHER), "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@other_backend
def test_a_run_resumes_under_the_other_backend_as_it_would_here(tmp_path):
    ib.train(tiny_config(**{"model.ffn": "relu", "train.steps": 8}), tmp_path / "here", progress=False)
    shutil.copytree(tmp_path / "here", tmp_path / "there")
    ib.train(tiny_config(**{"model.ffn": "relu", "train.steps": 12}), tmp_path / "here", resume=True, progress=False)
    run_there(RESUME, tmp_path / "there")
    here, there = (portable_state_dict(ib.load(tmp_path / name, "cpu")) for name in ("here", "there"))
    assert load_checkpoint(tmp_path / "there", "cpu").step == 12
    for name, tensor in here.items():
        torch.testing.assert_close(there[name], tensor, atol=1e-5, rtol=1e-4, msg=name)


@other_backend
def test_a_checkpoint_written_here_gives_the_same_logits_under_the_other_backend(tmp_path):
    ib.train(tiny_config(), tmp_path / "run", progress=False)
    model = ib.load(tmp_path / "run", "cpu")
    tokens = torch.randint(0, model.cfg.d_vocab, (2, model.cfg.n_ctx), generator=torch.Generator().manual_seed(0))
    torch.save(tokens, tmp_path / "tokens.pt")
    run_there(LOAD, tmp_path / "run", tmp_path / "tokens.pt", tmp_path / "out.pt")
    there = torch.load(tmp_path / "out.pt")
    assert there["class"] == ("HookedTransformer" if TL4 else "TransformerBridge")
    assert_float32_close(there["logits"], model(tokens).detach(), "logits under the other backend")
