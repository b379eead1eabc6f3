"""Speed anchor: our HookedTransformer's training step against the same model in plain PyTorch.

Ours runs two ways: ``fused`` (the loss training runs, :mod:`induction_bigram.training.fused`:
the last layer and the unembedding at the readout positions only) and ``forward`` (through the
TransformerLens model's forward, also under ``--compile``). The plain model computes every
position, as the reference code does.

Both models compute the same function (benchmarks/plain_model.py copies the weights of ours;
tests/test_bench_anchor.py checks logits and gradients agree) and train the same three
matrices with the same optimiser (the ``reference`` recipe's, built by
``induction_bigram.training.loop.make_optimizer`` for ours and the same groups for the plain model).
One step is forward, in-context loss, backward, optimiser step, on the same batch tensors for
every variant. The variants are timed interleaved (ours, plain, ours, plain, ...) and the
median of ``--steps`` steps after ``--warmup`` steps is reported, so a change in the machine's
load hits all of them alike. Data generation (``TriggerTask.sample`` of one batch) is timed in
the same rounds, at the run's thread count and at one thread.

    python benchmarks/bench_anchor.py [--d-model 256] [--seq-len 256] [--batch 128]
        [--steps 7] [--warmup 2] [--threads N] [--compile] [--attention mask|sdpa|both] [--profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # plain_model, when imported from elsewhere

from common import cpu_model  # noqa: E402
from plain_model import PlainModel, train_step  # noqa: E402
from plain_model import make_optimizer as make_plain_optimizer  # noqa: E402

from induction_bigram import BigramStats, TriggerTask, build_model, preset  # noqa: E402
from induction_bigram.training.fused import FusedLoss, logits_loss  # noqa: E402
from induction_bigram.training.loop import learning_rate_multipliers, make_optimizer, optimizer_step  # noqa: E402


@dataclass
class Variant:
    name: str
    step: Callable[[], float]
    seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def run(self, record: bool) -> None:
        began = time.perf_counter()
        loss = self.step()
        elapsed = time.perf_counter() - began
        if record:
            self.seconds.append(elapsed)
            self.losses.append(loss)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def source_state() -> str:
    """The commit measured, and whether the package had uncommitted changes."""
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "induction_bigram"], cwd=repo, capture_output=True, text=True
        )
    except OSError:
        return "unknown (no git)"
    if commit.returncode != 0:
        return "unknown (not a git checkout)"
    return commit.stdout.strip() + (" + uncommitted changes under induction_bigram/" if dirty.stdout.strip() else "")


def command_line(argv: list[str] | None) -> str:
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ)
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python
    args = sys.argv[1:] if argv is None else argv
    return " ".join(filter(None, [env, shlex.join([python, "benchmarks/bench_anchor.py", *args])]))


def _sample(task: TriggerTask, batch: int, generator: torch.Generator, threads: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        task.sample(batch, generator)
    finally:
        torch.set_num_threads(previous)
    return 0.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256, help="d (default 256)")
    parser.add_argument("--seq-len", type=int, default=256, help="T = n_ctx (default 256)")
    parser.add_argument("--batch", type=int, default=128, help="sequences per step (default 128)")
    parser.add_argument("--steps", type=int, default=7, help="timed steps per variant (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="also time both under torch.compile")
    parser.add_argument(
        "--attention",
        choices=["mask", "sdpa", "both"],
        default="mask",
        help="the plain model's attention: -inf triangle + softmax, or scaled_dot_product_attention",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch")
    parser.add_argument(
        "--profile", action="store_true", help="then profile one step of each eager variant: its costliest ops"
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.compile and args.warmup < 2:
        # our model's forward recompiles on its second call (guards on attributes the first sets)
        parser.error("--compile needs --warmup >= 2 (the first two steps compile)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stats = BigramStats.default()
    overrides = {
        "model.d_model": args.d_model,
        "model.n_ctx": args.seq_len,
        "task.seq_len": args.seq_len,
        "train.batch_size": args.batch,
        "train.micro_batch_size": None,
    }
    config = preset("reference").with_vocab(stats.n_tokens).with_overrides(overrides)
    train_cfg = config.train
    task = TriggerTask(stats, config.task)
    batch = task.sample(args.batch, torch.Generator().manual_seed(args.seed))

    attentions = ["mask", "sdpa"] if args.attention == "both" else [args.attention]
    variants: list[Variant] = []
    for compiled in [False, True] if args.compile else [False]:
        mode = "compiled" if compiled else "eager"
        losses = {"forward": lambda m: logits_loss(torch.compile(m) if compiled else m)}
        if not compiled:
            losses = {"fused": FusedLoss} | losses  # what training runs, where it applies
        for kind, make_loss in losses.items():
            ours = build_model(config.model, "cpu", vocab=stats.vocab)
            ours_opt = make_optimizer(ours, train_cfg)
            step = lambda f=make_loss(ours), o=ours_opt: optimizer_step(f, o, batch, train_cfg)  # noqa: E731
            variants.append(Variant(f"ours {mode} {kind}", step))
        multipliers = learning_rate_multipliers(ours, train_cfg)
        for attention in attentions:
            plain = PlainModel.from_hooked(build_model(config.model, "cpu", vocab=stats.vocab), attention=attention)
            plain_opt = make_plain_optimizer(plain, train_cfg, multipliers)
            plain_fwd = torch.compile(plain) if compiled else plain
            variants.append(
                Variant(
                    f"plain {mode} ({attention})",
                    lambda f=plain_fwd, o=plain_opt: train_step(f, o, batch.tokens, batch.targets, batch.labels),
                )
            )

    # data generation, timed in the same rounds: at the run's thread count, and at one thread
    # (the sampler is a loop of T small steps; on a loaded machine each parallel region of the
    # run's threads can wait for a descheduled thread, which one thread never does)
    generator = torch.Generator().manual_seed(args.seed + 1)
    threads = torch.get_num_threads()
    sampling = [
        Variant(f"sample, {threads} thread{'s' * (threads > 1)}", lambda: _sample(task, args.batch, generator, threads))
    ]
    if threads > 1:
        sampling.append(Variant("sample, 1 thread", lambda: _sample(task, args.batch, generator, 1)))

    load_before = os.getloadavg()
    began = time.perf_counter()
    for _ in range(args.warmup):  # compiles, if compiling
        for v in variants + sampling:
            v.run(record=False)
    warm_seconds = time.perf_counter() - began
    for _ in range(args.steps):
        for v in variants + sampling:
            v.run(record=True)
    load_after = os.getloadavg()

    d, T, B = args.d_model, args.seq_len, args.batch
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
    )
    print(f"command: {command_line(argv)}")
    print(f"source: {source_state()}")
    print(
        f"load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {'/'.join(f'{x:.2f}' for x in load_after)}"
    )
    print(
        f"step: d = {d}, T = n_ctx = {T}, N = {stats.n_tokens}, batch {B}, one batch for all variants; "
        f"reference optimiser ({train_cfg.optimizer}, lr {train_cfg.lr}, lr_scaling {train_cfg.lr_scaling}); "
        f"in-context loss; forward + loss + backward + optimiser step"
    )
    print(
        f"median of {args.steps} interleaved steps after {args.warmup} warm-up steps each "
        f"(warm-up took {warm_seconds:.1f} s)"
    )
    print(f"{'variant':24s} {'s/step':>8s} {'min':>8s} {'max':>8s} {'tokens/s':>10s} {'last loss':>10s}")
    for v in variants:
        print(
            f"{v.name:24s} {v.median:8.3f} {min(v.seconds):8.3f} {max(v.seconds):8.3f} "
            f"{B * T / v.median:10,.0f} {v.losses[-1]:10.5f}"
        )
    for ours in (v for v in variants if v.name.startswith("ours")):
        for plain in (v for v in variants if v.name.startswith("plain")):
            gap = max(abs(a - b) for a, b in zip(ours.losses, plain.losses))
            print(
                f"{ours.name} vs {plain.name}: ours is {plain.median / ours.median:.2f}x the plain "
                f"model's speed ({ours.median:.3f} s vs {plain.median:.3f} s per step; "
                f"losses step by step differ by at most {gap:.1e})"
            )
    for v in sampling:
        print(
            f"data generation (TriggerTask.sample, {B} sequences of length {T}, {config.task.trigger_mode} triggers, "
            f"{config.task.output_mode} outputs), {v.name.split(', ')[1]}: {v.median:.4f} s median "
            f"(min {min(v.seconds):.4f} s), {B / v.median:,.0f} sequences/s"
        )
    if args.profile:
        for v in variants:
            if "eager" in v.name:
                print_profile(v)


def print_profile(variant: Variant, top: int = 12) -> None:
    """The ops of one step that take the most time (self CPU time, forward and backward)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        variant.step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"profile of one step, {variant.name}: {total / 1e6:.3f} s of op time; costliest ops:")
    for e in events[:top]:
        share = 100 * e.self_cpu_time_total / total
        print(f"  {e.key:40s} {e.self_cpu_time_total / 1e3:8.1f} ms {share:5.1f}%  x{e.count}")


if __name__ == "__main__":
    main()
