"""The ``induction-bigram`` command line: thin wrappers over the Python API.

Every subcommand prints a readable summary, or one JSON object with ``--json``. Errors are a
single line on stderr and a non-zero exit status (2 for bad input, 1 for anything else); set
``INDUCTION_BIGRAM_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from induction_bigram.errors import ConfigError, InductionBigramError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise InductionBigramError(f"{message} (see `{self.prog} --help`)")


def _seed(text: str) -> int:
    """``--seed``: an int in [0, 2**64), what ``torch.Generator.manual_seed`` accepts."""
    from induction_bigram.config import SEED_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 2**64)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def _device(text: str) -> str:
    """``--device``: checked here, so that a bad value is blamed on the flag, not the run."""
    import torch

    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except Exception:  # torch raises RuntimeError (and others) for strings it cannot parse
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (auto, cpu, cuda, cuda:N, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} asks for CUDA, which is not available here")
    return text


_DEVICE_HELP = "where to run: auto (CUDA when available, else CPU; the default), cpu, cuda or cuda:N"
_JSON_HELP = "print one JSON object instead of the readable summary"
_PROGRESS_HELP = "hide the progress bars"
_TRAIN_EPILOG = """\
Config keys: every field of the JSON that `induction-bigram presets NAME` prints is a key for
--set, as SECTION.FIELD (e.g. model.d_model, task.seq_len, train.lr); `induction-bigram presets`
lists the presets. Train on your own text: --set task.corpus=path/to/text.txt (a UTF-8 file;
its characters are the vocabulary). --out must be missing, empty, or a run folder of ours: then
--resume continues it, --overwrite starts it again (replacing only config.json, metrics.jsonl
and checkpoint.pt). train.steps=0 writes the untrained model's checkpoint. A loss that becomes
NaN or infinite stops the run (exit status 2) and keeps the last good checkpoint.
"""


def _existing_flags(p: argparse.ArgumentParser, what: str) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume", action="store_true", help=f"continue the {what} already in --out (finished runs are reused)"
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help=f"start the {what} in --out again, replacing only the files this package wrote there",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="induction-bigram",
        description=__doc__.splitlines()[0],
        epilog="`induction-bigram COMMAND --help` describes each command's flags.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = commands.add_parser(
        "train",
        help="train a model and write a run folder",
        description="Train a model; writes OUT/config.json, OUT/metrics.jsonl and OUT/checkpoint.pt.",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        help="starting config (default: quick; with --resume: the run's own); list: `induction-bigram presets`",
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (missing, empty, or a run of ours)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set model.d_model=128 or --set task.corpus=path/to/text.txt "
        "(repeatable; keys: `induction-bigram presets NAME`)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint (its own config)"
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a run folder of ours, replacing its config.json, metrics.jsonl and checkpoint.pt",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")

    p = commands.add_parser("evaluate", help="score a trained run on a fresh seeded batch")
    p.add_argument("run", type=Path, help="run folder or checkpoint file")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the evaluation batch (default 0)")
    p.add_argument("--batch-size", type=_positive, default=512, help="sequences in the batch (default 512)")
    p.add_argument("--device", type=_device, default="auto", help=_DEVICE_HELP)
    p.add_argument("--json", action="store_true", help=_JSON_HELP)

    p = commands.add_parser("memories", help="project W_O2, W_K2, W_K1 and write their figures")
    p.add_argument("run", type=Path, help="run folder (it reads checkpoint.pt and metrics.jsonl)")
    p.add_argument("--out", type=Path, help="figure folder (default: RUN/figures)")
    p.add_argument("--device", type=_device, default="auto", help=_DEVICE_HELP)
    p.add_argument("--json", action="store_true", help=_JSON_HELP)

    p = commands.add_parser("logits", help="in-context against bigram: theory check, patching, figures")
    p.add_argument("run", type=Path, help="run folder (best an amt run)")
    p.add_argument("--out", type=Path, help="figure folder (default: RUN/figures)")
    p.add_argument("--per-cell", type=_positive, default=16, help="designed prompts per (T, n) cell (default 16)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the designed prompts (default 0)")
    p.add_argument("--device", type=_device, default="auto", help=_DEVICE_HELP)
    p.add_argument("--progress", action="store_true", help="show TransformerLens's patching progress bars")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)

    p = commands.add_parser("lengths", help="APE against RPE, RoPE and NoPE on long prompts")
    p.add_argument(
        "--out", required=True, type=Path, help="study folder (runs, lengths.json, figures); never a training run"
    )
    p.add_argument("--preset", default="cpu", help="study preset: cpu (default) or test")
    _existing_flags(p, "study")
    p.add_argument("--no-progress", action="store_true", help=_PROGRESS_HELP)
    p.add_argument("--json", action="store_true", help=_JSON_HELP)

    p = commands.add_parser("reproduce", help="run every study and write REPORT.md")
    p.add_argument("--out", required=True, type=Path, help="report folder (missing, empty, or a report of ours)")
    p.add_argument("--quick", action="store_true", help="small settings: under 15 minutes on 2 CPU cores")
    p.add_argument(
        "--only",
        action="append",
        metavar="STUDY",
        help="run only this study (repeatable): training, memories, hijack, lengths",
    )
    _existing_flags(p, "report")
    p.add_argument("--no-progress", action="store_true", help=_PROGRESS_HELP)

    p = commands.add_parser("presets", help="list the presets, or print one as JSON")
    p.add_argument("name", nargs="?", help="the preset to print; its JSON keys are what --set takes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("induction-bigram: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one readable line; the traceback only on request
        if os.environ.get("INDUCTION_BIGRAM_DEBUG"):
            raise
        bad_input = isinstance(err, (InductionBigramError, OSError))
        if isinstance(err, OSError) and err.filename is not None and not isinstance(err, InductionBigramError):
            message = f"{err.strerror or err}: {err.filename}"
        else:
            message = str(err)
        kind = "error" if bad_input else f"internal error ({type(err).__name__})"
        print(f"induction-bigram: {kind}: {' '.join(message.split())}", file=sys.stderr)
        return 2 if bad_input else 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"induction-bigram: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _existing(args: argparse.Namespace) -> str:
    return "resume" if args.resume else "overwrite" if args.overwrite else "refuse"


def _train(args: argparse.Namespace) -> int:
    from induction_bigram.config import preset
    from induction_bigram.files import check_folder
    from induction_bigram.memories.projections import track_memories
    from induction_bigram.training.checkpoint import CONFIG, read_config_file
    from induction_bigram.training.loop import train

    check_folder(args.out, "run", existing=_existing(args), label="--out")
    if args.resume:
        if args.preset:
            raise InductionBigramError("--resume takes the run's own config; drop --preset")
        config_path = args.out / CONFIG
        if not config_path.is_file():
            raise InductionBigramError(f"nothing to resume: {config_path} does not exist")
        config = read_config_file(config_path)
    else:
        try:
            config = preset(args.preset or "quick")
        except ConfigError as err:
            raise ConfigError(f"--preset: {err}") from None
    try:
        config = config.with_overrides(args.overrides)
    except ConfigError as err:
        raise ConfigError(f"--set: {err}") from None
    result = train(
        config,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        track=[track_memories],
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
    """``--out`` of memories / logits (default ``RUN/figures``), checked before any work."""
    folder = path if path is not None else run / "figures"
    flag = "--out" if path is not None else "the figure folder"
    if folder.exists() and not folder.is_dir():
        raise InductionBigramError(f"{flag} {folder} is a file, not a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InductionBigramError(f"{flag} {folder}: cannot write into {existing}")
    return folder


def _writing_figures(run: Path, figures: Path):
    """Hold the run folder's lock while figures go into it (a training run writing it, or
    another analysis, is refused naming its PID); figures elsewhere need no lock of ours."""
    from induction_bigram.files import claim_folder

    inside = figures.resolve().is_relative_to(run.resolve())
    return claim_folder(run, "run", existing="resume", label="RUN") if inside else contextlib.nullcontext()


def _load_run(path: Path, device: str):
    """The checkpoint of a run, its task on the model's device, and its memory report."""
    from induction_bigram.data.task import TriggerTask
    from induction_bigram.memories.projections import memory_report
    from induction_bigram.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, device)
    task = TriggerTask(ckpt.stats, ckpt.config.task, next(ckpt.model.parameters()).device)
    report = None
    if ckpt.config.model.n_layers == 2:
        report = memory_report(ckpt.model, task.shared_triggers, ckpt.config.task.seq_len)
    return ckpt, task, report


