"""Running a sweep on Ray: one Ray task per run, each writing an ordinary run or study folder.

``ray.init()`` starts a local Ray on this machine unless an address is given (``--address``,
or ``RAY_ADDRESS``, which Ray reads itself) to join an existing cluster. Every task declares
its CPUs (and GPUs when asked) and sets torch's thread count to its CPUs, so tasks never
oversubscribe cores. On a cluster the sweep folder must be a path every node sees (a shared
filesystem): each task writes its run folder there.

The sweep folder holds ``sweep.json`` (the spec), ``runs.jsonl`` (one record per finished or
failed run, rewritten atomically as each arrives), the tables (:mod:`.table`) and ``runs/``.
Asked again, the same sweep skips the runs recorded as done, reruns failed and unfinished
ones (their trainings resume from their checkpoints), and a failing run is recorded with its
error without stopping the others. Ctrl-C cancels the runs in flight and leaves every
finished one intact.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from induction_bigram.config import Config
from induction_bigram.errors import ConfigError
from induction_bigram.files import Existing, atomic_write_text, claim_folder, dumps_json
from induction_bigram.provenance import code_state
from induction_bigram.studies import STUDIES
from induction_bigram.sweeps.spec import TRAIN, SweepRun, SweepSpec, config_class
from induction_bigram.sweeps.table import SweepTable, flatten

SPEC = "sweep.json"
RECORDS = "runs.jsonl"
RUNS = "runs"


def run_one(target: str, config: Config, run_dir: str | Path) -> dict[str, float]:
    """Train or run ``target`` with ``config`` into ``run_dir`` (resuming what is there) and
    return its numbers, flattened to dotted keys."""
    if target == TRAIN:
        from induction_bigram.memories.projections import track_memories
        from induction_bigram.model.access import check_training_memory
        from induction_bigram.training.trainer import train_or_load

        check_training_memory(config)
        return flatten(train_or_load(config, run_dir, progress=False, track=[track_memories]).final)
    result = STUDIES[target].run(config, run_dir, progress=False, existing="resume")
    return flatten(result.summary())


def _task(target: str, config_data: dict[str, Any], run_dir: str, threads: int) -> dict[str, Any]:
    """The body of one Ray task: a record of the run, never an exception."""
    import ray
    import torch

    torch.set_num_threads(threads)
    began = time.perf_counter()
    record: dict[str, Any] = {"node": ray.get_runtime_context().get_node_id(), "threads": threads}
    try:
        config = config_class(target).from_dict(config_data)
        record |= {"status": "done", "metrics": run_one(target, config, run_dir)}
    except Exception as err:  # recorded, so that one failing run does not stop the others
        record |= {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    record["seconds"] = time.perf_counter() - began
    return record


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """A Ray connection for the block: the one already open, a new local Ray (``address``
    None and no ``RAY_ADDRESS``), or the cluster at ``address``; closed after only if opened
    here."""
    import ray

    if ray.is_initialized():
        yield
        return
    auth = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if _ray_noise not in auth.filters:
        auth.addFilter(_ray_noise)
    ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _ray_noise(record: logging.LogRecord) -> bool:
    """Ray's note that its (default) token authentication is on: said on every start, it doubled
    every sweep error line; nothing for the user to act on."""
    return "Token authentication is enabled" not in record.getMessage()


def _check_resources(cpus: float, gpus: float) -> None:
    """Refuse at once a run that no node of the Ray cluster can hold (Ray would wait forever)."""
    import ray

    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    for flag, need, name in (("--cpus-per-run", cpus, "CPU"), ("--gpus-per-run", gpus, "GPU")):
        most = max((node.get(name, 0.0) for node in nodes), default=0.0)
        if need > most:
            raise ConfigError(
                f"{flag} {need:g}: no node of the Ray cluster has that many {name}s (the largest has {most:g})"
            )


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    progress: bool = True,
    existing: Existing = "resume",
) -> SweepTable:
    """Run every run of ``spec`` not yet done in ``out_dir`` as a Ray task; returns the table
    of all of them (also written to ``out_dir``: :meth:`SweepTable.write`)."""
    (table,) = run_sweeps(
        [(spec, out_dir)],
        address=address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        progress=progress,
        existing=existing,
    )
    return table


def run_sweeps(
    sweeps: Sequence[tuple[SweepSpec, str | Path]],
    *,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    progress: bool = True,
    existing: Existing = "resume",
) -> list[SweepTable]:
    """Several sweeps, each into its own folder, as one pool of Ray tasks (so that the short
    runs of one fill the cores while the long runs of another go on)."""
    for spec, _ in sweeps:
        spec.runs()  # every config is checked before anything starts
    if cpus_per_run <= 0 or gpus_per_run < 0:
        raise ConfigError(f"each run needs CPUs > 0 and GPUs >= 0, got {cpus_per_run} and {gpus_per_run}")
    local = address is None and not os.environ.get("RAY_ADDRESS")
    if local and cpus_per_run > (os.cpu_count() or 1):  # refused before a local Ray starts
        raise ConfigError(f"--cpus-per-run {cpus_per_run:g} is more than this machine's {os.cpu_count()} CPUs")
    with ExitStack() as held:
        prepared = []
        for spec, out_dir in sweeps:
            folder = held.enter_context(claim_folder(out_dir, "sweep", existing=existing))
            runs = spec.runs()
            records = _check_same_sweep(folder, spec, runs)
            atomic_write_text(folder / SPEC, dumps_json(spec.to_dict()) + "\n")
            prepared.append(_Sweep(spec, folder, runs, records))
        todo = [(sweep, run) for sweep in prepared for run in sweep.runs if not sweep.done(run)]
        total = sum(len(sweep.runs) for sweep in prepared)
        bar = tqdm(total=total, initial=total - len(todo), disable=not progress, desc="sweep", unit="run")
        try:
            if todo:
                code = code_state()
                with ray_session(address):
                    _check_resources(cpus_per_run, gpus_per_run)
                    _submit_and_collect(todo, cpus_per_run, gpus_per_run, bar, code)
        finally:
            bar.close()
            tables = [sweep.write_table() for sweep in prepared]
        return tables


@dataclass
class _Sweep:
    spec: SweepSpec
    folder: Path
    runs: list[SweepRun]
    records: dict[str, dict[str, Any]]

    def done(self, run: SweepRun) -> bool:
        return self.records.get(run.name, {}).get("status") == "done"

    def write_table(self) -> SweepTable:
        table = SweepTable.of(self.spec, self.runs, self.records)
        table.write(self.folder)
        return table


def _submit_and_collect(
    todo: list[tuple[_Sweep, SweepRun]], cpus: float, gpus: float, bar: tqdm, code: dict[str, Any]
) -> None:
    """Each run a Ray task; its record, with the ``code`` that ran it, written as it finishes."""
    import ray

    remote = ray.remote(_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
    threads = max(int(cpus), 1)
    pending = {
        remote.remote(sweep.spec.target, run.config.to_dict(), str(sweep.folder / RUNS / run.name), threads): (
            sweep,
            run,
        )
        for sweep, run in todo
    }
    with _stop_on_ctrl_c() as stop:
        try:
            while pending and not stop.is_set():
                finished, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in finished:
                    sweep, run = pending.pop(ref)
                    record = sweep.records[run.name] = _record(run, ray.get(ref)) | {"code": code}
                    _write_records(sweep.folder, sweep.records)
                    bar.update(1)
                    if record["status"] == "failed":  # stderr: stdout is the --json output's alone
                        bar.write(f"sweep: {run.name} failed: {record['error']}", file=sys.stderr)
        finally:
            for ref in pending:  # Ctrl-C or an error of ours: stop what is still running
                ray.cancel(ref, force=True)
    if stop.is_set():
        raise KeyboardInterrupt


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """Ctrl-C sets the event instead of raising inside Ray's calls, so the sweep stops between
    runs: the finished ones recorded, the rest cancelled."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _record(run: SweepRun, outcome: dict[str, Any]) -> dict[str, Any]:
    return {"run": run.name, "seed": run.seed, "values": run.values, "config": run.config.to_dict(), **outcome}


