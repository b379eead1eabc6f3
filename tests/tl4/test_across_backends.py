"""A run trained under one TransformerLens backend loads under the other with the same logits
(checkpoints hold ``portable_state_dict``: TL 3's names and layouts). The other backend is the
other venv of the Makefile (``.venv`` for TL 3.9, ``.venv-tl4`` for TL 4.3); ``.ci/run`` builds
``.venv`` first, so the TL 4 run checks a TL 4 checkpoint under TL 3."""

from __future__ import annotations

import subprocess

import pytest
import torch

import induction_bigram as ib
from induction_bigram.model.backend import TL4
from tests.conftest import REPO, tiny_config

OTHER = REPO / (".venv" if TL4 else ".venv-tl4") / "bin" / "python"
LOAD = """
import sys, torch, induction_bigram as ib
model = ib.load(sys.argv[1], "cpu")
torch.save({"logits": model(torch.load(sys.argv[2])).detach(), "class": type(model).__name__}, sys.argv[3])
"""


@pytest.mark.skipif(not OTHER.exists(), reason=f"the other backend's venv {OTHER.parent.parent.name} is not built")
def test_a_checkpoint_written_here_gives_the_same_logits_under_the_other_backend(tmp_path):
    ib.train(tiny_config(), tmp_path / "run", progress=False)
    model = ib.load(tmp_path / "run", "cpu")
    tokens = torch.randint(0, model.cfg.d_vocab, (2, model.cfg.n_ctx), generator=torch.Generator().manual_seed(0))
    torch.save(tokens, tmp_path / "tokens.pt")
    done = subprocess.run(
        [str(OTHER), "-c", LOAD, str(tmp_path / "run"), str(tmp_path / "tokens.pt"), str(tmp_path / "out.pt")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    there = torch.load(tmp_path / "out.pt")
    assert there["class"] == ("HookedTransformer" if TL4 else "TransformerBridge")
    torch.testing.assert_close(there["logits"], model(tokens).detach(), atol=1e-5, rtol=0)
