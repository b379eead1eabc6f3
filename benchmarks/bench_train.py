"""Training-step speed and achieved FLOP/s: the fused loss training runs, the model's forward
eager, and under torch.compile.

For each shape: seconds per step (median, data generation included), tokens per second, the
FLOPs of one step as counted by torch.utils.flop_counter (forward + backward; this includes
TL's multiplication by the identity W_Q), the achieved FLOP/s, and its ratio to the FLOP/s of a
plain torch.matmul of the model's largest matmul shapes on the same machine.

    python benchmarks/bench_train.py [--no-compile] [--repeats N] [--shapes 0,3]

Under either TransformerLens (``.venv`` has 3.9, ``.venv-tl4`` 4.3): the backend is the installed one's.
"""

from __future__ import annotations

import argparse
import os

import torch
from common import machine, median_seconds
from torch.utils.flop_counter import FlopCounterMode

from induction_bigram import BigramStats, TriggerTask, build_model, preset
from induction_bigram.model.backend import TL_VERSION
from induction_bigram.training.fused import FusedLoss, logits_loss
from induction_bigram.training.loop import make_optimizer, optimizer_step

# (preset, batch, micro-batch); the reference preset runs batch 512 as 4 micro-batches of 128; amt and its
# idealised twin (a linear W_F, the loss at every position) are the in-context study's two trainings
SHAPES = [
    ("reference", 128, None),
    ("reference", 512, 128),
    ("reference", 512, None),
    ("quick", 128, None),
    ("amt", 64, None),
    ("amt-idealised", 64, None),
]


def matmul_flops_per_second(batch: int, seq: int, d: int, repeats: int) -> float:
    """The better of the two matmul shapes a step is made of: projections and attention."""
    x, w = torch.randn(batch * seq, d), torch.randn(d, d)
    q, k = torch.randn(batch, seq, d), torch.randn(batch, d, seq)
    rates = [
        2 * batch * seq * d * d / median_seconds(lambda: torch.matmul(x, w), repeats),
        2 * batch * seq * seq * d / median_seconds(lambda: torch.matmul(q, k), repeats),
    ]
    return max(rates)


def bench(name: str, batch: int, micro: int | None, mode: str, repeats: int) -> dict:
    overrides = {"train.batch_size": batch, "train.micro_batch_size": micro}
    config = preset(name).with_vocab(65).with_overrides(overrides)
    model = build_model(config.model, "cpu", vocab=BigramStats.default().vocab)
    optimizer = make_optimizer(model, config.train)
    task = TriggerTask(BigramStats.default(), config.task)
    generator = torch.Generator().manual_seed(0)
    eager = FusedLoss(model) if mode == "fused" else logits_loss(model)
    loss_of = logits_loss(torch.compile(model)) if mode == "compiled" else eager

    def step() -> None:
        optimizer_step(loss_of, optimizer, task.sample(batch, generator), config.train)

    step()  # compiles, if compiling
    with FlopCounterMode(display=False) as counter:  # it cannot see inside compiled graphs
        optimizer_step(eager, optimizer, task.sample(batch, generator), config.train)
    seconds = median_seconds(step, repeats)
    data_seconds = median_seconds(lambda: task.sample(batch, generator), repeats)
    flops = counter.get_total_flops()
    peak = matmul_flops_per_second(batch, config.task.seq_len, config.model.d_model, repeats)
    return {
        "shape": f"{name} d={config.model.d_model} T={config.task.seq_len} batch={batch}"
        + (f"/{micro}" if micro else ""),
        "mode": mode,
        "s_per_step": seconds,
        "data_s": data_seconds,
        "tokens_per_s": batch * config.task.seq_len / seconds,
        "gflop": flops / 1e9,
        "achieved": flops / seconds / 1e9,
        "matmul": peak / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", default=None, help="which of the shapes, by index, e.g. 0 or 0,3 (default: all)")
    args = parser.parse_args()
    shapes = SHAPES if args.shapes is None else [SHAPES[int(i)] for i in args.shapes.split(",")]
    print(f"training step ({machine()}, TransformerLens {TL_VERSION}, load {os.getloadavg()[0]:.2f})")
    print(
        f"{'shape':38s} {'mode':9s} {'s/step':>7s} {'data s':>7s} {'tokens/s':>10s} "
        f"{'GFLOP':>7s} {'GFLOP/s':>8s} {'matmul':>8s} {'ratio':>6s}"
    )
    modes = ["fused", "eager"] + ([] if args.no_compile else ["compiled"])
    for name, batch, micro in shapes:
        for mode in modes:
            r = bench(name, batch, micro, mode, args.repeats)
            print(
                f"{r['shape']:38s} {r['mode']:9s} {r['s_per_step']:7.3f} {r['data_s']:7.3f} "
                f"{r['tokens_per_s']:10,.0f} {r['gflop']:7.1f} {r['achieved']:8.1f} "
                f"{r['matmul']:8.1f} {r['achieved'] / r['matmul']:6.0%}",
                flush=True,
            )
    print("targets: reference batch 128 <= 1.0 s/step; achieved/matmul >= 40%")


if __name__ == "__main__":
    main()
