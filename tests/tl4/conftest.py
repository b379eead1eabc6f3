"""The TransformerLens 4 tests. ``tl4_only`` modules skip on TL 3 with their reason; the
expected-logits test runs on both (TL 3: the file is current; TL 4: the bridge matches it)."""

from __future__ import annotations

import pytest

from induction_bigram.model.backend import TL4, TL_VERSION

tl4_only = pytest.mark.skipif(
    not TL4, reason=f"tests the TransformerBridge backend (TransformerLens >= 4); this is {TL_VERSION} (make test-tl4)"
)
