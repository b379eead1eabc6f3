"""The speed anchor of benchmarks/ (a plain-PyTorch copy of the model) computes our function."""

from __future__ import annotations

import sys

import pytest
import torch

from benchmarks.plain_model import TL_TO_PAPER, PlainModel, in_context_loss, make_optimizer
from induction_bigram import BigramStats, TriggerTask, build_model, preset
from induction_bigram.config import ModelConfig, TaskConfig
from induction_bigram.model import get_paper_matrix, model_config, set_paper_matrix, trainable_parameters
from induction_bigram.training.loop import learning_rate_multipliers
from induction_bigram.training.loop import make_optimizer as make_our_optimizer
from induction_bigram.training.metrics import masked_cross_entropy
from tests.conftest import REPO, randomise_trainables

pytestmark = pytest.mark.benchmark  # make test-fast leaves the benchmarks out

D, T = 16, 24


@pytest.fixture(scope="module")
def setup():
    stats = BigramStats.default()
    cfg = ModelConfig(d_model=D, n_ctx=T, d_vocab=stats.n_tokens)
    ours = randomise_trainables(build_model(cfg, "cpu", vocab=stats.vocab), seed=3)
    task = TriggerTask(stats, TaskConfig(seq_len=T, n_triggers=3))
    batch = task.sample(12, torch.Generator().manual_seed(7))
    assert batch.in_context.any()
    return ours, batch


def _paper_gradients(ours) -> dict[str, torch.Tensor]:
    """Our gradients in the paper's convention, whichever backend's layout the parameters have:
    one SGD step of size 1, read through get_paper_matrix, then undone."""
    before = {paper: get_paper_matrix(ours, paper).clone() for paper in TL_TO_PAPER.values()}
    torch.optim.SGD([p for _, p in trainable_parameters(ours)], lr=1.0).step()
    gradients = {paper: matrix - get_paper_matrix(ours, paper) for paper, matrix in before.items()}
    for paper, matrix in before.items():
        set_paper_matrix(ours, paper, matrix)
    return gradients


@pytest.mark.parametrize("attention", ["mask", "sdpa"])
def test_same_logits_and_gradients(setup, attention):
    ours, batch = setup
    plain = PlainModel.from_hooked(ours, attention=attention)
    assert sorted(n for n, p in plain.named_parameters() if p.requires_grad) == sorted(TL_TO_PAPER.values())

    ours.zero_grad(set_to_none=True)
    logits = ours(batch.tokens)
    plain_logits = plain(batch.tokens)
    torch.testing.assert_close(plain_logits, logits, atol=1e-5, rtol=1e-5)

    masked_cross_entropy(logits, batch.targets, batch.in_context).backward()
    loss = in_context_loss(plain_logits, batch.targets, batch.labels)
    loss.backward()
    ours_gradients = _paper_gradients(ours)
    for paper in TL_TO_PAPER.values():
        grad = getattr(plain, paper).grad
        assert grad.abs().max() > 1e-4, paper  # a gradient that would catch a mismatch
        torch.testing.assert_close(grad, ours_gradients[paper], atol=1e-5, rtol=1e-4)
    ours.zero_grad(set_to_none=True)


def test_same_weights_after_a_reference_recipe_step(setup):
    """The benchmark's two optimisers (reference recipe: SGD, per-matrix learning rates) agree."""
    ours_template, batch = setup
    train_cfg = preset("reference").train
    ours = build_model(model_config(ours_template), "cpu", vocab=BigramStats.default().vocab)
    ours.load_state_dict(ours_template.state_dict())
    plain = PlainModel.from_hooked(ours)
    ours_opt = make_our_optimizer(ours, train_cfg)
    plain_opt = make_optimizer(plain, train_cfg, learning_rate_multipliers(ours, train_cfg))
    for _ in range(2):  # the second step uses the momentum buffers
        ours_opt.zero_grad(set_to_none=True)
        masked_cross_entropy(ours(batch.tokens), batch.targets, batch.in_context).backward()
        ours_opt.step()
        plain_opt.zero_grad(set_to_none=True)
        in_context_loss(plain(batch.tokens), batch.targets, batch.labels).backward()
        plain_opt.step()
    for paper in TL_TO_PAPER.values():
        ours_matrix = get_paper_matrix(ours, paper)
        torch.testing.assert_close(getattr(plain, paper).detach(), ours_matrix, atol=1e-4, rtol=1e-4)


def test_refuses_what_it_cannot_express():
    stats = BigramStats.default()
    rpe = build_model(
        ModelConfig(d_model=8, n_ctx=8, d_vocab=stats.n_tokens, positional="rpe"), "cpu", vocab=stats.vocab
    )
    with pytest.raises(ValueError, match="APE"):
        PlainModel.from_hooked(rpe)


def test_benchmark_script_runs(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("bench_anchor", None)
    import bench_anchor

    bench_anchor.main(["--d-model", "8", "--seq-len", "8", "--batch", "4", "--steps", "1", "--warmup", "0"])
    out = capsys.readouterr().out
    assert "the plain model's speed" in out and "data generation" in out
