"""Student-t quantiles and intervals over seeds (induction_bigram.intervals, docs/THEORY.md section 8)."""

import math
import statistics

import pytest

from induction_bigram.intervals import EXACT_DF_MAX, mean_interval, t_quantile


@pytest.mark.parametrize(
    "p, df, expected",
    [
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 3, 3.1824),
        (0.975, 4, 2.7764),
        (0.975, 5, 2.5706),
        (0.975, 10, 2.2281),
        (0.975, 30, 2.0423),
        (0.975, 100, 1.9840),
        (0.975, 10_000, 1.9602),
        (0.995, 1, 63.6567),
        (0.995, 4, 4.6041),
        (0.95, 2, 2.9200),
        (0.9, 1, 3.0777),
    ],
)
def test_t_quantiles_match_the_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_closed_forms_symmetry_and_the_normal_limit():
    # df = 1 is Cauchy: tan(pi (p - 1/2)); df = 2: (2p - 1) sqrt(2 / (4 p (1 - p)))
    for p in (0.6, 0.9, 0.975, 0.999):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-12)
        assert t_quantile(1 - p, 7) == -t_quantile(p, 7)
    assert t_quantile(0.5, 3) == 0.0
    z = statistics.NormalDist().inv_cdf(0.975)
    assert t_quantile(0.975, 10**7) == pytest.approx(z, abs=1e-6)
    # the exact sum and the asymptotic expansion meet where one hands over to the other
    assert t_quantile(0.975, EXACT_DF_MAX) == pytest.approx(t_quantile(0.975, EXACT_DF_MAX + 1), abs=1e-5)
    assert t_quantile(0.975, EXACT_DF_MAX) > t_quantile(0.975, EXACT_DF_MAX + 1)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (0.975, 0)])
def test_t_quantile_refuses_what_it_cannot_compute(p, df):
    with pytest.raises(ValueError):
        t_quantile(p, df)


def test_mean_interval_is_mean_plus_minus_t_times_the_standard_error():
    wide = mean_interval([1.0, 2.0, 3.0])  # s = 1, n = 3: half-width 4.3027 / sqrt(3)
    assert wide.mean == 2.0
    assert (wide.low, wide.high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), abs=1e-6)
    mean, low, high = mean_interval([0.99, 0.99, 0.99, 0.99])  # no spread: zero width
    assert low == high == mean == pytest.approx(0.99)
    narrow = mean_interval([1.0, 2.0, 3.0], level=0.9)
    assert narrow.mean == 2.0 and wide.low < narrow.low and narrow.high < wide.high


def test_one_value_is_a_zero_width_interval():
    assert tuple(mean_interval([0.7])) == (0.7, 0.7, 0.7)


@pytest.mark.parametrize("values", [[], [1.0, math.nan], [math.inf]])
def test_mean_interval_needs_finite_values(values):
    with pytest.raises(ValueError):
        mean_interval(values)


def test_an_interval_is_clipped_to_the_statistics_range():
    """The t interval of per-seed means runs past a bound that no seed can cross (issue 28's
    rpe 4x accuracies gave [-0.10, 1.21]); clipped, each end stays in the range, the mean does
    not move, and an interval already inside it is unchanged."""
    values = [0.05, 0.95, 0.5]
    wide, clipped = mean_interval(values), mean_interval(values, bounds=(0.0, 1.0))
    assert wide.low < 0.0 and wide.high > 1.0
    assert clipped == (wide.mean, 0.0, 1.0)
    one_sided = mean_interval([0.97, 0.99, 1.0], bounds=(0.0, 1.0))
    assert one_sided.high == 1.0 and one_sided.low == mean_interval([0.97, 0.99, 1.0]).low > 0.0
    inside = [0.4, 0.5, 0.6]
    assert mean_interval(inside, bounds=(0.0, 1.0)) == mean_interval(inside)
    assert mean_interval([-0.9, 1.0], bounds=(-1.0, 1.0)).low == -1.0
    with pytest.raises(ValueError, match="bounds must be"):
        mean_interval(values, bounds=(1.0, 0.0))


def test_a_numbers_range_comes_from_its_dotted_name():
    """The sweep tables clip each interval to its number's range (intervals.RANGES): counts such
    as the markov study's n* (and its mean |n*_model - n*_Bayes|) at 0, fractions to [0, 1]."""
    from induction_bigram.intervals import range_of

    assert range_of("4.n_star_gap") == (0.0, math.inf) and range_of("1.n_star_model") == (0.0, math.inf)
    assert range_of("16.has_head") == (0.0, 1.0) and range_of("in_context_accuracy") == (0.0, 1.0)
    assert range_of("4.excess_ratio") is None
