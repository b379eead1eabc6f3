"""What each ``induction-bigram`` command does, over the Python API."""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path
from typing import Any

from induction_bigram.cli.standard import markov_command, standard_command
from induction_bigram.errors import CheckpointError, ConfigError, InductionBigramError


def _existing(args: argparse.Namespace) -> str:
    return "resume" if args.resume else "overwrite" if args.overwrite else "refuse"


def _config(presets, args: argparse.Namespace, base=None):
    """The config of ``--preset`` (or ``base``) with ``--set`` applied; errors name the flag."""
    try:
        config = base if base is not None else presets[args.preset or next(iter(presets))]
    except ConfigError as err:
        raise ConfigError(f"--preset: {err}") from None
    try:
        return config.with_overrides(args.overrides)
    except ConfigError as err:
        raise ConfigError(f"--set: {err}") from None


def _resumed_config(args: argparse.Namespace, kind: type):
    """With ``--resume``, the run's own config (``--set`` applies on top of it); else ``None``."""
    from induction_bigram.training.checkpoint import resumable_config

    if not args.resume:
        return None
    if args.preset:
        raise InductionBigramError("--resume takes the run's own config; drop --preset")
    return resumable_config(args.out, kind, args.command)


def _train(args: argparse.Namespace) -> int:
    from induction_bigram.config import PRESETS, RunConfig
    from induction_bigram.files import check_folder
    from induction_bigram.memories.projections import track_memories
    from induction_bigram.model.access import check_training_memory
    from induction_bigram.training.trainer import train

    check_folder(args.out, "run", existing=_existing(args), label="--out")
    config = _config(PRESETS, args, _resumed_config(args, RunConfig))
    check_training_memory(config)
    return _trained(train, config, args, [track_memories])


def _trained(train, config, args: argparse.Namespace, track: list) -> int:
    """Run a family's ``train`` into ``--out`` as the flags say and print its final record."""
    result = train(
        config, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress, track=track
    )
    _print(result.final, args.json, title=f"trained {args.out} ({result.final['step']} steps)")
    return 0


def _run_folder(path: Path, command: str) -> Path:
    """A run folder argument: a checkpoint file there is a mistake worth a clear message."""
    if path.is_file():
        raise InductionBigramError(f"{command} takes a run folder, got the file {path} (pass its folder {path.parent})")
    if not path.is_dir():
        raise InductionBigramError(f"{command}: no run folder at {path}")
    return path


def _figure_folder(path: Path | None, run: Path) -> Path:
    """``--out`` of a study's analysis of a run (default ``RUN/figures``), checked before any work."""
    from induction_bigram.files import check_folder

    folder = path if path is not None else run / "figures"
    check_folder(folder, "figures", existing="resume", label="--out" if path is not None else "the figure folder")
    return folder


def _writing_figures(run: Path, figures: Path):
    """Hold the run folder's lock while figures go into it (a training run writing it, or
    another analysis, is refused naming its PID); figures elsewhere need no lock of ours."""
    from induction_bigram.files import claim_folder

    inside = figures.resolve().is_relative_to(run.resolve())
    return claim_folder(run, "run", existing="resume", label="RUN") if inside else contextlib.nullcontext()


def _evaluate(args: argparse.Namespace) -> int:
    from induction_bigram.data.task import TriggerTask
    from induction_bigram.memories.projections import memory_report
    from induction_bigram.training.checkpoint import load_checkpoint
    from induction_bigram.training.metrics import evaluate

    ckpt = load_checkpoint(args.run, args.device, family="circuit")
    task = TriggerTask(ckpt.stats, ckpt.config.task, next(ckpt.model.parameters()).device)
    scores = evaluate(ckpt.model, task, batch_size=args.batch_size, seed=args.seed)
    summary = {"step": ckpt.step, "seed": args.seed, "batch_size": args.batch_size, **scores.to_dict()}
    report = None
    if ckpt.config.model.n_layers == 2:
        report = memory_report(ckpt.model, task.shared_triggers, ckpt.config.task.seq_len)
        summary["memories"] = report.to_dict()
    _print(summary, args.json, title=f"{args.run} at step {ckpt.step}")
    if report is not None and not args.json:
        print(report)
    return 0


