"""A model measured against the strategies (induction_bigram/dynamics/measure.py), on real TL models
of either backend built by the package."""

import json
import math

import pytest
import torch

import induction_bigram as ib
from induction_bigram.anymodel.heads import attention_patterns
from induction_bigram.config import TaskConfig
from induction_bigram.config.markov import MarkovTaskConfig
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.data.markov import MarkovTask
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.strategies import markov_strategies, token_losses
from induction_bigram.data.task import TriggerTask
from induction_bigram.dynamics import (
    DynamicsPoint,
    measure_dynamics,
    plot_run_dynamics,
    run_dynamics,
    track_trigger_dynamics,
)
from induction_bigram.errors import DataError
from induction_bigram.files import dumps_json
from induction_bigram.model import build_standard_model
from induction_bigram.training.checkpoint import read_metrics
from induction_bigram.training.standard import in_context_score
from tests.anymodel.builders import INDUCTION, PREVIOUS_TOKEN, ideal_circuit_model


@pytest.fixture(scope="module")
def untrained(stats):
    cfg = StandardModelConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=64, vocab="".join(stats.vocab))
    return build_standard_model(cfg, "cpu")


@pytest.fixture(scope="module")
def batch(stats):
    return MarkovTask(stats, MarkovTaskConfig(seq_len=64, alpha=1.0)).sample(16, torch.Generator().manual_seed(0))


def test_an_untrained_model_is_measured_against_every_strategy(untrained, stats, batch):
    strategies = markov_strategies(stats, 1.0)
    untrained.train()
    point = measure_dynamics(untrained, batch.tokens, batch.targets, strategies)
    assert untrained.training, "the model's mode is given back"
    with torch.no_grad():
        losses = token_losses(untrained(batch.tokens).float().log_softmax(-1), batch.targets)
    assert point.loss == pytest.approx(float(losses.mean()), rel=1e-5)
    assert point.in_context_score == pytest.approx(in_context_score(losses.mean(0)), abs=1e-5)
    assert set(point.kl) == set(point.strategy_loss) == set(strategies)
    assert all(math.isfinite(kl) and kl >= 0 for kl in point.kl.values())
    assert point.kl["uniform"] < point.kl["bayes"], "an untrained model predicts nearly uniformly"
    assert point.excess_loss == pytest.approx(point.loss - point.strategy_loss["bayes"])
    gap = point.strategy_loss["bigram"] - point.strategy_loss["bayes"]
    assert point.excess_ratio == pytest.approx(point.excess_loss / gap) and point.excess_ratio > 1
    assert point.previous_token.head[0] == 0 and point.statistical_induction.head[0] == 1
    assert point.strategy_loss["in_context_bigram"] == math.inf
    assert DynamicsPoint.from_dict(json.loads(dumps_json(point.to_dict()))) == point, "strict JSON: inf as null"


def test_without_the_reference_there_is_no_excess_loss(untrained, stats, batch):
    strategies = {k: v for k, v in markov_strategies(stats, 1.0).items() if k in ("uniform", "bigram")}
    point = measure_dynamics(untrained, batch.tokens, batch.targets, strategies)
    assert point.reference is None and point.excess_loss is None and point.excess_ratio is None


def test_it_measures_on_the_trigger_task_too(untrained, stats):
    """Nothing in the toolkit is Markov-specific: trigger-task sequences, the strategies that apply there."""
    batch = TriggerTask(stats, TaskConfig(seq_len=64, n_triggers=3)).sample(8, torch.Generator().manual_seed(0))
    strategies = {k: v for k, v in markov_strategies(stats, 1.0).items() if k in ("uniform", "unigram", "bigram")}
    point = measure_dynamics(untrained, batch.tokens, batch.targets, strategies, reference="unigram")
    assert point.excess_loss == pytest.approx(point.loss - point.strategy_loss["unigram"])
    assert point.strategy_loss["bigram"] == math.inf, "uniform outputs the corpus never shows after their trigger"
    assert point.excess_ratio is None, "no ratio to an infinite excess"
    assert point.kl["uniform"] < point.kl["bigram"] < math.inf
    against_bigram = measure_dynamics(untrained, batch.tokens, batch.targets, strategies, reference="bigram")
    assert against_bigram.excess_loss is None, "no excess over an infinite loss"


