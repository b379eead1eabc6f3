"""Claims with the statistic they are judged on, and their verdict over seeds
(induction_bigram.claims, docs/THEORY.md section 8)."""

import math
from dataclasses import replace

import pytest

from induction_bigram.claims import Claim, ClaimOverSeeds, aggregate_claims, compare


def threshold(value, direction=">=", at=0.9, section="2", statement="learns the task"):
    return Claim(section, statement, f"{value}", value=value, threshold=at, direction=direction, statistic="accuracy")


def yes_no(held, statement="an order"):
    return Claim("3", statement, "steps", held)


def reported(text="n* 1, 2"):
    return Claim("5.4", "hijack threshold", text, reported=True)


# -- one seed -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, direction, expected",
    [
        (0.9, ">=", True),
        (0.89, ">=", False),
        (0.9, ">", False),
        (0.91, ">", True),
        (0.9, "<=", True),
        (0.9, "<", False),
    ],
)
def test_a_claim_computes_held_from_value_direction_and_threshold(value, direction, expected):
    c = threshold(value, direction)
    assert c.held is expected and c.kind == "threshold" and compare(value, direction, 0.9) is expected


def test_a_claim_without_a_threshold_is_yes_no_or_reported():
    assert (yes_no(True).kind, yes_no(True).held, yes_no(None).held) == ("yes/no", True, None)
    assert reported().kind == "reported" and reported().held is None
    with_value = Claim("3", "solves the task", "accuracy 0.99", True, value=0.99)
    assert with_value.kind == "yes/no" and with_value.value == 0.99


def test_an_undefined_statistic_is_undecided_in_its_seed():
    assert threshold(math.nan).value is None and threshold(math.nan).held is None
    assert threshold(None).held is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"value": 0.95, "threshold": 0.9, "statistic": "accuracy"},  # no direction
        {"value": 0.95, "direction": ">=", "statistic": "accuracy"},  # no threshold
        {"value": 0.95, "threshold": 0.9, "direction": "=>", "statistic": "accuracy"},
        {
            "held": False,
            "value": 0.95,
            "threshold": 0.9,
            "direction": ">=",
            "statistic": "accuracy",
        },  # contradicts the comparison
        {"held": True, "reported": True},
        {"value": 0.95, "threshold": 0.9, "direction": ">="},  # a threshold without the statistic it bounds
    ],
)
def test_a_claim_refuses_an_inconsistent_verdict(kwargs):
    with pytest.raises((ValueError, TypeError)):  # TypeError: the tests' runtime type checks see "=>" first
        Claim("2", "s", "m", **kwargs)


def test_claims_round_trip_through_dicts():
    for c in (threshold(0.95), threshold(math.nan), yes_no(False), yes_no(None), reported()):
        assert Claim.from_dict(c.to_dict()) == c


# -- over seeds ---------------------------------------------------------------------------------


def test_an_interval_that_clears_the_threshold_holds():
    (c,) = aggregate_claims([[threshold(v)] for v in (0.994, 0.990, 0.998)])
    assert c.held is True and c.verdict == "yes" and c.n_seeds == c.n_values == 3
    assert c.mean == pytest.approx(0.994) and c.low > 0.9
    half = 4.302653 * 0.004 / math.sqrt(3)  # t_{0.975, 2} s / sqrt(n), s = 0.004
    assert (c.low, c.high) == pytest.approx((0.994 - half, 0.994 + half), abs=1e-6)
    assert c.value_text == f"0.994 [{0.994 - half:.3f}, {0.994 + half:.3f}] over 3 seeds"
    assert c.threshold_text == "accuracy >= 0.9" and c.held_per_seed == (True, True, True)


def test_an_interval_straddling_the_threshold_is_undecided_even_when_every_seed_holds():
    (c,) = aggregate_claims([[threshold(v)] for v in (0.91, 0.95, 0.99)])
    assert c.held_per_seed == (True, True, True) and c.low < 0.9 < c.high
    assert c.held is None and c.verdict == "undecided"


def test_an_interval_wholly_on_the_wrong_side_fails():
    (c,) = aggregate_claims([[threshold(v)] for v in (0.5, 0.6, 0.7)])
    assert c.high < 0.9 and c.held is False and c.verdict == "no"


