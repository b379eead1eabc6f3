"""Sequences per second of TriggerTask.sample at T = 256, K = 5, batch 512, and milliseconds per
batch at the shapes the quick report trains on (T = 128, batch 64: the in-context study; T = 64,
batch 128: the memories studies)."""

from __future__ import annotations

import torch
from common import machine, median_seconds

from induction_bigram import BigramStats, TriggerTask
from induction_bigram.config import TaskConfig

TARGET = 13_000  # 100x the reference implementation (about 3.9 s per 512 sequences per core)


def main() -> None:
    stats = BigramStats.default()
    print(f"data generation, T = 256, K = 5, batch 512 ({machine()})")
    for mode in ("fixed", "random"):
        for output in ("uniform", "bigram"):
            task = TriggerTask(stats, TaskConfig(seq_len=256, n_triggers=5, trigger_mode=mode, output_mode=output))
            generator = torch.Generator().manual_seed(0)
            seconds = median_seconds(lambda: task.sample(512, generator), repeats=20)
            rate = 512 / seconds
            print(
                f"  triggers={mode:6s} outputs={output:7s} {seconds * 1e3:7.1f} ms/batch "
                f"{rate:9,.0f} seq/s  {'meets' if rate >= TARGET else 'MISSES'} target {TARGET:,}"
            )
    for seq_len, batch, output in ((128, 64, "bigram"), (64, 128, "uniform")):
        task = TriggerTask(stats, TaskConfig(seq_len=seq_len, n_triggers=5, output_mode=output))
        generator = torch.Generator().manual_seed(0)
        seconds = median_seconds(lambda: task.sample(batch, generator), repeats=200)
        print(f"  T = {seq_len}, batch {batch}, fixed triggers, {output} outputs: {seconds * 1e3:.2f} ms/batch")


if __name__ == "__main__":
    main()
