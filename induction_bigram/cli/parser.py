"""The argument parser of ``induction-bigram``: every command and flag, with its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from induction_bigram.errors import InductionBigramError
from induction_bigram.studies import STUDIES, Study


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise InductionBigramError(f"{message} (see `{self.prog} --help`)")


def _path(text: str) -> Path:
    """A file or folder argument; an empty one, which ``Path`` reads as the current folder, is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a file or folder")
    return Path(text)


def _seed(text: str) -> int:
    """``--seed``: an int in [0, 2**64), what ``torch.Generator.manual_seed`` accepts."""
    from induction_bigram.config import SEED_MAX

    if not 0 <= (value := _int(text)) <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 2**64)")
    return value


def _positive(text: str) -> int:
    if (value := _int(text)) < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


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
_JSON_HELP = "print one JSON object on stdout and nothing else"
_TRAIN_EPILOG = """\
Config keys: every field of the JSON that `induction-bigram presets NAME` prints is a key for
--set, as SECTION.FIELD (e.g. model.d_model, task.seq_len, train.lr); `induction-bigram presets`
lists the presets. Train on your own text: --set task.corpus=path/to/text.txt (a UTF-8 file;
its characters are the vocabulary). --out must be missing, empty, or a run folder of ours: then
--resume continues it, --overwrite starts it again (replacing only config.json, metrics.jsonl
and checkpoint.pt). train.steps=0 writes the untrained model's checkpoint. A loss that becomes
NaN or infinite stops the run (exit status 2) and keeps the last good checkpoint.
"""


def _config_flags(p: argparse.ArgumentParser, kind: str, example: str) -> None:
    listing = f"induction-bigram presets {kind}".strip()
    p.add_argument("--preset", help=f"starting config (default: the first one `{listing}` lists)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config field, e.g. --set {example} (repeatable; lists as 1,2,3; keys: `{listing} NAME`)",
    )


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


def _standard_run_flags(p: argparse.ArgumentParser, kind: str, example: str) -> None:
    """The flags every standard-model family's training command takes after its own."""
    p.add_argument("--out", required=True, type=_path, help=f"run folder (missing, empty, or a {kind} run of ours)")
    _config_flags(p, kind, example)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's, set by OMP_NUM_THREADS)")
    _existing_flags(p, "run (--set train.steps=N trains longer)")
    _output_flags(p)