def read_records(folder: Path) -> dict[str, dict[str, Any]]:
    """A sweep folder's records by run name: each finished run's outcome and the ``code`` that ran it."""
    path = folder / RECORDS
    if not path.exists():
        return {}
    records = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            records[record["run"]] = record
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}, line {number}: not a sweep record") from None
    return records


def _write_records(folder: Path, records: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(folder / RECORDS, "".join(dumps_json(r, indent=None) + "\n" for r in records.values()))


def _same_config(recorded: Any, config: Config) -> bool:
    """Whether a record's config is ``config``: read back as a config, so that a setting added
    since (recorded without it, hence at its default) is no difference."""
    try:
        return type(config).from_dict(recorded) == config
    except (ConfigError, TypeError, AttributeError):
        return False


def _check_same_sweep(folder: Path, spec: SweepSpec, runs: list[SweepRun]) -> dict[str, dict[str, Any]]:
    """The records already in ``folder``; a run of the same name made with another config
    (another sweep into the same folder) is an error naming it."""
    records = read_records(folder)
    for run in runs:
        old = records.get(run.name)
        if old is not None and not _same_config(old.get("config"), run.config):
            raise ConfigError(
                f"{folder} holds a run {run.name} made with another config; sweep into another --out, "
                "or --overwrite to start again"
            )
    return records
