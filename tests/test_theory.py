import math

import pytest
import torch

from induction_bigram import ModelConfig
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.incontext.theory import (
    _fit_alpha,
    check_theory,
    measure,
    predicted_in_context,
    r_squared,
    read_strengths,
    spearman,
)
from induction_bigram.memories.projections import build_theory_model
from tests.conftest import vocab


def test_formula_limits():
    n_j, m_j, n, T = torch.tensor(3.0), torch.tensor(1.0), torch.tensor(4.0), torch.tensor(64.0)
    # alpha -> infinity: lambda n_j / n; alpha = 0: uniform attention, lambda (n_j + m_j) / T
    assert predicted_in_context(2.0, 40.0, n_j, m_j, n, T) == pytest.approx(2.0 * 3 / 4)
    assert predicted_in_context(2.0, 0.0, n_j, m_j, n, T) == pytest.approx(2.0 * 4 / 64)
    # n = 0: falls back to the other occurrences only
    assert predicted_in_context(2.0, 5.0, torch.tensor(0.0), m_j, torch.tensor(0.0), T) == pytest.approx(2 / 64)


def test_fit_recovers_known_strength_and_score():
    g = torch.Generator().manual_seed(0)
    n = torch.randint(0, 9, (400,), generator=g).double()
    n_j = (n * torch.rand(400, generator=g)).round()
    m_j = torch.randint(0, 3, (400,), generator=g).double()
    T = torch.tensor([32.0, 64.0, 128.0])[torch.randint(0, 3, (400,), generator=g)]
    target = predicted_in_context(3.0, 2.5, n_j, m_j, n, T)
    alpha, lam = _fit_alpha(lambda a: predicted_in_context(1.0, a, n_j, m_j, n, T), target)
    assert alpha == pytest.approx(2.5, abs=0.03) and lam == pytest.approx(3.0, rel=0.02)


def test_scores():
    x = torch.arange(10.0)
    assert r_squared(x, x) == 1.0 and r_squared(torch.full((10,), x.mean()), x) == pytest.approx(0.0)
    assert spearman(x, x**3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)


@pytest.mark.slow
def test_theory_built_model_follows_the_prediction(stats):
    """The theory-built model is the theory's own model: its cell means follow the formula."""
    triggers = stats.most_frequent(5)
    model = build_theory_model(ModelConfig(d_model=256, n_ctx=128, d_vocab=65), triggers, device="cpu", vocab=vocab(65))
    designer = PromptDesigner(stats, triggers)
    g = torch.Generator().manual_seed(0)
    batches = [
        designer.sample(length=T, n_output=n, batch_size=24, generator=g) for T in (32, 128) for n in range(0, 7)
    ]  # noqa: E501
    batches += [
        designer.sample(length=64, n_output=a, n_rival=b, batch_size=12, generator=g) for a, b in ((1, 2), (3, 1))
    ]
    meas = measure(model, batches)
    check = check_theory(meas, read_strengths(model))
    best = next(r for r in check.rungs if r.name == check.best)
    assert best.r2_cells > 0.9
    assert check.growth["mean_spearman"] > 0.5
    assert abs(check.fallback["measured_ic_output"] - check.fallback["predicted_ic_output"]) < 1.0
    assert all(v["measured"] in (0, 1) for v in check.hijack.values())
    assert math.isfinite(check.attention_correlation)