def _output_flags(p: argparse.ArgumentParser, progress: bool = True) -> None:
    if progress:
        p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="induction-bigram",
        description="The induction-bigram command line: train, analyse and reproduce the studies.",
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
    _config_flags(p, "", "model.d_model=128 or --set task.corpus=path/to/text.txt")
    p.add_argument("--out", required=True, type=_path, help="run folder (missing, empty, or a run of ours)")
    _existing_flags(p, "run (--resume takes the run's own config; --set train.steps=N trains longer)")
    _output_flags(p)

    p = commands.add_parser(
        "standard",
        help="train a standard TL model (several heads, LayerNorm) on a text file, scoring its induction heads",
        description="Train the `standard` model: next-character prediction on TEXT; writes OUT/config.json, "
        "OUT/metrics.jsonl (train and held-out loss, induction and previous-token scores) and OUT/checkpoint.pt.",
    )
    p.add_argument(
        "--text", type=_path, help="a UTF-8 text file (its characters are the vocabulary); --resume reuses the run's"
    )
    _standard_run_flags(p, "standard", "model.n_heads=8")

    p = commands.add_parser(
        "markov",
        help="train a standard TL model on in-context Markov chains (the corpus bigram as prior)",
        description="Train the `markov` model: next-token prediction on chains, each drawn from its own transition "
        "matrix around the corpus bigram; writes OUT/config.json, OUT/metrics.jsonl (held-out loss, KL to each "
        "strategy, excess loss over Bayes, in-context score, best head scores) and OUT/checkpoint.pt.",
    )
    _standard_run_flags(p, "markov", "task.alpha=4")

    p = commands.add_parser("evaluate", help="score a trained run on a fresh seeded batch")
    p.add_argument("run", type=_path, help="run folder or checkpoint file")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the evaluation batch (default 0)")
    p.add_argument("--batch-size", type=_positive, default=512, help="sequences in the batch (default 512)")
    p.add_argument("--device", type=_device, default="auto", help=_DEVICE_HELP)
    _output_flags(p, progress=False)

    for study in STUDIES.values():
        _study_command(commands, study)

    p = commands.add_parser("reproduce", help="run every study and write REPORT.md")
    p.add_argument("--out", required=True, type=_path, help="report folder (missing, empty, or a report of ours)")
    _config_flags(p, "reproduce", "incontext.incontext.per_cell=8")
    p.add_argument(
        "--only",
        action="append",
        metavar="STUDY",
        help=f"run only this study (repeatable): {', '.join(STUDIES)}",
    )
    p.add_argument("--address", help="join the Ray cluster at this address (default: RAY_ADDRESS, else a local Ray)")
    _existing_flags(p, "report")
    _output_flags(p)

    p = commands.add_parser(
        "sweep",
        help="a training preset or a study over a grid of settings and seeds, on Ray",
        description="Run TARGET once per grid point and seed as Ray tasks (a local Ray, or the cluster at "
        "--address / RAY_ADDRESS); each run writes an ordinary run or study folder under OUT/runs. The same "
        "command again skips finished runs and reruns failed or unfinished ones.",
    )
    p.add_argument("target", nargs="?", help=f"train (a run preset) or a study: {', '.join(STUDIES)}")
    p.add_argument("--out", required=True, type=_path, help="sweep folder (missing, empty, or a sweep of ours)")
    _config_flags(p, "", "train.steps=500 (applied to every run)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a swept key and its values, e.g. --grid model.d_model=32,64 (repeatable: the grid is their product)",
    )
    p.add_argument(
        "--seeds", type=_positive, help="seeds per grid point, setting train.seed and model.seed (default 1)"
    )
    p.add_argument(
        "--file", type=_path, help="a TOML or JSON sweep (target, preset, set, grid, seeds); flags add to it"
    )
    p.add_argument("--address", help="join the Ray cluster at this address (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs (and torch threads) per run (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run (default 0)")
    p.add_argument("--overwrite", action="store_true", help="start the sweep in --out again (default: go on with it)")
    _output_flags(p)

    p = commands.add_parser("sweep-plot", help="plot a swept number against a swept key, with 95%% intervals")
    p.add_argument("sweep", type=_path, help="sweep folder")
    p.add_argument("--x", required=True, help="a swept key, e.g. model.d_model")
    p.add_argument("--y", required=True, help="a number of the runs, e.g. in_context_accuracy")
    p.add_argument("--out", type=_path, help="PNG to write (default: SWEEP/figures/Y_vs_X.png)")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)

    p = commands.add_parser(
        "capacity-law",
        help="recall@1 of each memory against d^2 / (n log n) from a capacity sweep, and its transition",
    )
    p.add_argument("sweep", type=_path, help="a sweep folder of the capacity study (`sweep capacity --grid ...`)")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)

    p = commands.add_parser("presets", help="list the presets, or print one as JSON")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="a run preset, or a study (then one of its presets) to print as JSON"
    )
    return parser


def _study_command(commands: argparse._SubParsersAction, study: Study) -> None:
    """The command of ``study`` (:attr:`~induction_bigram.studies.Study.command`); the parsed
    arguments carry ``study``, the study's name."""
    command = study.command
    if command.reads_run:
        p = commands.add_parser(
            command.name, help=command.help, description=command.help[0].upper() + command.help[1:] + "."
        )
        p.add_argument(
            "run",
            type=_path,
            help=f"run folder (its task/model/train are the run's own; --set takes {study.name}.* keys)",
        )
        _config_flags(p, command.name, command.example)
        p.add_argument("--out", type=_path, help="figure folder (default: RUN/figures)")
        p.add_argument("--device", type=_device, default="auto", help=_DEVICE_HELP)
    else:
        p = commands.add_parser(command.name, help=command.help, description=command.help + "; trains its own models.")
        p.add_argument("--out", required=True, type=_path, help="study folder (runs, result.json, figures/)")
        _config_flags(p, command.name, command.example)
        _existing_flags(p, "study")
    _output_flags(p)
    p.set_defaults(study=study.name)
