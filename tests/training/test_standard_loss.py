"""The standard model's fused training loss computes the model's loss and gradients
(training/standard_loss.py)."""

import pytest
import torch

from induction_bigram.config.standard import StandardModelConfig, standard_preset
from induction_bigram.model import TL4, build_standard_model, tl3_parameters
from induction_bigram.training.standard import in_context_score
from induction_bigram.training.standard_loss import StandardFusedLoss, next_character_loss
from induction_bigram.training.trainer import train
from tests.conftest import randomise_trainables

VOCAB = "abcdefghij"


def _loss_and_gradients(loss_of, model, windows):
    model.zero_grad(set_to_none=True)
    loss = loss_of(windows)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("positional", ["standard", "rotary", "shortformer"])
@pytest.mark.parametrize("normalization", ["LN", "LNPre", "none"])
def test_the_fused_loss_has_the_models_loss_and_gradients(positional, normalization):
    if TL4 and positional == "shortformer":
        pytest.skip("TL 4 builds no shortformer model (a ConfigError, tests/test_standard.py)")
    cfg = StandardModelConfig(
        n_heads=3, d_model=24, d_head=8, n_ctx=20, positional=positional, normalization=normalization, vocab=VOCAB
    )
    model = randomise_trainables(build_standard_model(cfg, "cpu"), scale=0.3)  # biases and LN weights too
    windows = torch.randint(len(VOCAB), (5, cfg.n_ctx + 1), generator=torch.Generator().manual_seed(0))
    expected_loss, expected = _loss_and_gradients(lambda w: next_character_loss(model(w[:, :-1]), w), model, windows)
    loss, gradients = _loss_and_gradients(StandardFusedLoss(model), model, windows)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    assert expected.keys() == gradients.keys()
    for name, gradient in expected.items():
        torch.testing.assert_close(gradients[name], gradient, rtol=1e-4, atol=1e-5, msg=name)


def test_a_shorter_window_reads_the_first_positions():
    cfg = StandardModelConfig(n_heads=2, d_model=16, d_head=8, n_ctx=12, vocab=VOCAB)
    model = randomise_trainables(build_standard_model(cfg, "cpu"), scale=0.3)
    windows = torch.randint(len(VOCAB), (3, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = next_character_loss(model(windows[:, :-1]), windows)
        torch.testing.assert_close(StandardFusedLoss(model)(windows), expected)


def test_the_loss_reads_every_position_of_the_window():
    """Changing the window's last character changes the loss (TL's return_type="loss" would not
    read it)."""
    cfg = StandardModelConfig(n_heads=2, d_model=16, d_head=8, n_ctx=8, vocab=VOCAB)
    model = build_standard_model(cfg, "cpu")
    windows = torch.zeros(2, 9, dtype=torch.long)
    changed = windows.clone()
    changed[:, -1] = 3
    with torch.no_grad():
        assert StandardFusedLoss(model)(windows) != StandardFusedLoss(model)(changed)


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the cat sat on the mat. the dog sat on the log.\n" * 40, encoding="utf-8")
    return path


def _trained(text_file, run_dir, fused, steps=6, resume=False):
    config = standard_preset("standard-test").with_overrides(
        [f"data.text={text_file}", f"train.fused_loss={str(fused).lower()}", f"train.steps={steps}"]
    )
    return train(config, run_dir, resume=resume, progress=False)


def test_training_through_either_loss_ends_at_the_same_weights(text_file):
    fused, forward = (_trained(text_file, None, setting) for setting in (True, False))
    assert [r["train_loss"] for r in fused.metrics[1:]] == pytest.approx(
        [r["train_loss"] for r in forward.metrics[1:]], rel=1e-5
    )
    assert fused.final["held_out_loss"] == pytest.approx(forward.final["held_out_loss"], rel=1e-5)
    weights = tl3_parameters(forward.model)
    for name, a in tl3_parameters(fused.model).items():
        if not name.endswith("b_K"):  # its gradient is 0 up to rounding (it shifts every score of a
            # query alike), and Adam scales rounding noise up to steps of size lr
            torch.testing.assert_close(a, weights[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_run_resumes_under_the_other_setting(text_file, tmp_path):
    _trained(text_file, tmp_path / "run", True, steps=4)
    resumed = _trained(text_file, tmp_path / "run", False, steps=6, resume=True)
    assert resumed.final["step"] == 6 and resumed.config.train.fused_loss is False


def test_the_in_context_score_is_late_minus_early_loss():
    losses = torch.arange(100, 0, -1).float()  # the loss falls by 1 per position
    assert in_context_score(losses) == pytest.approx(losses[90:].mean() - losses[10:20].mean())
    assert in_context_score(torch.full((7,), 2.0)) == 0.0
