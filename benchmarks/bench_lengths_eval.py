"""Seconds of the lengths study's evaluation pass (``count_positions``) at each prompt length k
T_train, by ``lengths.chunk_size`` (prompts per forward pass), on the ``cpu`` preset's shape
(d = 128, T_train = 64, 256 prompts), and whether each chunk size counts exactly what the
largest does.

At 8 T_train a chunk of 32 prompts holds 32 x 512 x 512 attention weights per layer, which
outgrow the cache: smaller chunks run faster there and count the same.

    python benchmarks/bench_lengths_eval.py [--variants ape,rpe] [--chunks 32,16,8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os

import torch
from common import machine, median_seconds

from induction_bigram import BigramStats, TriggerTask, build_model
from induction_bigram.lengths import PRESETS
from induction_bigram.lengths.config import variant_config
from induction_bigram.lengths.protocol import PositionCounts, count_positions, protocol_batch


def same_counts(a: PositionCounts, b: PositionCounts) -> bool:
    names = [f for f in vars(a) if isinstance(getattr(a, f), torch.Tensor)]
    return all(torch.equal(getattr(a, f), getattr(b, f)) for f in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="ape,rpe")
    parser.add_argument("--chunks", default="32,16,8")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config, stats = PRESETS["cpu"], BigramStats.default()
    chunks = [int(c) for c in args.chunks.split(",")]
    T, batch_size = config.task.seq_len, config.lengths.eval_batch_size
    print(f"count_positions, {batch_size} prompts, T_train {T} ({machine()}, load {os.getloadavg()[0]:.2f})")
    print(f"{'variant':8s} {'k':>2s} " + " ".join(f"{f'chunk {c}':>9s}" for c in chunks) + "  same counts")
    totals = dict.fromkeys(chunks, 0.0)
    for variant in args.variants.split(","):
        run = variant_config(variant, config).with_vocab(stats.n_tokens)
        model = build_model(run.model, "cpu", vocab=stats.vocab).eval()
        task = TriggerTask(stats, run.task)
        for k in config.lengths.multiples:
            batch = protocol_batch(task, "ordinary", k, T, batch_size, torch.Generator().manual_seed(k))
            seconds = {c: median_seconds(lambda: count_positions(model, batch, T, c), args.repeats) for c in chunks}
            reference = count_positions(model, batch, T, max(chunks))
            same = all(same_counts(reference, count_positions(model, batch, T, c)) for c in chunks)
            for c in chunks:
                totals[c] += seconds[c]
            print(f"{variant:8s} {k:2d} " + " ".join(f"{seconds[c]:8.2f}s" for c in chunks) + f"  {same}")
    print(f"{'total':11s} " + " ".join(f"{totals[c]:8.2f}s" for c in chunks))


if __name__ == "__main__":
    main()