def test_the_ideal_circuit_is_found_as_previous_token_and_statistical_induction_heads():
    model = ideal_circuit_model()
    task = MarkovTask.from_config(MarkovTaskConfig(corpus="zipf:16:1.0:0", seq_len=32, alpha=1.0))
    batch = task.sample(8, torch.Generator().manual_seed(0))
    point = measure_dynamics(model, batch.tokens, batch.targets, markov_strategies(task.stats, 1.0))
    assert point.previous_token.head == PREVIOUS_TOKEN and point.previous_token.score > 0.9
    assert point.statistical_induction.head == INDUCTION and point.statistical_induction.score > 0.9
    assert point.induction.head == INDUCTION and point.induction.score > 0.9
    assert point.statistical_induction.chance < 0.5


def test_the_statistical_induction_score_is_attention_after_every_earlier_occurrence(untrained, stats, batch):
    """Computed here from the pattern itself: keys s + 1 with z_s = z_t, s < t."""
    point = measure_dynamics(untrained, batch.tokens, batch.targets, markov_strategies(stats, 1.0))
    tokens = batch.tokens
    T = tokens.shape[1]
    same = (tokens[:, :, None] == tokens[:, None, :]) & torch.ones(T, T, dtype=torch.bool).tril(-1)
    after = torch.zeros_like(same)
    after[:, :, 1:] = same[:, :, :-1]  # key s + 1 for each earlier occurrence s
    queries = after.any(-1)
    layer, head = point.statistical_induction.head
    with torch.no_grad():
        pattern = attention_patterns(untrained, tokens)[layer][:, head]
    per_prompt = (pattern * after).sum((-2, -1)) / (pattern * queries[..., None]).sum((-2, -1))
    assert point.statistical_induction.score == pytest.approx(float(per_prompt.mean()), rel=1e-5)


def test_strategies_of_another_vocabulary_are_a_clear_error(untrained, batch):
    other = BigramStats.from_corpus("zipf:12:1.0:0")
    with pytest.raises(DataError, match="strategy 'uniform' gives shape"):
        measure_dynamics(untrained, batch.tokens, batch.targets, markov_strategies(other, 1.0))


@pytest.mark.slow
def test_a_trigger_task_training_moves_from_the_global_bigram_to_the_in_context_copy(tmp_path):
    """The toolkit on the trigger task (issue 29, item 4): a real training of the associative memory
    transformer (``amt``: W_F learns the bigram, the heads the copy) at d = T = 64, tracked at every
    evaluation, its curves read back from ``metrics.jsonl`` and their phases detected."""
    config = ib.preset("amt").with_overrides(
        {
            "task.seq_len": 64,
            "model.d_model": 64,
            "model.n_ctx": 64,
            "train.steps": 300,
            "train.batch_size": 32,
            "train.eval_every": 20,
            "train.eval_batch_size": 64,
            "train.checkpoint_every": 300,
            "train.device": "cpu",
        }
    )
    ib.train(config, tmp_path / "run", progress=False, track=[track_trigger_dynamics])
    steps, points, phases = run_dynamics(read_metrics(tmp_path / "run"))
    assert set(points[0].kl) == {"uniform", "unigram", "bigram", "in_context_copy"}
    assert points[0].kl["uniform"] < min(v for k, v in points[0].kl.items() if k != "uniform"), "untrained"
    assert [p.strategy for p in phases.phases][-2:] == ["bigram", "in_context_copy"], phases
    transition = phases.transitions[-1]
    assert (transition.before, transition.after) == ("bigram", "in_context_copy")
    assert 100 < transition.step < 300, phases
    # the copy's loss is finite (outputs follow the bigram), so the excess over it is measured
    assert points[-1].reference == "in_context_copy" and points[-1].excess_ratio < points[0].excess_ratio
    fig = plot_run_dynamics(tmp_path / "run")
    assert f"in_context_copy ({transition.step})" in fig.axes[0].get_title()