def _analyse_run(args: argparse.Namespace) -> int:
    """``STUDY RUN`` (e.g. ``incontext RUN``): the study's analysis of an existing run, with the
    study's settings from ``--preset`` / ``--set`` and the run's own task, model and train."""
    from induction_bigram.figures import save_figures
    from induction_bigram.studies import STUDIES
    from induction_bigram.sweeps.table import flatten
    from induction_bigram.training.checkpoint import load_checkpoint, read_metrics

    study = STUDIES[args.study]
    run = _run_folder(args.run, args.command)
    figures = _figure_folder(args.out, run)
    foreign = [item for item in args.overrides if not item.startswith(f"{study.name}.")]
    if foreign:
        raise ConfigError(
            f"--set {foreign[0]}: {args.command} analyses the run in {run} with that run's own task, model "
            f"and train; it takes {study.name}.* keys (train a new run to change the others)"
        )
    ckpt = load_checkpoint(run, args.device, family="circuit")
    if ckpt.config.model.n_layers != 2:
        raise InductionBigramError(f"{args.command} needs a 2-layer model; {run} has {ckpt.config.model.n_layers}")
    settings = _config(study.presets, args)
    config = settings.with_run(ckpt.config)
    metrics = read_metrics(run)
    if not metrics:
        message = f"{run / 'metrics.jsonl'} is missing or holds no record; train the run again (--overwrite)"
        raise CheckpointError(message)
    result = study.analyse(ckpt.model, ckpt.stats, config, metrics=metrics, progress=not args.no_progress)
    with _writing_figures(run, figures):
        written = save_figures(study.figures(result), figures)
    summary = {**result.summary(), "figures": written}
    if args.json:
        _print_json(summary)
    else:  # every number of the summary, nested ones under dotted keys
        _print(flatten(result.summary()), False, title=f"{study.title}: {run}")
        print("wrote " + ", ".join(written))
    return 0


