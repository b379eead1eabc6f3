"""scripts/lengths_rpe.py: the RPE measurements against direct computations on a tiny model."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from induction_bigram import TriggerTask
from induction_bigram.lengths import PRESETS, protocol_batch, variant_config, window
from tests.conftest import REPO, model_of, randomise_trainables

spec = importlib.util.spec_from_file_location("lengths_rpe", REPO / "scripts" / "lengths_rpe.py")
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script
spec.loader.exec_module(script)

STUDY = PRESETS["test"]  # d = 16, T_train = 8
T = STUDY.task.seq_len


@pytest.fixture
def rpe(stats):
    config = variant_config("rpe", STUDY).with_vocab(stats.n_tokens)
    model = randomise_trainables(model_of(config.model, "cpu"))
    return model, TriggerTask(stats, config.task)


def test_ideal_layer1_puts_all_of_layer1_on_the_previous_token(rpe):
    model, task = rpe
    with script.condition(model, "ideal_layer1", T):
        m = script.measure(model, task, 3, T, batch_size=6, seed=1, chunk=4)
    assert m["layer1_mass_prev"] == pytest.approx(1.0) and m["layer1_mass_prev_at_S"] == pytest.approx(1.0)


def test_layer2_mass_on_S_of_uniform_attention_is_the_share_of_keys_in_S(rpe):
    model, task = rpe
    uniform = lambda pattern, hook: torch.ones_like(pattern).tril() / torch.ones_like(pattern).tril().sum(-1, True)  # noqa: E731
    with model.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", uniform)]):
        m = script.measure(model, task, 2, T, batch_size=6, seed=1, chunk=4)
    batch = protocol_batch(task, "oversight", 2, T, 6, torch.Generator().manual_seed(1 + 2))
    shares, sizes = [], []
    for z, labels in zip(batch.tokens.tolist(), batch.labels.tolist()):
        for t in window(2, T):
            if labels[t] >= 2:
                S = [s for s in range(1, t + 1) if z[s - 1] == z[t]]
                shares.append(len(S) / (t + 1))
                sizes.append(len(S))
    assert m["n_scored"] == len(shares) > 0
    assert m["layer2_mass_on_S"] == pytest.approx(sum(shares) / len(shares))
    assert m["S_size"] == pytest.approx(sum(sizes) / len(sizes))


def test_conditions_leave_the_model_as_trained(rpe):
    model, _ = rpe
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for name in script.CONDITIONS:
        with script.condition(model, name, T):
            pass
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert not model.hook_dict["blocks.0.attn.hook_attn_scores"].fwd_hooks


def test_intervals_over_seeds_are_clipped_for_masses_and_accuracies_only():
    per_seed = [{"bias": {"b1": v}, "trained": {"2x": {"accuracy": v}}} for v in (0.9, 1.0, 1.0)]
    out = script.over_seeds(per_seed, False)
    assert out["trained"]["2x"]["accuracy"]["high"] == 1.0 and out["bias"]["b1"]["high"] > 1.0
    assert out["trained"]["2x"]["accuracy"]["per_seed"] == [0.9, 1.0, 1.0]


def test_theory_shows_the_generated_tables_of_its_files():
    causes, accuracies = script.theory_inputs(REPO / "docs")
    assert "lengths_accuracy.json" in accuracies
    start, end = script.MARKERS
    block = (REPO / "docs" / "THEORY.md").read_text(encoding="utf-8").split(start, 1)[1].split(end, 1)[0]
    assert block.strip() == script.theory_block(causes, accuracies)
