import copy
import json
import math
from dataclasses import replace

import pytest
import torch

from induction_bigram import load, preset, train
from induction_bigram.config import ModelConfig, TrainConfig
from induction_bigram.errors import CheckpointError, ConfigError
from induction_bigram.memories.projections import track_memories
from induction_bigram.model import trainable_parameters
from induction_bigram.model.backend import TL4
from induction_bigram.training import compile as compile_rule
from induction_bigram.training.checkpoint import CONFIG, load_checkpoint, read_metrics
from induction_bigram.training.compile import compile_decision
from induction_bigram.training.loop import learning_rate_multipliers, make_optimizer, reference_code_scales
from tests.conftest import model_of, randomise_trainables, tiny_config

TIMING = {"tokens_per_second", "elapsed_seconds"}


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

    result = train(tiny_config(), None, progress=False)
    fresh = model_of(result.config.model)
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


def test_resume_with_an_optimiser_state_of_another_layout_is_refused(tmp_path):
    config = tiny_config()
    train(config, tmp_path, progress=False)
    path = tmp_path / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    groups = payload["optimizer_state"]["param_groups"]
    groups[:] = [{**groups[0], "params": [p for g in groups for p in g["params"]]}]  # one group for all
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="optimiser state does not fit"):
        train(config.with_overrides(["train.steps=16"]), tmp_path, resume=True, progress=False)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_checkpoint_holds_the_optimiser_state_in_tl3_layout(tmp_path, optimizer):
    """Momenta have their weight's TL 3 shape on either backend (W_in of the ReLU MLP is not
    square, so a transposed one would show), and a run resumes under either
    (tests/tl4/test_across_backends.py resumes one under the other backend)."""
    train(tiny_config(**{"model.ffn": "relu", "train.optimizer": optimizer}), tmp_path, progress=False)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    weights = payload["model_state"]
    momenta = payload["optimizer_state"]["state"]
    assert set(momenta) == {name for name, _ in trainable_parameters(load(tmp_path, "cpu"))}
    assert "blocks.1.mlp.W_in" in momenta
    for name, entries in momenta.items():
        tensors = [value for value in entries.values() if value.dim() > 0]
        assert tensors and all(value.shape == weights[name].shape for value in tensors), name


def test_an_optimiser_state_numbered_by_position_is_refused(tmp_path):
    """A checkpoint's optimiser state is named (portable_optimizer_state): torch's own numbering
    is an error that says so, on either backend."""
    config = tiny_config()
    train(config, tmp_path, progress=False)
    model = load(tmp_path, "cpu")
    numbered = make_optimizer(model, config.train).state_dict()
    path = tmp_path / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    torch.save(payload | {"optimizer_state": numbered}, path)
    resume = config.with_overrides(["train.steps=16"])
    with pytest.raises(CheckpointError, match="numbers its parameters by position"):
        train(resume, tmp_path, resume=True, progress=False)


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
@pytest.mark.skipif(TL4, reason="on TL 4, tests/tl4/test_bridge.py trains the whole quick recipe to >= 0.98")
def test_quick_recipe_learns_the_induction_head(tmp_path):
    """End to end: a real training run reaches in-context accuracy >= 0.95 (on TL 3; the
    TransformerBridge's own run of the recipe is in tests/tl4/test_bridge.py)."""
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


def layer_two_readout(model, tokens):
    """Logits from layer 2's output alone. The direct path (U applied to the embeddings and to
    layer 1's output) is the one term whose scale the two parametrisations do not share."""
    kept = {}

    def keep(attn_out, hook):
        kept["attn_out"] = attn_out

    def replace_stream(resid_post, hook):
        return kept["attn_out"]

    return model.run_with_hooks(
        tokens, fwd_hooks=[("blocks.1.hook_attn_out", keep), ("blocks.1.hook_resid_post", replace_stream)]
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_reference_code_lr_scaling_takes_the_reference_code_steps(optimizer):
    """Oracle: the reference code's parametrisation (embeddings sqrt(d) larger, trained matrices
    W' = W / c) trained with one learning rate follows, mapped back by c, exactly the trajectory
    ours follows under ``lr_scaling="reference-code"``."""
    d = 16
    model_cfg = ModelConfig(d_model=d, n_ctx=12, d_vocab=11)
    scaled = TrainConfig(optimizer=optimizer, lr=1e-2, lr_scaling="reference-code", weight_decay=0.1)
    ours = randomise_trainables(model_of(model_cfg, "cpu"), seed=7, scale=0.3)
    start = copy.deepcopy(ours)
    theirs = copy.deepcopy(ours)
    scales = reference_code_scales(model_cfg)
    with torch.no_grad():
        theirs.embed.W_E.mul_(math.sqrt(d))
        theirs.pos_embed.W_pos.mul_(math.sqrt(d))
        for name, p in trainable_parameters(theirs):
            p.div_(scales[name])
    steppers = [
        (ours, make_optimizer(ours, scaled)),
        (theirs, make_optimizer(theirs, replace(scaled, lr_scaling="none"))),
    ]
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 11, (4, 12), generator=g)
    targets = torch.randint(0, 11, (4 * 12,), generator=g)
    for _ in range(3):
        for model, optimizer_ in steppers:
            optimizer_.zero_grad()
            torch.nn.functional.cross_entropy(layer_two_readout(model, tokens).flatten(0, 1), targets).backward()
            optimizer_.step()
    theirs_params, start_params = dict(trainable_parameters(theirs)), dict(trainable_parameters(start))
    atol = 1e-5 if optimizer == "sgd" else 1e-3  # AdamW's eps is the one term not rescaled
    for name, p in trainable_parameters(ours):
        torch.testing.assert_close(p, theirs_params[name] * scales[name], atol=atol, rtol=1e-4, msg=name)
        assert not torch.allclose(p, start_params[name], atol=1e-4), f"{name} did not move"


