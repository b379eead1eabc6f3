"""The float32 tolerance for values computed elsewhere passes rounding drift and fails real errors."""

import pytest
import torch

from tests.numerics import EPS32, assert_float32_close, float32_tolerance


def test_drift_of_a_few_ulps_of_the_largest_logit_passes():
    logits = torch.linspace(-80, 80, 65)
    # the drift seen between two hosts on the shipped general model: 3.8e-5 at |logit| 80
    assert_float32_close(logits + 3.8e-5, logits)
    assert float32_tolerance(logits) == pytest.approx(64 * EPS32 * 80)


def test_small_values_get_the_tolerance_of_one():
    assert float32_tolerance(torch.tensor([1e-3, -2e-3])) == pytest.approx(64 * EPS32)


@pytest.mark.parametrize("error", [1e-2, 1e-3])
def test_a_modelling_error_fails(error):
    logits = torch.linspace(-80, 80, 65)
    with pytest.raises(AssertionError, match="float32"):
        assert_float32_close(logits + error * logits.abs().max(), logits)


def test_a_shape_mismatch_fails():
    with pytest.raises(AssertionError, match="shape"):
        assert_float32_close(torch.zeros(2, 3), torch.zeros(3, 2))
