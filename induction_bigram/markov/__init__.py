"""The hijack against Bayes over alpha (docs/THEORY.md section 9.4; issue 29 item 5).

On the markov task (section 9.1) Bayes switches from the global favourite g to an in-context output
o after n*_Bayes = floor(alpha (pi_b(g | q) - pi_b(o | q))) + 1 observations of q -> o. The study
trains one markov model per alpha, finds its statistical induction head (or says there is none),
and measures its own n* on designed prompts, with the logits split by path.

The study's parts: :class:`MarkovStudyConfig` and :data:`PRESETS` (``quick``, ``full``, ``test``),
:func:`run` (writes ``result.json``), :class:`MarkovResult` (``to_dict`` / ``from_dict``),
:func:`~induction_bigram.markov.figures.figures` and :func:`claims` (claims 46-55); the
computation itself is :mod:`.hijack`.
"""

from induction_bigram.markov.claims import claims
from induction_bigram.markov.config import PRESETS, HijackSettings, MarkovStudyConfig
from induction_bigram.markov.hijack import Pair, bayes_threshold, candidate_pairs, measure_hijack, select_pairs
from induction_bigram.markov.study import AlphaResult, MarkovResult, design_pairs, run

__all__ = [
    "PRESETS",
    "AlphaResult",
    "HijackSettings",
    "MarkovResult",
    "MarkovStudyConfig",
    "Pair",
    "bayes_threshold",
    "candidate_pairs",
    "claims",
    "design_pairs",
    "measure_hijack",
    "run",
    "select_pairs",
]
