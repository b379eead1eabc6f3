"""How many seeds of ``quick`` per minute one process can train: one after another, and the
most that training several seeds as one batched computation could give on this machine.

Stacking S seeds (``torch.func.vmap`` over stacked parameters, or one stacked model) runs the
same FLOPs as one model on S times the batch, in the same kernels; it can only win where a step
is dominated by per-step overhead rather than arithmetic. So the script times, at d = T = 64,
batch 128 (the ``quick`` recipe, in-context loss, AdamW, the fused loss training runs):

- **sequential**: one step of one seed, the time S seeds take one after another, S times it;
- **batched bound**: one step of one model at batch 128 x S, divided by S: what a stacked
  computation of S seeds costs at best (vmap adds its own overhead on top);
- **vmap**: S seeds of the plain PyTorch model of the same maths (``plain_model.py``, no
  TransformerLens, no input checks) stacked with ``torch.func.stack_module_state`` and stepped
  as one ``vmap(grad(loss))`` call plus one AdamW step on the stacked parameters (elementwise,
  so each seed's update is its own): what vmap over stacked parameters gives in practice. The
  script first checks that seed 0's gradient there equals the plain model's own backward;

and prints seeds per minute of a full ``quick`` run (``train.steps`` steps) for each S, with the
FLOP/s each reaches against a plain ``torch.matmul`` of the step's shapes.

    python benchmarks/bench_seeds.py [--seeds 1,4,16] [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os

import torch
import torch.nn.functional as F
from common import cpu_model, machine, median_seconds
from plain_model import PlainModel, in_context_loss
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.utils.flop_counter import FlopCounterMode

from induction_bigram import BigramStats, TriggerTask, build_model, preset
from induction_bigram.training.fused import training_loss
from induction_bigram.training.loop import make_optimizer, optimizer_step


def step_seconds(batch: int, repeats: int) -> tuple[float, float]:
    """Median seconds of one quick training step at ``batch``, and its FLOPs."""
    config = preset("quick").with_vocab(65).with_overrides({"train.batch_size": batch})
    stats = BigramStats.default()
    model = build_model(config.model, "cpu", vocab=stats.vocab)
    optimizer = make_optimizer(model, config.train)
    task = TriggerTask(stats, config.task)
    generator = torch.Generator().manual_seed(0)
    batches = [task.sample(batch, generator) for _ in range(repeats + 1)]
    it = iter(batches * 2)
    loss_of, _ = training_loss(model, config, torch.device("cpu"))  # the fused loss, as training runs
    with FlopCounterMode(display=False) as counter:
        optimizer_step(loss_of, optimizer, batches[0], config.train)
    seconds = median_seconds(lambda: optimizer_step(loss_of, optimizer, next(it), config.train), repeats)
    return seconds, counter.get_total_flops()


def vmap_step_seconds(seeds: int, repeats: int) -> float:
    """Median seconds of one step of ``seeds`` stacked plain models through vmap (module doc)."""
    config = preset("quick").with_vocab(65)
    stats = BigramStats.default()
    plains = [
        PlainModel.from_hooked(build_model(dataclasses.replace(config.model, seed=s), "cpu", vocab=stats.vocab))
        for s in range(seeds)
    ]
    params, buffers = stack_module_state(plains)
    template = copy.deepcopy(plains[0]).to("meta")

    def loss(p, b, tokens, targets, labels):
        # the in-context loss without boolean indexing, which vmap cannot batch
        logits = functional_call(template, (p, b), (tokens,))
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        selected = (labels >= 2).flatten()
        return (ce * selected).sum() / selected.sum().clamp_min(1)

    seed_gradients = vmap(grad(loss))
    optimizer = torch.optim.AdamW(list(params.values()), lr=config.train.lr)
    task = TriggerTask(stats, config.task)
    generator = torch.Generator().manual_seed(0)

    def stacked_batch():
        batches = [task.sample(128, generator) for _ in range(seeds)]
        return [torch.stack([getattr(b, f) for b in batches]) for f in ("tokens", "targets", "labels")]

    tokens, targets, labels = stacked_batch()
    own = plains[0]
    in_context_loss(own(tokens[0]), targets[0], labels[0]).backward()
    stacked = seed_gradients(params, buffers, tokens, targets, labels)
    for name, param in own.named_parameters():
        gap = (stacked[name][0] - param.grad).abs().max().item()
        assert gap <= 1e-5 * param.grad.abs().max().item(), f"vmap gradient of {name} differs by {gap}"
    batches = [stacked_batch() for _ in range(repeats + 1)]
    it = iter(batches * 2)

    def step():
        for param, gradient in zip(params.values(), seed_gradients(params, buffers, *next(it)).values()):
            param.grad = gradient
        optimizer.step()

    return median_seconds(step, repeats)


def matmul_rate(repeats: int) -> float:
    x, w = torch.randn(128 * 64, 64), torch.randn(64, 64)
    return 2 * x.shape[0] * 64 * 64 / median_seconds(lambda: x @ w, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = preset("quick").train.steps
    print(f"{cpu_model()}, {os.cpu_count()} cores, {machine()}, load {os.getloadavg()[0]:.2f}")
    peak = matmul_rate(args.repeats)
    single, flops = step_seconds(128, args.repeats)
    print(f"plain matmul (8192x64 @ 64x64): {peak / 1e9:.1f} GFLOP/s")
    print(f"one quick step, batch 128: {single * 1e3:.1f} ms, {flops / single / 1e9:.1f} GFLOP/s")
    print(
        " S  sequential seeds/min  batched-bound seeds/min  bound/sequential  bound GFLOP/s"
        "  vmap seeds/min  vmap/sequential"
    )
    for s in [int(x) for x in args.seeds.split(",")]:
        batched, batched_flops = step_seconds(128 * s, args.repeats) if s > 1 else (single, flops)
        sequential_rate = 60 / (steps * single)
        bound_rate = 60 * s / (steps * batched)
        vmap_rate = 60 * s / (steps * vmap_step_seconds(s, args.repeats))
        print(
            f"{s:>2}  {sequential_rate:>20.2f}  {bound_rate:>23.2f}  {bound_rate / sequential_rate:>15.2f}x"
            f"  {batched_flops / batched / 1e9:>13.1f}  {vmap_rate:>14.2f}  {vmap_rate / sequential_rate:>14.2f}x"
        )
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
