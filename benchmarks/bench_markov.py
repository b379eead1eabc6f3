"""Milliseconds per batch of MarkovTask.sample (batch 32, T = 128, Shakespeare prior, alpha 1), of the
six reference strategies on it, and, for scale, of one forward and backward pass of the standard
model it is meant to feed (2 layers, 4 heads, d_model 64, LayerNorm, attention only) and of one
evaluation of that model by measure_dynamics."""

from __future__ import annotations

import os
import sys

import torch
from common import machine, median_seconds

from induction_bigram.config.markov import MarkovTaskConfig
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.data.markov import MarkovTask
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.strategies import markov_strategies
from induction_bigram.dynamics import measure_dynamics
from induction_bigram.model import build_standard_model

BATCH, T = 32, 128


def main() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    stats = BigramStats.default()
    print(f"markov task, batch {BATCH} x T {T}, N = {stats.n_tokens} ({machine()}, load {os.getloadavg()[0]:.2f})")
    for alpha in (1.0, 64.0):
        task = MarkovTask(stats, MarkovTaskConfig(seq_len=T, alpha=alpha))
        generator = torch.Generator().manual_seed(0)
        seconds = median_seconds(lambda: task.sample(BATCH, generator), repeats=30)
        print(f"  sample, alpha {alpha:4g}: {seconds * 1e3:6.1f} ms/batch ({BATCH / seconds:8,.0f} sequences/s)")
    tokens = task.sample(BATCH, generator).tokens
    for name, strategy in markov_strategies(stats, 1.0).items():
        seconds = median_seconds(lambda: strategy(tokens), repeats=30)
        print(f"  strategy {name:18s} {seconds * 1e3:6.1f} ms/batch")
    cfg = StandardModelConfig(n_layers=2, n_heads=4, d_model=64, d_head=16, n_ctx=T, vocab="".join(stats.vocab))
    model = build_standard_model(cfg, "cpu")
    seconds = median_seconds(lambda: model(tokens).sum().backward(), repeats=10)
    print(f"  for scale, the model's forward + backward: {seconds * 1e3:6.1f} ms/batch")
    strategies = markov_strategies(stats, 1.0)
    batch = task.sample(BATCH, generator)
    seconds = median_seconds(lambda: measure_dynamics(model, batch.tokens, batch.targets, strategies), repeats=5)
    print(f"  one evaluation, measure_dynamics on the batch: {seconds * 1e3:6.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
