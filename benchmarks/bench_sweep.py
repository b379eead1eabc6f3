"""Sweep throughput: the same 8-run sweep run three ways, in runs per hour (issue #13, item 4).

The sweep is ``quick`` shortened (``--steps``, default 500) over two widths (``--widths``,
default 32,64) x 4 seeds (``--seeds``), on the CPU. It runs

1. sequentially: one fresh process running the runs in turn with ``run_one``, at torch's
   default thread count (every core);
2. on Ray: ``run_sweep(..., cpus_per_run=1)`` on a local Ray started here with one CPU per core,
   so each task trains on one thread and as many run at once as there are cores (Ray's start-up
   is in the wall time, and also printed on its own);
3. as a naive pool: ``multiprocessing`` (spawn) with one process per core, each running its
   runs at torch's default thread count, so that every process takes every core (the
   oversubscription issue #13 describes).

Each mode runs in a fresh temporary folder, and its wall time counts everything from the
first process started to the last run written (interpreter start-up and imports included).
It prints the machine, each mode's wall time, runs per hour and seconds per run, and checks
that the modes' final in-context accuracies agree run by run: sequential and the pool train at
the same thread count and must agree exactly; Ray trains on one thread, so its numbers may
differ in the last bits (the largest difference is printed). Exit status 1 if sequential and
the pool disagree. About 5-8 minutes on the 2-core machines; ``--quick`` is a smoke version of
seconds (tiny runs; its times measure start-up, not training).

    python benchmarks/bench_sweep.py [--steps N] [--widths 32,64] [--seeds 4] [--processes N]
                                     [--modes sequential,ray,pool] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common, when imported from elsewhere

from common import cpu_model  # noqa: E402

from induction_bigram.config import RunConfig  # noqa: E402
from induction_bigram.sweeps import SweepSpec, run_sweep  # noqa: E402
from induction_bigram.sweeps.execute import run_one  # noqa: E402
from induction_bigram.sweeps.spec import SweepRun  # noqa: E402

MODES = ("sequential", "pool", "ray")  # Ray last: nothing of its clean-up falls in another mode
METRIC = "in_context_accuracy"
QUICK_SHAPE = ("task.seq_len=16", "model.n_ctx=16", "train.batch_size=16", "train.eval_batch_size=32")


def sweep_spec(steps: int, widths: list[str], seeds: int, quick: bool = False) -> SweepSpec:
    """``quick`` shortened to ``steps`` steps (one evaluation and one checkpoint, at the end),
    on the CPU, over ``model.d_model`` in ``widths`` x ``seeds`` seeds."""
    overrides = (
        f"train.steps={steps}",
        f"train.eval_every={steps}",
        f"train.checkpoint_every={steps}",
        "train.device=cpu",
        *(QUICK_SHAPE if quick else ()),
    )
    return SweepSpec(preset="quick", overrides=overrides, grid={"model.d_model": tuple(widths)}, seeds=seeds)


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --- the runs, as a worker process does them (sequential and pool) ---


def _warm_up() -> None:
    """A worker's imports, before its first run (in the wall time, not in the run's)."""
    import induction_bigram.memories.projections  # noqa: F401
    import induction_bigram.training.loop  # noqa: F401


def _worker_run(job: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    """One run in a worker process, at torch's default thread count (nothing set here)."""
    target, config_data, run_dir = job
    began = time.perf_counter()
    metrics = run_one(target, RunConfig.from_dict(config_data), run_dir)
    return {"metric": metrics[METRIC], "seconds": time.perf_counter() - began, "threads": torch.get_num_threads()}


def _worker_run_all(jobs: list[tuple[str, dict[str, Any], str]]) -> list[dict[str, Any]]:
    return [_worker_run(job) for job in jobs]


def _jobs(spec: SweepSpec, runs: list[SweepRun], folder: Path) -> list[tuple[str, dict[str, Any], str]]:
    return [(spec.target, run.config.to_dict(), str(folder / "runs" / run.name)) for run in runs]


def sequential(spec: SweepSpec, runs: list[SweepRun], folder: Path) -> dict[str, Any]:
    """Every run in turn in one fresh (spawned) process."""
    context = multiprocessing.get_context("spawn")
    began = time.perf_counter()
    with context.Pool(1, initializer=_warm_up) as pool:
        results = pool.apply(_worker_run_all, (_jobs(spec, runs, folder),))
        pool.close()
        pool.join()  # workers exit on their own (terminate would leak their semaphores)
    return {"wall": time.perf_counter() - began, "results": results}


def naive_pool(spec: SweepSpec, runs: list[SweepRun], folder: Path, processes: int) -> dict[str, Any]:
    """``processes`` spawned processes taking one run at a time, each at torch's default threads."""
    context = multiprocessing.get_context("spawn")
    began = time.perf_counter()
    with context.Pool(processes, initializer=_warm_up) as pool:
        results = pool.map(_worker_run, _jobs(spec, runs, folder), chunksize=1)
        pool.close()
        pool.join()
    return {"wall": time.perf_counter() - began, "results": results}