@pytest.mark.parametrize(
    "direction, values, expected",
    [
        ("<=", (0.1, 0.12, 0.11), True),
        ("<=", (0.95, 0.96, 0.97), False),
        (">", (0.9, 0.9, 0.9), False),  # zero width, on the threshold: not above it
        (">=", (0.9, 0.9, 0.9), True),
        ("<", (0.9, 0.9, 0.9), False),
    ],
)
def test_every_direction_is_judged_on_the_whole_interval(direction, values, expected):
    (c,) = aggregate_claims([[threshold(v, direction)] for v in values])
    assert c.held is expected


def test_one_seed_is_a_zero_width_interval_with_the_seeds_own_verdict():
    for value in (0.95, 0.85):
        (c,) = aggregate_claims([[threshold(value)]])
        assert c.low == c.high == c.mean == value and c.held is threshold(value).held
        assert "1 seed" in c.value_text and c.value_text == f"{value:.3f} over 1 seed (no interval)"


def test_a_yes_no_claim_holds_when_it_holds_in_every_seed():
    judged = [aggregate_claims([[yes_no(h)] for h in helds])[0].held for helds in ((True,) * 3, (False,) * 3)]
    assert judged == [True, False]
    for helds in ((True, True, False), (True, None, True), (None, None, None)):
        c = aggregate_claims([[yes_no(h)] for h in helds])[0]
        assert c.held is None and c.verdict == "undecided" and c.mean is None and c.value_text == ""
    assert aggregate_claims([[yes_no(True)]])[0].threshold_text == "in every seed"
    ordered = Claim("3", "an order", "steps", True, statistic="steps strictly in this order")
    assert aggregate_claims([[ordered]])[0].threshold_text == "steps strictly in this order, in every seed"


def test_a_reported_claim_stays_reported():
    (c,) = aggregate_claims([[reported("n* 1")], [reported("n* 2")]])
    assert c.verdict == "reported" and c.held is None and c.measured == ("n* 1", "n* 2") and c.threshold_text == ""


def test_a_statistic_undefined_in_some_seed_is_judged_seed_by_seed():
    (c,) = aggregate_claims([[threshold(v)] for v in (0.95, math.nan, 0.96)])
    assert c.n_values == 2 and c.held is None and c.value_text.endswith("over 2 of 3 seeds")


def test_claims_are_matched_by_section_and_statement_in_the_first_seeds_order():
    a, b = threshold(0.95, statement="a"), yes_no(True, statement="b")
    found = aggregate_claims([[a, b], [b, a]])
    assert [c.statement for c in found] == ["a", "b"] and [c.held for c in found] == [True, True]
    assert found[0].to_dict()["verdict"] == "yes" and found[0].to_dict()["text"].startswith("0.950")


def test_a_claim_missing_from_a_seed_is_an_error_that_names_it():
    a, b = threshold(0.95, statement="accuracy"), yes_no(True, statement="the order")
    with pytest.raises(ValueError, match=r"'the order' is missing from seed\(s\) \[1\]"):
        aggregate_claims([[a, b], [a]])
    with pytest.raises(ValueError, match="'accuracy' is missing"):
        aggregate_claims([[b], [a, b]])
    with pytest.raises(ValueError, match="twice"):
        aggregate_claims([[a, a]])
    with pytest.raises(ValueError, match="differs"):
        aggregate_claims([[a], [threshold(0.95, at=0.8, statement="accuracy")]])
    with pytest.raises(ValueError):
        aggregate_claims([])


def test_a_claims_interval_is_clipped_to_its_range_and_its_verdict_is_unchanged():
    """An accuracy's interval over seeds stays within [0, 1]; clipping moves only an end beyond the
    range, where no threshold lies, so the verdict is the unclipped one."""
    values = (0.62, 0.99, 0.97)
    bounded = [[replace(threshold(v), bounds=(0.0, 1.0))] for v in values]
    (c,) = aggregate_claims(bounded)
    (unclipped,) = aggregate_claims([[threshold(v)] for v in values])
    assert unclipped.high > 1.0 and c.high == 1.0 and c.low == unclipped.low and c.mean == unclipped.mean
    assert c.held is unclipped.held is None and c.bounds == (0.0, 1.0)
    assert ClaimOverSeeds.from_dict(c.to_dict()) == c and Claim.from_dict(bounded[0][0].to_dict()) == bounded[0][0]
    with pytest.raises(ValueError, match="differs in kind or threshold"):
        aggregate_claims([bounded[0], [threshold(0.9)]])  # a range that differs between seeds
