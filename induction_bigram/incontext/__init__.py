"""The in-context against bigram study (docs/THEORY.md sections 4 to 6).

- :mod:`.decompose`: the logits split into the circuit's parts (xi^IC, xi^G);
- :mod:`.measure`: designed prompts through a model, one forward pass per chunk;
- :mod:`.weights_only`: the in-context logits predicted from the memory projections alone, and
  the cause decomposition of what that prediction misses;
- :mod:`.theory`: the predicted in-context logits and the ladder that tests them;
- :mod:`.patching`: clean into corrupted activation patching;
- :mod:`.config`, :mod:`.study`, :mod:`.claims`, :mod:`.figures`: the study's config and
  presets, ``run`` / ``analyse`` and its result, its claims, and its figures;
- :mod:`.markdown`, :mod:`.in_words`: its section of ``REPORT.md``, and its findings in words;
- :mod:`.repeated`: the repeated-random-sequence test of a general induction head.
"""

from induction_bigram.incontext.claims import claims
from induction_bigram.incontext.config import PRESETS, InContextConfig, InContextSettings
from induction_bigram.incontext.study import InContextResult, analyse, run

__all__ = ["PRESETS", "InContextConfig", "InContextResult", "InContextSettings", "analyse", "claims", "run"]
