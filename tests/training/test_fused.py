"""The fused training loss computes the model's loss and gradients (training/fused.py)."""

import pytest
import torch

from induction_bigram import TriggerTask, preset, train
from induction_bigram.errors import ConfigError
from induction_bigram.model import set_paper_matrix, tl3_parameters, trainable_parameters
from induction_bigram.training.fused import FusedLoss, fused_loss_decision, logits_loss, readout_rows, training_loss
from induction_bigram.training.loop import make_optimizer, optimizer_step
from induction_bigram.training.metrics import loss_mask
from tests.conftest import model_of, randomise_trainables, tiny_config


def _config(**overrides):
    return tiny_config(**{"model.d_vocab": 65, **overrides})


def _loss_and_gradients(loss_of, model, batch, kind):
    for _, p in trainable_parameters(model):
        p.grad = None
    mask = loss_mask(batch, kind)
    loss = loss_of(batch.tokens, batch.targets, mask, mask.sum())
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in trainable_parameters(model)}


@pytest.mark.parametrize(
    "positional, ffn",
    [
        ("ape", {}),
        ("rpe", {}),
        ("nope", {}),
        ("rope", {}),
        ("rope", {"model.rope_qk_bias": True}),
        ("ape", {"model.ffn": "linear"}),
        ("rpe", {"model.ffn": "linear", "model.ffn_reads": "token"}),
    ],
)
@pytest.mark.parametrize("kind", ["in_context", "full"])
def test_the_fused_loss_has_the_models_loss_and_gradients(stats, positional, ffn, kind):
    config = _config(**{"model.positional": positional, "task.n_triggers": 5, **ffn})
    model = randomise_trainables(model_of(config.model))
    batch = TriggerTask(stats, config.task).sample(32, torch.Generator().manual_seed(0))
    counts = loss_mask(batch, kind).sum(1)
    assert counts.max() > 4 and (counts.min() <= 4 or kind == "full")  # one readout row, several
    expected_loss, expected = _loss_and_gradients(logits_loss(model), model, batch, kind)
    loss, gradients = _loss_and_gradients(FusedLoss(model, row_quantile=0.25), model, batch, kind)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    for name, gradient in expected.items():
        torch.testing.assert_close(gradients[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("name, low, high", [("quick", 0.2, 0.3), ("reference", 0.25, 0.35)])
def test_the_in_context_loss_reads_about_a_quarter_of_the_positions(stats, name, low, high):
    """What the fused loss saves (module doc, benchmarks/README.md): the share of positions read."""
    batch = TriggerTask(stats, preset(name).task).sample(1024, torch.Generator().manual_seed(0))
    assert low < batch.in_context.float().mean().item() < high


def test_a_batch_without_readouts_gives_zero_loss_and_gradients(stats):
    config = _config()
    model = randomise_trainables(model_of(config.model))
    batch = TriggerTask(stats, config.task).sample(4, torch.Generator().manual_seed(0))
    mask = torch.zeros_like(batch.tokens, dtype=torch.bool)
    loss = FusedLoss(model)(batch.tokens, batch.targets, mask, torch.tensor(1))
    loss.backward()
    assert loss.item() == 0.0
    assert all(not p.grad.any() for _, p in trainable_parameters(model))


def test_readout_rows_lay_out_each_sequences_positions_in_rows_of_the_width():
    selected = torch.tensor(
        [
            [0, 1, 1, 1, 1, 1],  # five readouts: its own row of 3, then an extra row of 2
            [0, 0, 0, 0, 0, 0],  # none: an empty row
            [1, 0, 0, 0, 0, 1],  # two: its own row
        ],
        dtype=torch.bool,
    )
    seq, read, valid = readout_rows(selected, 3)
    assert seq.tolist() == [0, 1, 2, 0]
    assert read[valid].tolist() == [1, 2, 3, 0, 5, 4, 5]
    assert valid.tolist() == [[True, True, True], [False] * 3, [True, True, False], [True, True, False]]
    slots = seq[:, None].expand_as(read)[valid] * 6 + read[valid]
    assert sorted(slots.tolist()) == selected.reshape(-1).nonzero().flatten().tolist()


def test_training_with_the_fused_loss_follows_the_models_loss(stats):
    """Eight AdamW steps through either loss end at the same weights, up to float rounding."""
    config = _config(**{"train.optimizer": "adamw", "train.lr": 0.01})
    task = TriggerTask(stats, config.task)
    batches = [task.sample(8, torch.Generator().manual_seed(i)) for i in range(8)]
    weights = []
    for make_loss in (logits_loss, FusedLoss):
        model = model_of(config.model)
        optimizer = make_optimizer(model, config.train)
        for batch in batches:
            optimizer_step(make_loss(model), optimizer, batch, config.train)
        weights.append(dict(trainable_parameters(model)))
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"model.ffn": "relu"}, "model.ffn=relu"),
        ({"train.compile": True}, "train.compile=true"),
    ],
)
def test_the_fused_loss_is_off_where_it_is_not_the_models_maths(overrides, reason):
    config = _config(**overrides)
    fused, note = fused_loss_decision(model_of(config.model), config)
    assert fused is None and note.startswith("fused loss off (auto: ") and reason in note
    demanding = config.with_overrides({"train.fused_loss": True})
    with pytest.raises(ConfigError, match=f"train.fused_loss=true, but .*{reason}"):
        fused_loss_decision(model_of(config.model), demanding)


def test_the_fused_loss_checks_the_weights_it_leaves_out():
    config = _config()
    edited = model_of(config.model)
    set_paper_matrix(edited, "W_Q2", 2 * torch.eye(config.model.d_model))
    assert "blocks.1.attn.W_Q is not the frozen identity" in fused_loss_decision(edited, config)[1]
    biased = model_of(config.model)
    with torch.no_grad():
        tl3_parameters(biased)["blocks.0.attn.b_V"].fill_(0.5)
    assert "blocks.0.attn.b_V is not a frozen zero" in fused_loss_decision(biased, config)[1]
    linear = _config(**{"model.ffn": "linear"})
    for name, value, reason in [
        ("blocks.1.mlp.W_in", 0.5, "blocks.1.mlp.W_in is not the frozen identity"),
        ("blocks.0.mlp.W_out", 0.5, "blocks.0.mlp.W_out is not a frozen zero"),
    ]:
        ffn = model_of(linear.model)
        with torch.no_grad():
            tl3_parameters(ffn)[name].fill_(value)
        assert reason in fused_loss_decision(ffn, linear)[1]
    off = config.with_overrides({"train.fused_loss": False})
    assert fused_loss_decision(model_of(config.model), off) == (None, "fused loss off (train.fused_loss=false)")


def test_the_loop_trains_on_the_fused_loss_where_it_applies():
    config = _config()
    loss_of, note = training_loss(model_of(config.model), config, torch.device("cpu"))
    assert isinstance(loss_of, FusedLoss) and note.startswith("fused loss on")
    relu = _config(**{"model.ffn": "relu"})
    loss_of, note = training_loss(model_of(relu.model), relu, torch.device("cpu"))
    assert not isinstance(loss_of, FusedLoss) and note.startswith("torch.compile off")


def test_a_run_resumes_under_another_fused_loss_setting(tmp_path):
    """train.fused_loss says how a run executes, not what it learns: it may differ on resume."""
    train(_config(**{"train.steps": 4, "train.fused_loss": False}), tmp_path / "run", progress=False)
    resumed = train(_config(), tmp_path / "run", resume=True, progress=False)
    assert resumed.metrics[-1]["step"] == 12 and resumed.config.train.fused_loss == "auto"
