"""The markov study's config, run, result JSON, figures and claims (induction_bigram.markov)."""

import dataclasses
import json

import pytest
from matplotlib.figure import Figure

from induction_bigram.claims import registered
from induction_bigram.config.markov import markov_preset
from induction_bigram.errors import ConfigError
from induction_bigram.files import dumps_json
from induction_bigram.markov import PRESETS, MarkovResult, MarkovStudyConfig, claims, design_pairs, run
from induction_bigram.markov.figures import figures, seed_figures
from induction_bigram.markov.hijack import Pair
from induction_bigram.markov.markdown import markov_section
from tests.conftest import preset_run_fixture

finished = preset_run_fixture("markov")


def test_presets_train_the_markov_recipe_at_each_alpha():
    assert list(PRESETS) == ["quick", "full", "test"] and all(PRESETS.doc(name) for name in PRESETS)
    full = PRESETS["full"]
    assert full.markov.alphas == (1.0, 4.0, 16.0, 64.0)
    shipped = markov_preset("markov")
    assert full.run_config(1.0).model == shipped.model and full.run_config(1.0).task == shipped.task
    assert full.run_config(64.0).task.alpha == 64.0 and full.run_config(64.0).train.steps == shipped.train.steps


@pytest.mark.parametrize(
    "override, message",
    [
        ("markov.alphas=4,1", "markov.alphas must be increasing and > 0"),
        ("markov.alphas=0,1", "markov.alphas must be increasing and > 0"),
        ("markov.max_count=8", "needs prompts of 17 tokens; the shortest length is 8"),
        ("markov.lengths=8,32", "beyond task.seq_len 16"),
        ("markov.lengths=16,8", "markov.lengths must be increasing"),
    ],
)
def test_bad_settings_are_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        PRESETS["test"].with_overrides([override])


def test_the_study_runs_round_trips_and_says_when_no_head_formed(finished):
    out, result = finished
    again = MarkovResult.from_dict(json.loads((out / "result.json").read_text()))
    assert dumps_json(again.to_dict()) == dumps_json(result.to_dict())
    assert again.config == PRESETS["test"] and MarkovStudyConfig.from_dict(again.config.to_dict()) == again.config
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["alpha=1", "alpha=4"]
    # six steps form no head: no n*, no path split, and the n* claims stay undefined
    assert not any(a.has_head for a in result.alphas.values())
    assert all(a.head_step is None and result.summary()[k]["head_step"] is None for k, a in result.alphas.items())
    assert all(a.cells == {} and a.thresholds == {} for a in result.alphas.values())
    made = claims(result)
    assert [c.value for c in made[:4]] == [None] * 4
    assert [c.held for c in made[:4]] == [None] * 4 and made[0].measured == "no statistical induction head"
    assert all(c.value is not None for c in made[4:])  # the excess loss is measured whatever the head
    assert all(registered("markov", c).id in range(46, 56) for c in made)
    assert set(figures(again)) == {"n_star_vs_bayes.png", "path_split.png"}
    assert all(isinstance(f, Figure) for f in seed_figures([result, again]).values())
    assert "| 1 | 0 of 2 |" in "\n".join(markov_section([result, again], []))


def test_a_finished_study_is_reused_not_retrained(finished):
    out, result = finished
    again = run(PRESETS["test"], out, progress=False)
    assert [a.train_seconds for a in again.alphas.values()] == [a.train_seconds for a in result.alphas.values()]


def test_pairs_chosen_by_several_alphas_are_measured_once(stats):
    pairs, chosen_for = design_pairs(stats, PRESETS["test"])
    assert len(pairs) == len(set(pairs)) == len(chosen_for)
    assert {a for alphas in chosen_for for a in alphas} == {1.0, 4.0}


def _with_thresholds(finished, thresholds: dict[str, dict[str, list]]) -> MarkovResult:
    """The finished result with hand-made n* (and in-context curves) per alpha, as if a head formed."""
    _, result = finished
    alphas = {}
    for key, a in result.alphas.items():
        n_pairs, counts = len(result.pairs), result.config.markov.max_count + 1
        rising = [[float(n) for n in range(counts)] for _ in range(n_pairs)]
        cells = {T: {"in_context": rising} for T in thresholds[key]}
        alphas[key] = dataclasses.replace(a, induction_head=(1, 0), cells=cells, thresholds=thresholds[key])
    return MarkovResult(result.config, result.pairs, result.chosen_for, alphas, result.wall_seconds)


def test_the_claims_read_n_star_against_bayes_by_hand(finished):
    _, result = finished
    pairs, chosen = result.pairs, result.chosen_for
    assert [p.bayes(1.0) for p in pairs] == [1] * len(pairs)  # alpha <= 1: Bayes switches at once
    bayes4 = [p.bayes(4.0) for p in pairs]
    never = None  # no switch by max_count = 3: counts as 4
    model1 = {"8": [1] * len(pairs), "16": [2] * len(pairs)}
    model4 = {"8": [never] * len(pairs), "16": bayes4}
    made = claims(_with_thresholds(finished, {"1": model1, "4": model4}))
    own4 = [i for i, a in enumerate(chosen) if 4.0 in a]
    expected4 = sum(abs(4 - bayes4[i]) for i in own4) / (2 * len(own4))
    assert made[0].value == pytest.approx(0.5) and made[0].held is True
    assert made[1].value == pytest.approx(expected4)
    assert made[2].value == pytest.approx(1.0)  # mean n* 1.5 at alpha 1 against more at alpha 4
    assert made[3].value == pytest.approx(1.0)  # every in-context curve rises with n
    for c in made:
        registered("markov", c)


def test_n_star_falling_with_alpha_fails_the_growth_claim(finished):
    _, result = finished
    high, low = [3] * len(result.pairs), [1] * len(result.pairs)
    made = claims(_with_thresholds(finished, {"1": {"8": high}, "4": {"8": low}}))
    assert made[2].value == pytest.approx(-1.0) and made[2].held is False


def test_a_pair_round_trips():
    pair = Pair(1, 2, 3, 0.1, 0.4)
    assert Pair.from_dict(json.loads(json.dumps(pair.to_dict()))) == pair and pair.bayes(10.0) == 4
