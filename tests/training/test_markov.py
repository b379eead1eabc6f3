"""The ``markov`` family: a standard TL model on in-context Markov chains (issue 29, item 3)."""

from __future__ import annotations

import json

import pytest
import torch

from induction_bigram.cli import main as cli_main
from induction_bigram.config.markov import MARKOV_PRESETS, MarkovConfig, markov_preset
from induction_bigram.data.markov import MarkovTask
from induction_bigram.dynamics import DynamicsPoint, plot_run_dynamics, run_dynamics, track_dynamics
from induction_bigram.errors import ConfigError, DataError
from induction_bigram.model import build_standard_model, load_weights
from induction_bigram.training.checkpoint import load, load_checkpoint, read_metrics
from induction_bigram.training.markov import held_out_batch
from induction_bigram.training.trainer import train


def test_the_preset_is_the_issues_probe_and_round_trips():
    assert list(MARKOV_PRESETS) == ["markov", "markov-test"]
    cfg = markov_preset("markov")
    shape = (cfg.model.n_layers, cfg.model.n_heads, cfg.model.d_model, cfg.model.normalization, cfg.model.positional)
    assert shape == (2, 4, 64, "LN", "standard")
    assert (cfg.task.corpus, cfg.task.seq_len, cfg.task.alpha) == ("tinyshakespeare", 128, 1.0)
    assert (cfg.train.batch_size, cfg.train.lr) == (32, 3e-3)
    assert MarkovConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.with_overrides(["task.alpha=4"]).task.alpha == 4.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task.alpha": 0}, "task.alpha must be > 0"),
        ({"task.seq_len": 32}, r"model.n_ctx \(16\) is smaller than task.seq_len \(32\)"),
        ({"train.eval_seed": 0}, "train.eval_seed must differ from train.seed"),
        ({"model.vocab": "ab"}, "differ from the corpus"),
    ],
)
def test_bad_settings_are_named(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        train(markov_preset("markov-test").with_overrides(overrides), tmp_path / "run", progress=False)
    assert not any((tmp_path / "run" / name).exists() for name in ("config.json", "metrics.jsonl", "checkpoint.pt"))


def test_the_held_out_batch_is_fixed_and_no_training_batch():
    cfg = markov_preset("markov-test")
    task = MarkovTask.from_config(cfg.task)
    first, again = held_out_batch(cfg, task), held_out_batch(cfg, task)
    assert torch.equal(first.tokens, again.tokens)
    trained = task.sample(cfg.train.eval_batch, torch.Generator().manual_seed(cfg.train.seed))
    assert not torch.equal(first.tokens, trained.tokens)


def test_the_test_preset_trains_records_the_dynamics_and_resumes_bitwise(tmp_path):
    cfg = markov_preset("markov-test")
    out = tmp_path / "run"
    result = train(cfg, out, progress=False, track=[track_dynamics])
    records = read_metrics(out)
    assert [r["step"] for r in records] == [0, 3, 6]
    assert records[-1]["held_out_loss"] == pytest.approx(records[-1]["loss"], rel=1e-5)  # the same batch
    steps, points, phases = run_dynamics(records)
    assert steps == [0, 3, 6] and all(isinstance(p, DynamicsPoint) for p in points)
    point = points[-1]
    assert set(point.kl) == {"uniform", "unigram", "bigram", "in_context_unigram", "in_context_bigram", "bayes"}
    assert point.reference == "bayes" and point.excess_loss == pytest.approx(point.loss - point.strategy_loss["bayes"])
    gap = point.strategy_loss["bigram"] - point.strategy_loss["bayes"]
    assert point.excess_ratio == pytest.approx(point.excess_loss / gap)
    assert point.strategy_loss["in_context_bigram"] == float("inf")  # unseen transitions, read back from null
    saved = load_checkpoint(out, "cpu")
    assert saved.config.model.vocab == "".join(MarkovTask.from_config(cfg.task).stats.vocab)
    assert load(out, "cpu").cfg.n_heads == cfg.model.n_heads
    # resumed from step 6 to 9 equals a run of 9 steps never interrupted
    nine = cfg.with_overrides({"train.steps": 9})
    longer = train(nine, out, resume=True, progress=False, track=[track_dynamics])
    straight = train(nine, tmp_path / "straight", progress=False)
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(longer.model.state_dict()[name], tensor), name
    assert result.final["step"] == 6 and longer.final["step"] == 9
    fig = plot_run_dynamics(out)
    assert len(fig.axes) == 3
    with pytest.raises(DataError, match="no metrics records"):
        run_dynamics([])


def test_the_command_trains_and_refuses_bad_input_with_exit_2(tmp_path, capsys):
    out = tmp_path / "markov"
    assert cli_main(["markov", "--preset", "markov-test", "--out", str(out), "--no-progress", "--json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["step"] == 6 and {"kl", "excess_ratio", "statistical_induction"} <= set(final)
    resume = ["markov", "--out", str(out), "--resume", "--no-progress", "--json", "--set", "train.steps=8"]
    assert cli_main(resume) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 8
    for bad, message in [
        (["--preset", "nope"], "unknown markov preset 'nope'"),
        (["--set", "task.alpha=0"], "task.alpha must be > 0"),
    ]:
        assert cli_main(["markov", "--out", str(tmp_path / "bad"), "--no-progress", *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_the_mlp_option_builds_trains_and_loads_back_from_its_checkpoint(tmp_path):
    """``model.d_mlp``: TL's standard block (an MLP after each attention layer), through the same trainer."""
    assert markov_preset("markov").model.d_mlp is None  # attention only by default
    cfg = markov_preset("markov-test").with_overrides({"model.d_mlp": 32})
    result = train(cfg, tmp_path / "run", progress=False)
    model = result.model
    assert (model.cfg.attn_only, model.cfg.d_mlp, model.cfg.act_fn) == (False, 32, "gelu")
    initial = build_standard_model(result.config.model, "cpu").state_dict()
    mlp_weights = [name for name in model.state_dict() if ".mlp." in name]
    assert len(mlp_weights) == 4 * cfg.model.n_layers  # W_in, b_in, W_out, b_out (TL 4: in/out weight/bias)
    assert all(not torch.equal(model.state_dict()[name], initial[name]) for name in mlp_weights), "trained"
    loaded = load(tmp_path / "run", "cpu")
    assert not loaded.cfg.attn_only
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    tokens = held_out_batch(result.config, MarkovTask.from_config(cfg.task)).tokens
    with torch.no_grad():
        assert torch.equal(loaded(tokens), model(tokens))


def test_a_markov_run_exports_to_the_shipped_form_and_loads_back(tmp_path):
    from safetensors.torch import load_file

    from induction_bigram.pretrained import export_run

    result = train(markov_preset("markov-test"), tmp_path / "run", progress=False)
    export_run(tmp_path / "run", tmp_path / "shipped", command="induction-bigram markov ...")
    config = MarkovConfig.from_dict(json.loads((tmp_path / "shipped" / "config.json").read_text()))
    model = load_weights(
        build_standard_model(config.model, "cpu"), load_file(tmp_path / "shipped" / "model.safetensors")
    )
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor.cpu()), name


def test_the_fused_loss_it_trains_on_is_the_models_next_token_loss():
    """Training runs StandardFusedLoss on the chains (a window is the tokens plus the last
    target): the loss and the gradients are the model's forward's within float rounding."""
    from induction_bigram.training.markov import _next_token_loss
    from induction_bigram.training.standard_loss import StandardFusedLoss

    cfg = markov_preset("markov-test")
    task = MarkovTask.from_config(cfg.task)
    model = build_standard_model(cfg.with_vocab("".join(task.stats.vocab)).model, "cpu")
    batch = task.sample(4, torch.Generator().manual_seed(0))
    results = []
    for loss_of in (
        lambda: _next_token_loss(model, batch.tokens, batch.targets),
        lambda: StandardFusedLoss(model)(torch.cat([batch.tokens, batch.targets[:, -1:]], 1)),
    ):
        model.zero_grad()
        loss = loss_of()
        loss.backward()
        results.append((loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    (expected, expected_grads), (loss, grads) = results
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