def _evaluate(args: argparse.Namespace) -> int:
    from induction_bigram.training.metrics import evaluate

    ckpt, task, report = _load_run(args.run, args.device)
    scores = evaluate(ckpt.model, task, batch_size=args.batch_size, seed=args.seed)
    summary = {"step": ckpt.step, "seed": args.seed, "batch_size": args.batch_size, **scores.to_dict()}
    if report is not None:
        summary["memories"] = report.to_dict()
    _print(summary, args.json, title=f"{args.run} at step {ckpt.step}")
    if report is not None and not args.json:
        print(report)
    return 0


def _memories(args: argparse.Namespace) -> int:
    from induction_bigram.figures import save_figures
    from induction_bigram.memories.figures import memory_figures
    from induction_bigram.memories.projections import memory_projections
    from induction_bigram.training.checkpoint import read_metrics

    run = _run_folder(args.run, "memories")
    figures = _figure_folder(args.out, run)
    ckpt, task, report = _load_run(run, args.device)
    if report is None:
        raise InductionBigramError("the memory projections need a 2-layer model")
    projections = memory_projections(ckpt.model, task.shared_triggers, ckpt.config.task.seq_len)
    metrics = read_metrics(run)
    with _writing_figures(run, figures):
        written = save_figures(memory_figures(projections, ckpt.stats.vocab, metrics), figures)
    if args.json:
        _print_json({"memories": report.to_dict(), "figures": written})
    else:
        print(report)
        print("wrote " + ", ".join(written))
    return 0


