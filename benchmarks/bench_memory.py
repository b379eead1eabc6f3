"""Time of the whole memory report (W_O2, W_K2, W_K1: projections, recalls, margins, cosines)."""

from __future__ import annotations

from common import machine, median_seconds

from induction_bigram import BigramStats
from induction_bigram.config import ModelConfig
from induction_bigram.memories.projections import build_theory_model, memory_report


def main() -> None:
    stats = BigramStats.default()
    triggers = stats.most_frequent(5)
    print(f"memory report, N = {stats.n_tokens} ({machine()})")
    for d, n_ctx in ((64, 64), (256, 256), (256, 1024)):
        model = build_theory_model(
            ModelConfig(d_model=d, n_ctx=n_ctx, d_vocab=stats.n_tokens), triggers, device="cpu", vocab=stats.vocab
        )
        seconds = median_seconds(lambda: memory_report(model, triggers), repeats=10)
        print(f"  d = {d:4d}, positions = {n_ctx:5d}: {seconds * 1e3:7.1f} ms per report")


if __name__ == "__main__":
    main()
