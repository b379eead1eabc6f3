from dataclasses import replace

import pytest
import torch

from induction_bigram import CheckpointError, load, memory_report, preset, train
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.metrics import evaluate
from induction_bigram.pretrained import (
    available,
    export_run,
    load_pretrained,
    pretrained_config,
    pretrained_metrics,
    rebuild,
)
from tests.conftest import tiny_config


def test_export_keeps_only_the_trained_tensors_and_rebuilds_bitwise(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(), run, progress=False)
    export_run(run, tmp_path / "shipped", command="pytest")
    trained = torch.load(tmp_path / "shipped" / "trained.pt", weights_only=True)
    assert set(trained) == {"blocks.0.attn.W_K", "blocks.1.attn.W_K", "blocks.1.attn.W_O"}
    original = load(run, "cpu")
    rebuilt = rebuild(tiny_config().with_vocab(65), tmp_path / "shipped" / "trained.pt", "cpu")
    for name, tensor in original.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], tensor), name


def test_mismatched_trained_tensors_are_named(tmp_path):
    torch.save({"blocks.0.attn.W_K": torch.zeros(1, 16, 16)}, tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="expected"):
        rebuild(tiny_config().with_vocab(65), tmp_path / "t.pt", "cpu")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="truncated"):
        rebuild(tiny_config().with_vocab(65), tmp_path / "bad.pt", "cpu")


def test_unknown_name_lists_the_available_models():
    with pytest.raises(CheckpointError, match="no pretrained model named 'gpt5'"):
        load_pretrained("gpt5")


@pytest.mark.parametrize("name", available())
def test_shipped_models_load_and_score_what_their_metrics_say(name):
    config = pretrained_config(name)
    model = load_pretrained(name, "cpu")
    final = pretrained_metrics(name)[-1]
    task = TriggerTask(BigramStats.from_corpus(config.task.corpus), config.task)
    scores = evaluate(model, task, batch_size=config.train.eval_batch_size, seed=config.train.eval_seed)
    assert scores.in_context_accuracy == pytest.approx(final["in_context_accuracy"], abs=1e-4)
    assert final["step"] == config.train.steps


def test_the_promised_models_are_shipped():
    assert {"reference", "amt", "rpe"} <= set(available())
    assert pretrained_config("amt").model.ffn == "linear"
    assert pretrained_config("rpe").model.positional == "rpe"


def test_shipped_reference_model_is_the_reference_recipe_and_holds_its_memories():
    """Issue 3's target: after the reference recipe (batch 128 on CPU), W_O2 and W_K2 recall 1.0
    and W_K1 recall >= 0.9 on the first 64 positions."""
    config = pretrained_config("reference")
    recipe = preset("reference")
    assert config.train == replace(recipe.train, batch_size=128, micro_batch_size=None)
    assert (config.task, replace(config.model, d_vocab=None)) == (recipe.task, recipe.model)
    task = TriggerTask(BigramStats.from_corpus(config.task.corpus), config.task)
    report = memory_report(load_pretrained("reference", "cpu"), task.shared_triggers, config.task.seq_len)
    assert report["W_O2"].recall == 1.0 and report["W_K2"].recall == 1.0
    assert report["W_K1"].recalls["recall_first64"] >= 0.9
    assert pretrained_metrics("reference")[-1]["in_context_accuracy"] >= 0.98