def test_learning_rate_multipliers():
    model = model_of(ModelConfig(d_model=16, n_ctx=12, d_vocab=11, ffn="linear"), "cpu")
    sgd = learning_rate_multipliers(model, TrainConfig(optimizer="sgd", lr_scaling="reference-code"))
    adamw = learning_rate_multipliers(model, TrainConfig(optimizer="adamw", lr_scaling="reference-code"))
    plain = learning_rate_multipliers(model, TrainConfig(optimizer="sgd"))
    assert sgd == {
        "blocks.0.attn.W_K": 256.0,
        "blocks.1.attn.W_K": 256.0,
        "blocks.1.attn.W_O": 16.0,
        "blocks.1.mlp.W_out": 16.0,
    }
    assert adamw == {
        "blocks.0.attn.W_K": 16.0,
        "blocks.1.attn.W_K": 16.0,
        "blocks.1.attn.W_O": 4.0,
        "blocks.1.mlp.W_out": 4.0,
    }
    assert set(plain.values()) == {1.0}
    groups = make_optimizer(model, TrainConfig(lr=0.03, weight_decay=1e-4, lr_scaling="reference-code")).param_groups
    expected = [(0.03 * 16, 1e-4 / 16)] * 2 + [(0.03 * 256, 1e-4 / 256)] * 2
    for (lr, decay), (want_lr, want_decay) in zip(sorted((g["lr"], g["weight_decay"]) for g in groups), expected):
        assert lr == pytest.approx(want_lr) and decay == pytest.approx(want_decay)


@pytest.mark.slow
def test_reference_recipe_learns_the_induction_head():
    """End to end at d = T = 64: SGD lr 0.03 (the reference recipe) learns the task with the
    reference-code scaling and barely moves without it. (The full-size run is the shipped
    ``reference`` model, checked in test_pretrained.)"""
    small = {
        "model.d_model": 64,
        "model.n_ctx": 64,
        "task.seq_len": 64,
        "train.batch_size": 64,
        "train.micro_batch_size": None,
        "train.steps": 300,
        "train.eval_every": 300,
        "train.device": "cpu",
    }
    scaled = train(preset("reference").with_overrides(small), None, progress=False, track=[track_memories])
    memories = scaled.final["memories"]
    assert scaled.final["in_context_accuracy"] >= 0.9
    assert memories["W_O2"]["recall"] == 1.0 and memories["W_K2"]["recall"] == 1.0
    assert memories["W_K1"]["recall"] >= 0.5 and memories["W_K1"]["margin"] > 0  # chance is about 0.07
    plain = train(preset("reference").with_overrides({**small, "train.lr_scaling": "none"}), None, progress=False)
    assert plain.final["in_context_accuracy"] < 0.3


def test_trackers_add_their_measurements_to_every_metrics_record(tmp_path):
    seen = []

    def tracker(model, task):
        seen.append(task.cfg.seq_len)
        return {"tracked": len(seen)}

    result = train(tiny_config(), tmp_path, progress=False, track=[tracker])
    assert [r["tracked"] for r in result.metrics] == list(range(1, len(result.metrics) + 1))
    assert [r["tracked"] for r in read_metrics(tmp_path)] == [r["tracked"] for r in result.metrics]
    assert "memories" not in result.metrics[-1]  # training measures no memory unless asked


def test_track_memories_records_the_three_memories(tmp_path):
    result = train(tiny_config(), None, progress=False, track=[track_memories])
    assert set(result.final["memories"]) == {"W_O2", "W_K2", "W_K1"}


def test_compile_auto_compiles_only_long_runs_of_large_models(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(compile_rule.shutil, "which", lambda name: f"/usr/bin/{name}")
    quick, reference = preset("quick"), preset("reference")
    assert quick.train.compile == "auto" and reference.train.compile == "auto"
    assert compile_decision(quick, cpu) == (
        False,
        "torch.compile off (auto: at d = 64, T = 64 the compiled step is not faster)",
    )
    on, note = compile_decision(reference, cpu)
    assert on and note.startswith("torch.compile on (auto")
    short = reference.with_overrides({"train.steps": 2})
    assert compile_decision(short, cpu)[0] is False
    assert compile_decision(quick.with_overrides({"train.compile": True}), cpu) == (
        True,
        "torch.compile on (train.compile=True)",
    )
    assert compile_decision(reference.with_overrides({"train.compile": False}), cpu)[0] is False
    monkeypatch.setattr(compile_rule.shutil, "which", lambda name: None)
    assert compile_decision(reference, cpu) == (
        False,
        "torch.compile off (auto: no C++ compiler found for inductor on this CPU)",
    )


def test_compile_setting_is_checked():
    with pytest.raises(ConfigError, match="train.compile"):
        preset("quick").with_overrides({"train.compile": "yes"})


def test_the_progress_output_says_how_training_runs(capsys):
    train(tiny_config(**{"train.steps": 1}), None, progress=True)
    assert "fused loss on:" in capsys.readouterr().err
    train(tiny_config(**{"train.steps": 1, "model.ffn": "relu"}), None, progress=True)
    assert "torch.compile off (auto:" in capsys.readouterr().err


def test_a_run_resumes_under_another_compile_setting(tmp_path):
    """train.compile says how a run executes, not what it learns: it may differ on resume."""
    train(tiny_config(**{"train.steps": 4, "train.compile": False}), tmp_path / "run", progress=False)
    resumed = train(tiny_config(**{"train.compile": "auto"}), tmp_path / "run", resume=True, progress=False)
    assert resumed.metrics[-1]["step"] == 12 and resumed.config.train.compile == "auto"