def on_ray(spec: SweepSpec, folder: Path, cpus: int) -> dict[str, Any]:
    """``run_sweep`` with one CPU (one torch thread) per task on a new local Ray of ``cpus`` CPUs
    (``address="local"``: never a cluster that ``RAY_ADDRESS`` names)."""
    import ray

    began = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    started = time.perf_counter()
    try:
        table = run_sweep(spec, folder, cpus_per_run=1, progress=False)
    finally:
        ray.shutdown()
    wall = time.perf_counter() - began
    failed = table.failed
    if failed:
        raise RuntimeError(f"ray: {failed[0]['run']} failed: {failed[0].get('error')}")
    results = [{"metric": row[METRIC], "seconds": row["seconds"], "threads": 1} for row in table.rows]
    return {"wall": wall, "startup": started - began, "results": results}


def largest_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float:
    return max(abs(x["metric"] - y["metric"]) for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per run (default 500)")
    parser.add_argument("--widths", default="32,64", help="model.d_model values, comma-separated (default 32,64)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per width (default 4)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="pool size and Ray CPUs")
    parser.add_argument("--modes", default=",".join(MODES), help=f"which modes, comma-separated ({', '.join(MODES)})")
    parser.add_argument("--quick", action="store_true", help="a smoke version of seconds: 20 steps at T = 16")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := sorted(set(modes) - set(MODES)):
        parser.error(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    widths = [w.strip() for w in args.widths.split(",") if w.strip()]
    if args.quick:
        args.steps, widths, args.seeds = 20, ["16", "32"], 2
    spec = sweep_spec(args.steps, widths, args.seeds, quick=args.quick)
    runs = spec.runs()

    print(f"sweep throughput: {len(runs)} runs of quick, {args.steps} steps, d_model in {widths} x {args.seeds} seeds")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"torch's default thread count {torch.get_num_threads()}"
        + (f" (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})" if "OMP_NUM_THREADS" in os.environ else "")
        + f", Python {platform.python_version()}"
    )
    print(f"load average before: {load()}", flush=True)

    outcomes: dict[str, dict[str, Any]] = {}
    labels = {
        "sequential": "sequential, 1 process, default threads",
        "ray": f"ray, {args.processes} CPUs, 1 thread per task",
        "pool": f"naive pool, {args.processes} processes, default threads",
    }
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix=f"bench-sweep-{mode}-") as tmp:
            folder = Path(tmp)
            if mode == "sequential":
                outcomes[mode] = sequential(spec, runs, folder)
            elif mode == "pool":
                outcomes[mode] = naive_pool(spec, runs, folder, args.processes)
            else:
                outcomes[mode] = on_ray(spec, folder / "sweep", args.processes)
        o = outcomes[mode]
        print(f"  {mode} done in {o['wall']:.1f} s (load average {load()})", flush=True)

    print(f"{'mode':46s} {'wall s':>8s} {'runs/hour':>10s} {'s/run':>7s} {'threads':>8s} {'start-up s':>10s}")
    for mode, o in outcomes.items():
        per_run = statistics.median(r["seconds"] for r in o["results"])
        threads = sorted({r["threads"] for r in o["results"]})
        startup = f"{o['startup']:10.1f}" if "startup" in o else f"{'':>10s}"
        print(
            f"{labels[mode]:46s} {o['wall']:8.1f} {len(runs) / o['wall'] * 3600:10,.0f} {per_run:7.2f} "
            f"{','.join(map(str, threads)):>8s} {startup}"
        )
    print("s/run: the median time of one run inside its process or task (what oversubscription slows down)")
    if "ray" in outcomes:
        print("ray start-up: ray.init() alone; its workers' imports fall in the sweep")
    print(f"load average after: {load()}")

    status = 0
    print(f"final {METRIC} per run:")
    print(f"  {'run':28s} " + " ".join(f"{m:>10s}" for m in outcomes))
    for i, run in enumerate(runs):
        print(f"  {run.name:28s} " + " ".join(f"{o['results'][i]['metric']:10.6f}" for o in outcomes.values()))
    if "sequential" in outcomes and "pool" in outcomes:
        diff = largest_difference(outcomes["sequential"]["results"], outcomes["pool"]["results"])
        verdict = "agree exactly" if diff == 0 else "DIFFER (same thread count: they should agree exactly)"
        print(f"sequential vs pool (same threads): largest difference {diff:.3g}: {verdict}")
        status = 0 if diff == 0 else 1
    if "ray" in outcomes:
        for other in ("sequential", "pool"):
            if other in outcomes:
                diff = largest_difference(outcomes[other]["results"], outcomes["ray"]["results"])
                print(f"{other} vs ray (different thread counts): largest difference {diff:.3g}")
                break
    sys.exit(status)


if __name__ == "__main__":
    main()
