import json

import pytest
import torch

from induction_bigram import CheckpointError, ConfigError, load_checkpoint, preset, train
from induction_bigram.checkpoint import CONFIG, METRICS
from tests.conftest import tiny_config

TIMING = {"tokens_per_second", "elapsed_seconds"}


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_run_folder_contents(tmp_path):
    result = train(tiny_config(), tmp_path, progress=False)
    assert json.loads((tmp_path / CONFIG).read_text())["model"]["d_vocab"] == 65
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [0, 4, 8, 12]
    for key in ("step", "train_loss", "in_context_accuracy", "bigram_loss", "tokens_per_second", "elapsed_seconds"):
        assert key in records[-1]
    assert records[-1]["tokens_per_second"] > 0
    assert records == result.metrics
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 12 and ckpt.config == result.config
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[name], tensor), name


def test_training_changes_only_the_trainable_tensors(tmp_path):
    from induction_bigram import build_model

    result = train(tiny_config(), None, progress=False)
    fresh = build_model(result.config.model)
    for (name, before), after in zip(fresh.named_parameters(), result.model.parameters()):
        assert torch.equal(before, after) != before.requires_grad, name


def test_resume_after_interruption_is_bitwise_identical(tmp_path):
    config = tiny_config()
    whole = train(config, tmp_path / "whole", progress=False)

    class Interrupted(Exception):
        pass

    def stop_at_step_8(record):
        if record["step"] == 8:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, tmp_path / "cut", progress=False, on_eval=stop_at_step_8)
    assert load_checkpoint(tmp_path / "cut").step == 5  # the last checkpoint before the cut
    resumed = train(config, tmp_path / "cut", resume=True, progress=False)

    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    assert without_timing(read_metrics(tmp_path / "cut")) == without_timing(read_metrics(tmp_path / "whole"))
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "cut")
    assert torch.equal(a.data_rng_state, b.data_rng_state)
    for key, state in a.optimizer_state["state"].items():
        assert torch.equal(state["momentum_buffer"], b.optimizer_state["state"][key]["momentum_buffer"])


def test_resume_can_extend_training(tmp_path):
    config = tiny_config()
    train(config, tmp_path, progress=False)
    longer = train(config.with_overrides(["train.steps=16"]), tmp_path, resume=True, progress=False)
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 4, 8, 12, 16]
    assert longer.final["step"] == 16


def test_resume_with_another_model_is_refused(tmp_path):
    train(tiny_config(), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="model.d_model: 16 -> 32"):
        train(tiny_config(**{"model.d_model": 32}), tmp_path, resume=True, progress=False)


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    train(tiny_config(), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny_config(), tmp_path, progress=False)


def test_adamw_and_full_loss_train(tmp_path):
    config = tiny_config(**{"train.optimizer": "adamw", "train.loss": "full", "train.lr": 0.01})
    result = train(config, None, progress=False)
    assert result.final["train_loss"] < result.metrics[1]["train_loss"] + 1.0
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


@pytest.mark.slow
def test_quick_recipe_learns_the_induction_head(tmp_path):
    """End to end: a real training run reaches in-context accuracy >= 0.95."""
    config = preset("quick").with_overrides(["train.steps=1000", "train.eval_every=500", "train.device=cpu"])
    result = train(config, tmp_path, progress=False)
    assert result.final["in_context_accuracy"] >= 0.95
    assert result.metrics[0]["in_context_accuracy"] < 0.1  # it was learned, not given


def test_micro_batches_add_up_to_the_whole_batch():
    whole = train(tiny_config(), None, progress=False)
    micro = train(tiny_config(**{"train.micro_batch_size": 3}), None, progress=False)
    for (name, a), b in zip(whole.model.named_parameters(), micro.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    assert micro.final["train_loss"] == pytest.approx(whole.final["train_loss"], rel=1e-5)
