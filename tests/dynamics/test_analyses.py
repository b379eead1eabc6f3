"""The analyses on the shipped ``markov`` model (induction_bigram/dynamics/analyses.py, issue 29 item 6),
on real models of either backend: the trained one has its statistical induction heads, an untrained
one gets "nothing found", and docs/markov_analyses.json is what scripts/markov_analyses.py writes."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
import torch

from induction_bigram.dynamics.analyses import OccurrenceAttention, occurrence_attention
from tests.anymodel.builders import INDUCTION, ideal_circuit_model
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("markov_analyses", REPO / "scripts" / "markov_analyses.py")
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script
spec.loader.exec_module(script)


@pytest.fixture(scope="module")
def analyses():
    return script.markov_analyses()


def test_the_shipped_model_has_averaging_statistical_induction_heads(analyses):
    trained = analyses["trained"]
    assert trained["found"] and trained["random_tokens"]["found"] and trained["chains"]["found"]
    pair = trained["pair"]
    assert pair["previous_token"][0] == 0 and pair["induction"][0] == 1
    assert pair["induction_score"] > trained["chains"]["floors"]["induction"]
    heads = trained["statistical_induction_heads"]
    assert pair["induction"] in heads
    for name, attention in trained["occurrence_attention"].items():
        on = attention["on_matches"]
        assert all(a < b for a, b in zip(on, on[1:])), f"{name}: more occurrences, more attention on them"
        # an averaging head spreads over the occurrences: the latest gets about 1 / n_q, not all of it
        for n, latest in zip(attention["counts"][1:], attention["latest"][1:]):
            assert latest < 1.5 / n, (name, n, latest)
        assert all(0.5 < a < 4 for a in attention["alpha_eff"]), "a Bayes-shaped weight on the context"
    per_head = [memories["W_O2"]["recall"] for memories in trained["memories"].values()]
    assert trained["summed_readout"]["recall"] > max(per_head), "the heads share the readout memory"
    paths = trained["paths"]
    assert paths["model_prefers_in_context"] > 0.8
    in_context = sum(paths["by_source"][f"L{h[0]}H{h[1]}/direct"] for h in heads)
    assert in_context > 0 > paths["by_source"]["token/direct"]
    patching = trained["patching"]
    assert patching["gap"]["measurable"] and patching["last_layer_at_last_position"] > 0.9
    assert all(p["restored_last"] < patching["last_layer_at_last_position"] for p in patching["per_head"].values())


def test_the_untrained_twin_gets_nothing_found(analyses):
    untrained = analyses["untrained"]
    assert untrained["found"] is False and set(untrained) == {"found", "random_tokens", "chains"}
    assert untrained["random_tokens"]["verdict"].startswith("no induction circuit")
    assert untrained["chains"]["verdict"].startswith("no induction circuit")


def test_the_generated_file_is_what_the_script_writes(analyses):
    """Numbers to float tolerance: the file was written on one backend, the test runs on both."""
    written = json.loads((REPO / "docs" / "markov_analyses.json").read_text())
    fresh = json.loads(script.dumps_json(analyses))
    assert written.keys() == fresh.keys() and written["untrained"]["found"] is fresh["untrained"]["found"] is False

    def close(a, b, where):
        if isinstance(a, dict):
            assert a.keys() == b.keys(), where
            for key in a:
                close(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                close(x, y, f"{where}[{i}]")
        elif isinstance(a, float) and isinstance(b, float):
            assert b == pytest.approx(a, rel=1e-3, abs=1e-4), where
        else:
            assert a == b, where

    # the trained weights are the same on both backends; an untrained model's initial values are each TL's own
    close(written["trained"], fresh["trained"], "trained")


def test_occurrence_attention_of_the_ideal_circuit_is_an_even_average():
    """The ideal circuit's induction head attends evenly to every position after an earlier occurrence."""
    model = ideal_circuit_model()
    tokens = torch.randint(0, 4, (4, 32), generator=torch.Generator().manual_seed(0))
    attention = occurrence_attention(model, INDUCTION, tokens, counts=(1, 2, 3, 50))
    assert isinstance(attention, OccurrenceAttention) and attention.queries[-1] == 0
    assert math.isnan(attention.on_matches[-1])
    for n, on, latest, even in zip(attention.counts[:3], attention.on_matches, attention.latest, attention.evenness):
        assert on > 0.85 and latest == pytest.approx(1 / n, abs=0.1) and even > 0.95