def _study(args: argparse.Namespace) -> int:
    """``STUDY --out FOLDER`` (e.g. ``lengths``): a study that trains its own models into a study folder."""
    from induction_bigram.figures import save_figures
    from induction_bigram.files import check_folder, claim_folder
    from induction_bigram.studies import STUDIES

    study = STUDIES[args.study]
    config = _config(study.presets, args)
    existing = _existing(args)
    check_folder(args.out, study.name, existing=existing, label="--out")
    with claim_folder(args.out, study.name, existing=existing, label="--out") as folder:
        result = study.run(config, folder, progress=not args.no_progress, existing="resume")
        written = save_figures(study.figures(result), folder / "figures")
    if args.json:
        _print_json({**result.summary(), "figures": written})
    else:
        _print(result.summary(), False, title=f"{study.title}: {args.out}")
        for claim in study.claims(result):
            verdict = {True: "held", False: "did not hold", None: "reported"}[claim.held]
            print(f"  [{verdict}] {claim.statement}: {claim.measured}")
        print("wrote " + ", ".join([str(folder / "result.json"), *written]))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from induction_bigram.files import check_folder
    from induction_bigram.report.reproduce import PRESETS, reproduce
    from induction_bigram.studies import STUDIES

    unknown = set(args.only or []) - set(STUDIES)
    if unknown:
        raise InductionBigramError(f"unknown study {sorted(unknown)[0]!r}; choose from {', '.join(STUDIES)}")
    config = _config(PRESETS, args)
    check_folder(args.out, "reproduce", existing=_existing(args), label="--out")
    report = reproduce(
        config,
        args.out,
        studies=args.only,
        progress=not args.no_progress,
        existing=_existing(args),
        preset=args.preset or next(iter(PRESETS)),
        address=args.address,
    )
    if args.json:
        _print_json({"report": str(report), "numbers": str(report.parent / "numbers.json")})
    else:
        print(f"wrote {report}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import dataclasses

    from induction_bigram.files import check_folder
    from induction_bigram.sweeps import SweepSpec, load_spec, parse_grid, run_sweep

    spec = load_spec(args.file) if args.file else SweepSpec()
    spec = dataclasses.replace(
        spec,
        target=args.target or spec.target,
        preset=args.preset or spec.preset,
        overrides=(*spec.overrides, *args.overrides),
        grid={**spec.grid, **parse_grid(args.grid)},
        seeds=args.seeds or spec.seeds,
    )
    existing = "overwrite" if args.overwrite else "resume"
    check_folder(args.out, "sweep", existing=existing, label="--out")
    table = run_sweep(
        spec,
        args.out,
        address=args.address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        progress=not args.no_progress,
        existing=existing,
    )
    written = [str(args.out / name) for name in ("runs.csv", "aggregate.csv")]
    summary = {"runs": len(table.rows), "failed": [row["run"] for row in table.failed], "tables": written}
    if args.json:
        _print_json(summary)
    else:
        print(f"sweep of {spec.target}: {len(table.rows) - len(table.failed)} of {len(table.rows)} runs done")
        print("wrote " + ", ".join(written))
    if table.failed:
        first = table.failed[0]
        raise InductionBigramError(
            f"{len(table.failed)} of {len(table.rows)} runs failed (first: {first['run']}: {first['error']}); "
            "the same command reruns them"
        )
    return 0


def _sweep_plot(args: argparse.Namespace) -> int:
    from induction_bigram.figures import save_figure, save_figures
    from induction_bigram.sweeps.figures import plot_sweep, read_aggregate

    keys, points = read_aggregate(args.sweep)
    figure = plot_sweep(keys, points, args.x, args.y)
    # the sweep's figure folder, under the one folder rule, unless the user named a file
    path = args.out or save_figures({f"{args.y}_vs_{args.x}.png": figure}, args.sweep / "figures")[0]
    if args.out is not None:
        save_figure(figure, path)
    if args.json:
        _print_json({"figure": str(path)})
    else:
        print(f"wrote {path}")
    return 0


def _capacity_law(args: argparse.Namespace) -> int:
    from induction_bigram.sweeps.capacity_law import write_capacity_law

    law, figure, numbers = write_capacity_law(args.sweep)
    if args.json:
        _print_json({"figure": str(figure), "numbers": str(numbers)})
    else:
        print(law.table())
        print(f"wrote {figure}, {numbers}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from induction_bigram.config import PRESETS as RUN_PRESETS
    from induction_bigram.config.markov import MARKOV_PRESETS
    from induction_bigram.config.standard import STANDARD_PRESETS
    from induction_bigram.report.reproduce import PRESETS as REPORT_PRESETS
    from induction_bigram.studies import STUDIES

    # a study under its command's name, the one its --help points to (markov: the family; hijack: its study)
    tables = {**{study.command.name: study.presets for study in STUDIES.values()}, "reproduce": REPORT_PRESETS}
    tables["standard"] = STANDARD_PRESETS
    tables["markov"] = MARKOV_PRESETS
    names = list(args.names)
    if len(names) > 2 or (len(names) == 2 and names[0] not in tables):
        raise InductionBigramError(f"presets takes a run preset, or a study and one of its presets; got {names}")
    if names and names[0] in tables:
        table = tables[names[0]]
        if len(names) == 2:
            print(_presets_json(table, names[1]))
        else:
            _list_presets(names[0], table)
        return 0
    if names:
        print(_presets_json(RUN_PRESETS, names[0]))
        return 0
    _list_presets("run", RUN_PRESETS, run_summary=True)
    for name, table in tables.items():
        print()
        _list_presets(name, table)
    return 0


def _presets_json(table, name: str) -> str:
    try:
        return table[name].to_json()
    except ConfigError as err:
        raise ConfigError(f"presets: {err}") from None


def _list_presets(kind: str, table, run_summary: bool = False) -> None:
    print(f"{kind} presets (`induction-bigram presets {'' if kind == 'run' else kind + ' '}NAME` prints one):")
    width = max(map(len, table))
    for name in table:
        text = table.doc(name)
        if run_summary:
            cfg = table[name]
            scaling = "" if cfg.train.lr_scaling == "none" else f" ({cfg.train.lr_scaling} scaling)"
            text = (
                f"d={cfg.model.d_model} T={cfg.task.seq_len} K={cfg.task.n_triggers} "
                f"{cfg.model.positional} ffn={cfg.model.ffn} {cfg.train.optimizer} "
                f"lr={cfg.train.lr}{scaling} batch={cfg.train.batch_size} steps={cfg.train.steps}"
            )
        print(f"  {name:{width}s}  {text}")


def _print(summary: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        _print_json(summary)
        return
    print(title)
    for key, value in summary.items():
        if isinstance(value, (dict, list)):
            continue
        shown = str(value)
        if isinstance(value, float) and math.isfinite(value):
            shown = str(int(value)) if value.is_integer() else f"{value:.4f}"
        print(f"  {key:32s} {shown}")


def _resource_errors(command):
    """``command`` with running out of memory the user's error (exit 2), not an internal one."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (MemoryError, RuntimeError) as err:
            from induction_bigram.model.access import memory_error

            raise (memory_error(err) or err) from None

    return run


def _print_json(data: Any) -> None:
    from induction_bigram.files import dumps_json

    print(dumps_json(data))


COMMANDS = {
    "train": _train,
    "standard": standard_command,
    "markov": markov_command,
    "evaluate": _evaluate,
    "reproduce": _reproduce,
    "sweep": _sweep,
    "sweep-plot": _sweep_plot,
    "capacity-law": _capacity_law,
    "presets": _presets,
}
"""The commands besides the studies' (:func:`run_command` runs those)."""


def run_command(args: argparse.Namespace) -> int:
    """Run the command ``args`` was parsed for: a study's (its parser sets ``args.study``) runs
    its analysis of a run or its own training, the others their entry in :data:`COMMANDS`."""
    study = getattr(args, "study", None)
    if study is None:
        command = COMMANDS[args.command]
    else:
        from induction_bigram.studies import STUDIES

        command = _analyse_run if STUDIES[study].command.reads_run else _study
    return _resource_errors(command)(args)
