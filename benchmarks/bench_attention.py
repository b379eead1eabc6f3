"""Does the lean attention path of TL 3's ``CircuitAttention`` pay on ``train``? The training step
and the evaluation forward of the runs the fused loss does not cover, with the lean path and
with TransformerLens's own ``Attention.forward``, interleaved repeat by repeat.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention.py [--repeats N]

The runs: ``amt`` (d = T = 128, a linear W_F, the shipped ``amt`` model's recipe) and the
positional study's ``rope`` variant (``lengths`` preset ``cpu``: d = 128, T = 64). TL 3 only
(the lean path is TL 3's; TL 4's attention is our own ``NativeAttention``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from common import machine

from induction_bigram import BigramStats, TriggerTask, build_model, preset
from induction_bigram.model.backend import TL4, TL_VERSION
from induction_bigram.training.fused import logits_loss
from induction_bigram.training.loop import make_optimizer, optimizer_step

RUNS = {
    "amt": {},
    "rope (lengths cpu)": {
        "model.d_model": 128,
        "model.positional": "rope",
        "model.rope_qk_bias": True,
        "train.batch_size": 64,
        "train.micro_batch_size": None,
        "train.eval_batch_size": 256,
    },
}


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def bench(name: str, overrides: dict, repeats: int) -> dict[str, float]:
    from induction_bigram.model.components.attention import CircuitAttention

    base = "amt" if name == "amt" else "quick"
    config = preset(base).with_vocab(65).with_overrides(overrides)
    stats = BigramStats.default()
    model = build_model(config.model, "cpu", vocab=stats.vocab)
    optimizer = make_optimizer(model, config.train)
    task = TriggerTask(stats, config.task)
    generator = torch.Generator().manual_seed(0)
    evaluation = task.sample(config.train.eval_batch_size, torch.Generator().manual_seed(1)).tokens
    loss = logits_loss(model)
    lean = CircuitAttention._lean_path_applies
    times: dict[str, list[float]] = {}
    for _ in range(repeats + 1):  # the first round warms up
        for path in ("lean", "tl"):
            CircuitAttention._lean_path_applies = lean if path == "lean" else (lambda self: False)
            batch = task.sample(config.train.batch_size, generator)
            times.setdefault(f"{path} step", []).append(
                _timed(lambda: optimizer_step(loss, optimizer, batch, config.train))
            )
            with torch.no_grad():
                times.setdefault(f"{path} eval", []).append(_timed(lambda: model(evaluation)))
    CircuitAttention._lean_path_applies = lean
    return {key: statistics.median(values[1:]) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if TL4:
        raise SystemExit("the lean path is TL 3's: run this under .venv (TransformerLens 3)")
    print(f"# TransformerLens {TL_VERSION}, {machine()}, load {os.getloadavg()[0]:.2f}, medians of {args.repeats}")
    print(f"{'run':20} {'lean step s':>12} {'TL step s':>10} {'step gain':>10} {'lean eval s':>12} {'TL eval s':>10}")
    for name, overrides in RUNS.items():
        t = bench(name, overrides, args.repeats)
        gain = t["tl step"] / t["lean step"]
        print(
            f"{name:20} {t['lean step']:12.4f} {t['tl step']:10.4f} {gain:9.2f}x "
            f"{t['lean eval']:12.4f} {t['tl eval']:10.4f}"
        )
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
