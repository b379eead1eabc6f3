"""Phase detection on synthetic KL curves and the dynamics figure
(induction_bigram/dynamics/phases.py, figures.py)."""

import dataclasses
import math

import pytest

from induction_bigram.dynamics import (
    DynamicsPoint,
    HeadSummary,
    Phase,
    Transition,
    detect_phases,
    head_formation_step,
    kl_curves,
    plot_dynamics,
)
from induction_bigram.errors import DataError

STEPS = list(range(0, 2000, 50))  # 40 records


def _curve(centre: float, rising: bool, width: float = 100.0) -> list[float]:
    """A KL curve that falls (or rises) smoothly around ``centre``, between 0.05 and 2."""
    return [0.05 + 1.95 / (1 + math.exp((-1 if rising else 1) * (s - centre) / width)) for s in STEPS]


def _three_phases() -> dict[str, list[float]]:
    """uniform nearest first, then the bigram, then Bayes: the curves cross at about 500 and 1200."""
    return {
        "uniform": _curve(500, rising=True),
        "bigram": [min(a, b) + 0.3 for a, b in zip(_curve(450, rising=False), _curve(1250, rising=True))],
        "bayes": _curve(1200, rising=False),
    }


def test_step_curves_have_their_transitions_exactly_at_the_steps():
    kl = {
        "uniform": [0.1 if s < 500 else 2.0 for s in STEPS],
        "bigram": [0.2 if 500 <= s < 1200 else 1.0 for s in STEPS],
        "bayes": [0.05 if s >= 1200 else 2.0 for s in STEPS],
    }
    phases = detect_phases(STEPS, kl)
    assert phases.phases == (Phase("uniform", 0, 450), Phase("bigram", 500, 1150), Phase("bayes", 1200, 1950))
    assert phases.transitions == (Transition(500, 450, "uniform", "bigram"), Transition(1200, 1150, "bigram", "bayes"))
    assert "uniform -> bigram at step 500 (after 450)" in str(phases)


def test_smooth_curves_change_phase_just_after_they_cross():
    """The leader must be 10% nearer, so the transition comes at most a few records after the crossing."""
    kl = _three_phases()
    phases = detect_phases(STEPS, kl)
    assert [p.strategy for p in phases.phases] == ["uniform", "bigram", "bayes"]
    for transition in phases.transitions:
        before, after = kl[transition.before], kl[transition.after]
        crossing = next(s for s, b, a in zip(STEPS, before, after) if a < b)
        assert crossing <= transition.step <= crossing + 150


def test_curves_that_never_cross_have_no_transition():
    kl = {"uniform": [2.0 - 0.01 * i for i in range(40)], "bayes": [3.0 - 0.01 * i for i in range(40)]}
    phases = detect_phases(STEPS, kl)
    assert phases.phases == (Phase("uniform", 0, STEPS[-1]),) and phases.transitions == ()
    assert str(phases).startswith("no transition: nearest to uniform throughout")


def test_curves_no_strategy_clearly_leads_give_no_phase_at_all():
    kl = {"uniform": [1.0] * 40, "bigram": [1.05] * 40, "bayes": [3.0] * 40}
    phases = detect_phases(STEPS, kl)
    assert phases.phases == () and phases.transitions == ()
    assert str(phases).startswith("no phase: no strategy was the nearest")


def test_a_one_record_blip_is_not_a_phase():
    uniform = [1.0] * 40
    bayes = [2.0] * 40
    bayes[20] = 0.5  # one noisy evaluation
    phases = detect_phases(STEPS, {"uniform": uniform, "bayes": bayes})
    assert phases.transitions == ()
    assert detect_phases(STEPS, {"uniform": uniform, "bayes": bayes}, min_records=1).transitions == (
        Transition(1000, 950, "uniform", "bayes"),
        Transition(1050, 1000, "bayes", "uniform"),
    )


def test_a_phase_interrupted_by_undecided_records_is_one_phase():
    uniform, bayes = [1.0] * 40, [2.0] * 40
    bayes[10:13] = [1.02] * 3  # a tie for three records
    phases = detect_phases(STEPS, {"uniform": uniform, "bayes": bayes})
    assert phases.phases == (Phase("uniform", 0, STEPS[-1]),)


@pytest.mark.parametrize(
    "steps, kl, message",
    [
        (STEPS, {"uniform": [1.0] * 40}, "at least 2 strategies"),
        (STEPS[::-1], {"a": [1.0] * 40, "b": [2.0] * 40}, "strictly increasing"),
        (STEPS, {"a": [1.0] * 39, "b": [2.0] * 40}, "has 39 values for 40 steps"),
        (STEPS, {"a": [math.nan] * 40, "b": [2.0] * 40}, "NaN or negative"),
    ],
)
def test_bad_curves_are_a_clear_error(steps, kl, message):
    with pytest.raises(DataError, match=message):
        detect_phases(steps, kl)


def _point(kl: dict[str, float], step: int) -> DynamicsPoint:
    head = HeadSummary((0, 1), min(step / 2000, 1.0), 0.1)
    return DynamicsPoint(
        loss=kl["bayes"] + 1.3,
        strategy_loss={"uniform": 4.17, "bigram": 2.46, "bayes": 1.33},
        kl=kl,
        reference="bayes",
        excess_loss=kl["bayes"],
        excess_ratio=kl["bayes"] / 1.13,
        in_context_score=-0.1,
        previous_token=head,
        induction=head,
        statistical_induction=head,
    )


def test_the_figure_draws_loss_kls_heads_and_each_transition():
    kl = _three_phases()
    points = [_point({name: curve[i] for name, curve in kl.items()}, s) for i, s in enumerate(STEPS)]
    assert kl_curves(points) == kl
    phases = detect_phases(STEPS, kl_curves(points))
    fig = plot_dynamics(STEPS, points, phases)
    loss_ax, kl_ax, head_ax = fig.axes
    assert len(kl_ax.get_lines()) == 3 + len(phases.transitions)
    assert "uniform (0) -> bigram" in loss_ax.get_title()
    assert len(head_ax.get_lines()) == 6 + len(phases.transitions)
    with pytest.raises(DataError, match="one point per step"):
        plot_dynamics(STEPS[:-1], points)


def _heads(previous: float, induction: float, chance: float = 0.2) -> DynamicsPoint:
    point = _point({"uniform": 1.0, "bigram": 0.5, "bayes": 0.1}, 0)
    return dataclasses.replace(
        point,
        previous_token=HeadSummary((0, 0), previous, chance),
        statistical_induction=HeadSummary((1, 0), induction, chance),
    )


def test_the_heads_form_at_the_first_record_where_both_clear_their_floor():
    # floor = 0.2 + 0.25 x 0.8 = 0.4: the previous-token head clears it at 100, the induction head at 200
    points = [_heads(0.1, 0.1), _heads(0.45, 0.3), _heads(0.5, 0.4), _heads(0.2, 0.9)]
    assert head_formation_step([0, 100, 200, 300], points) == 200
    assert head_formation_step([0, 100], points[:2]) is None
    with pytest.raises(DataError, match="3 steps for 4"):
        head_formation_step([0, 1, 2], points)
