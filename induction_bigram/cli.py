"""The ``induction-bigram`` command line: thin wrappers over the Python API.

Every subcommand prints a readable summary, or one JSON object with ``--json``. Errors are a
single line on stderr and a non-zero exit status (2 for bad input, 1 for anything else); set
``INDUCTION_BIGRAM_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from induction_bigram.errors import InductionBigramError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise InductionBigramError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="induction-bigram", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser("train", help="train a model and write a run folder")
    p.add_argument("--preset", help="starting config (default: quick; with --resume: the run's own)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set model.d_model=128 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")

    p = commands.add_parser("evaluate", help="score a trained run on a fresh seeded batch")
    p.add_argument("run", type=Path, help="run folder or checkpoint file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("memories", help="project W_O2, W_K2, W_K1 and write their figures")
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument("--out", type=Path, help="figure folder (default: RUN/figures)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("logits", help="in-context against bigram: theory check, patching, figures")
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument("--out", type=Path, help="figure folder (default: RUN/figures)")
    p.add_argument("--per-cell", type=int, default=16, help="designed prompts per (T, n) cell")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--progress", action="store_true", help="show TransformerLens's patching progress bars")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("lengths", help="APE against RPE, RoPE and NoPE on long prompts")
    p.add_argument("--out", required=True, type=Path, help="study folder (runs, lengths.json, figures)")
    p.add_argument("--preset", default="cpu", help="study preset: cpu (default) or test")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("reproduce", help="run every study and write REPORT.md")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument("--quick", action="store_true", help="small settings: under 15 minutes on 2 CPU cores")
    p.add_argument(
        "--only",
        action="append",
        metavar="STUDY",
        help="run only this study (repeatable): training, memories, hijack, lengths",
    )
    p.add_argument("--no-progress", action="store_true")

    p = commands.add_parser("presets", help="list the presets, or print one as JSON")
    p.add_argument("name", nargs="?")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("induction-bigram: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one readable line; the traceback only on request
        if os.environ.get("INDUCTION_BIGRAM_DEBUG"):
            raise
        bad_input = isinstance(err, (InductionBigramError, FileNotFoundError))
        kind = "error" if bad_input else f"internal error ({type(err).__name__})"
        print(f"induction-bigram: {kind}: {err}", file=sys.stderr)
        return 2 if bad_input else 1


def _train(args: argparse.Namespace) -> int:
    from induction_bigram.checkpoint import CONFIG
    from induction_bigram.config import RunConfig, preset
    from induction_bigram.train import train

    if args.resume:
        if args.preset:
            raise InductionBigramError("--resume takes the run's own config; drop --preset")
        config_path = args.out / CONFIG
        if not config_path.is_file():
            raise InductionBigramError(f"nothing to resume: {config_path} does not exist")
        config = RunConfig.from_dict(json.loads(config_path.read_text()))
    else:
        config = preset(args.preset or "quick")
    config = config.with_overrides(args.overrides)
    result = train(config, args.out, resume=args.resume, progress=not args.no_progress)
    _print(result.final, args.json, title=f"trained {args.out} ({result.final['step']} steps)")
    return 0


def _load_run(path: Path, device: str):
    """The checkpoint of a run, its task on the model's device, and its memory report."""
    from induction_bigram.checkpoint import load_checkpoint
    from induction_bigram.data.task import TriggerTask
    from induction_bigram.memory import memory_report

    ckpt = load_checkpoint(path, device)
    task = TriggerTask(ckpt.stats, ckpt.config.task, next(ckpt.model.parameters()).device)
    report = None
    if ckpt.config.model.n_layers == 2:
        report = memory_report(ckpt.model, task.shared_triggers, ckpt.config.task.seq_len)
    return ckpt, task, report


def _evaluate(args: argparse.Namespace) -> int:
    from induction_bigram.metrics import evaluate

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
    from induction_bigram.checkpoint import METRICS
    from induction_bigram.memory import memory_projections
    from induction_bigram.viz import memory_figures, save_figures

    ckpt, task, report = _load_run(args.run, args.device)
    if report is None:
        raise InductionBigramError("the memory projections need a 2-layer model")
    projections = memory_projections(ckpt.model, task.shared_triggers, ckpt.config.task.seq_len)
    metrics = [json.loads(line) for line in (args.run / METRICS).read_text().splitlines() if line]
    written = save_figures(memory_figures(projections, ckpt.stats.vocab, metrics), args.out or args.run / "figures")
    if args.json:
        _print_json({"memories": report.to_dict(), "figures": written})
    else:
        print(report)
        print("wrote " + ", ".join(written))
    return 0


def _logits(args: argparse.Namespace) -> int:
    from induction_bigram.hijack import HijackStudyConfig, run_hijack_study
    from induction_bigram.viz import hijack_figures, save_figures

    ckpt, task, _ = _load_run(args.run, args.device)
    if ckpt.config.model.n_layers != 2:
        raise InductionBigramError("the in-context against bigram study needs a 2-layer model")
    cfg = HijackStudyConfig(per_cell=args.per_cell, seed=args.seed)
    study = run_hijack_study(
        ckpt.model, ckpt.stats, task.shared_triggers, ckpt.config.task.seq_len, cfg, progress=args.progress
    )
    written = save_figures(hijack_figures(study, ckpt.stats.vocab), args.out or args.run / "figures")
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
    from induction_bigram.lengths import lengths_preset, run_lengths_study
    from induction_bigram.views import lengths_attention_view, save_view
    from induction_bigram.viz import lengths_figures, save_figures

    result = run_lengths_study(lengths_preset(args.preset), args.out, progress=not args.no_progress)
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
    from induction_bigram.reproduce import STUDIES, reproduce

    unknown = set(args.only or []) - set(STUDIES)
    if unknown:
        raise InductionBigramError(f"unknown study {sorted(unknown)[0]!r}; choose from {', '.join(STUDIES)}")
    report = reproduce(args.out, quick=args.quick, studies=args.only, progress=not args.no_progress)
    print(f"wrote {report}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from induction_bigram.config import PRESETS, preset

    if args.name:
        print(preset(args.name).to_json())
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
