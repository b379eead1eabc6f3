"""Training-step speed of the standard model: the fused loss training runs against the model's
forward (``train.fused_loss=false``), same model, same windows, steps interleaved.

For each shape: seconds per AdamW step (median, forward + backward + update) and characters
per second for both, and their ratio. The windows are random characters of a 65-character
vocabulary (the time does not depend on the text).

    python benchmarks/bench_standard.py [--repeats N] [--shapes 0,1]

Under either TransformerLens (``.venv`` has 3.9, ``.venv-tl4`` 4.3): the backend is the installed one's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from common import machine

from induction_bigram.config.standard import standard_preset
from induction_bigram.model import build_standard_model
from induction_bigram.model.backend import TL_VERSION
from induction_bigram.training.standard import make_standard_optimizer
from induction_bigram.training.standard_loss import StandardFusedLoss, forward_loss

VOCAB = "".join(chr(i) for i in range(48, 113))
# (overrides of the standard preset); the first is the preset itself
SHAPES = [
    [],
    ["model.n_ctx=512", "train.batch_size=16"],
    ["model.n_ctx=1024", "train.batch_size=8"],
    ["model.n_ctx=512", "train.batch_size=16", "model.positional=rotary", "model.d_model=64", "model.n_heads=4"],
]


def bench(overrides: list[str], repeats: int) -> dict:
    config = standard_preset("standard").with_overrides(overrides).with_vocab(VOCAB)
    model = build_standard_model(config.model, "cpu")
    optimizer = make_standard_optimizer(model, config)
    batch, n_ctx = config.train.batch_size, config.model.n_ctx
    windows = torch.randint(len(VOCAB), (batch, n_ctx + 1), generator=torch.Generator().manual_seed(0))
    losses = {
        "fused": StandardFusedLoss(model),
        "forward": forward_loss(model),
    }
    times: dict[str, list[float]] = {mode: [] for mode in losses}
    for repeat in range(repeats + 1):  # the first round warms up
        for mode, loss_of in losses.items():
            began = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss_of(windows).backward()
            optimizer.step()
            if repeat:
                times[mode].append(time.perf_counter() - began)
    seconds = {mode: statistics.median(t) for mode, t in times.items()}
    m = config.model
    return {
        "shape": f"{m.positional} d={m.d_model} h={m.n_heads} n_ctx={n_ctx} batch={batch}",
        **{f"{mode}_s": s for mode, s in seconds.items()},
        **{f"{mode}_chars": batch * n_ctx / s for mode, s in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--shapes", default=None, help="which of the shapes, by index, e.g. 0 or 0,1 (default: all)")
    args = parser.parse_args()
    shapes = SHAPES if args.shapes is None else [SHAPES[int(i)] for i in args.shapes.split(",")]
    print(f"standard training step ({machine()}, TransformerLens {TL_VERSION}, load {os.getloadavg()[0]:.2f})")
    header = f"{'fused s':>8s} {'forward s':>9s} {'fused chars/s':>13s} {'forward chars/s':>15s} {'ratio':>6s}"
    print(f"{'shape':44s} {header}")
    for overrides in shapes:
        r = bench(overrides, args.repeats)
        print(
            f"{r['shape']:44s} {r['fused_s']:8.3f} {r['forward_s']:9.3f} {r['fused_chars']:13,.0f} "
            f"{r['forward_chars']:15,.0f} {r['forward_s'] / r['fused_s']:5.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