def _logits(args: argparse.Namespace) -> int:
    from induction_bigram.figures import save_figures
    from induction_bigram.incontext.figures import hijack_figures
    from induction_bigram.incontext.study import HijackStudyConfig, run_hijack_study

    run = _run_folder(args.run, "logits")
    figures = _figure_folder(args.out, run)
    ckpt, task, _ = _load_run(run, args.device)
    if ckpt.config.model.n_layers != 2:
        raise InductionBigramError("the in-context against bigram study needs a 2-layer model")
    cfg = HijackStudyConfig(per_cell=args.per_cell, seed=args.seed)
    study = run_hijack_study(
        ckpt.model, ckpt.stats, task.shared_triggers, ckpt.config.task.seq_len, cfg, progress=args.progress
    )
    with _writing_figures(run, figures):
        written = save_figures(hijack_figures(study, ckpt.stats.vocab), figures)
    summary = {**study.summary(), "figures": written}
    if args.json:
        _print_json(summary)
    else:
        _print(
            {k: v for k, v in summary.items() if not isinstance(v, (dict, list))},
            False,
            title=f"in-context against bigram, {args.run}",
        )
        for rung in study.check.rungs:
            print(f"  rung {rung.name:20s} held-out R^2 {rung.r2:6.3f} (cells {rung.r2_cells:6.3f})")
        print("wrote " + ", ".join(written))
    return 0


def _lengths(args: argparse.Namespace) -> int:
    from induction_bigram.figures import save_figures, save_view
    from induction_bigram.files import check_folder, claim_folder
    from induction_bigram.lengths import lengths_preset, run_lengths_study
    from induction_bigram.lengths.figures import lengths_attention_view, lengths_figures

    try:
        study = lengths_preset(args.preset)
    except ConfigError as err:
        raise ConfigError(f"--preset: {err}") from None
    existing = _existing(args)
    check_folder(args.out, "lengths", existing=existing, label="--out")
    with claim_folder(args.out, "lengths", existing=existing, label="--out"):
        result = run_lengths_study(study, args.out, progress=not args.no_progress, existing=existing)
        written = save_figures(lengths_figures(result), args.out / "figures")
        save_view(lengths_attention_view(result), args.out / "lengths_attention.html", title="attention by variant")
    if args.json:
        _print_json(result.to_dict())
    else:
        for name, variant in result.to_dict()["variants"].items():
            accuracies = ", ".join(f"{k} {v:.3f}" for k, v in variant["accuracy_by_length"].items())
            print(f"  {name:6s} oversight protocol: {accuracies}")
        print("wrote " + ", ".join([str(args.out / "lengths.json"), *written]))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from induction_bigram.report.reproduce import STUDIES, reproduce

    unknown = set(args.only or []) - set(STUDIES)
    if unknown:
        raise InductionBigramError(f"unknown study {sorted(unknown)[0]!r}; choose from {', '.join(STUDIES)}")
    from induction_bigram.files import check_folder

    check_folder(args.out, "reproduce", existing=_existing(args), label="--out")
    report = reproduce(
        args.out, quick=args.quick, studies=args.only, progress=not args.no_progress, existing=_existing(args)
    )
    print(f"wrote {report}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from induction_bigram.config import PRESETS, preset

    if args.name:
        try:
            print(preset(args.name).to_json())
        except ConfigError as err:
            raise ConfigError(f"presets: {err}") from None
    else:
        width = max(map(len, PRESETS))
        for name in PRESETS:
            cfg = preset(name)
            scaling = "" if cfg.train.lr_scaling == "none" else f" ({cfg.train.lr_scaling} scaling)"
            print(
                f"{name:{width}s}  d={cfg.model.d_model} T={cfg.task.seq_len} K={cfg.task.n_triggers} "
                f"{cfg.model.positional} ffn={cfg.model.ffn} {cfg.train.optimizer} "
                f"lr={cfg.train.lr}{scaling} batch={cfg.train.batch_size} steps={cfg.train.steps}"
            )
    return 0


def _print(summary: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        _print_json(summary)
        return
    print(title)
    for key, value in summary.items():
        if isinstance(value, dict):
            continue
        shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)
        print(f"  {key:24s} {shown}")


def _print_json(data: Any) -> None:
    from induction_bigram.files import dumps_json

    print(dumps_json(data))


_COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "memories": _memories,
    "logits": _logits,
    "lengths": _lengths,
    "reproduce": _reproduce,
    "presets": _presets,
}


if __name__ == "__main__":
    sys.exit(main())
