"""When does the statistical induction head form, and what would it take at alpha >= 16
(issue 29; docs/THEORY.md section 9.5)? Writes docs/markov-formation/runs.csv (one row per
trained model) and the table of docs/markov-formation/README.md (one row per setting) from
markov study folders:

    .venv/bin/python scripts/markov_formation.py --out docs/markov-formation FOLDER [FOLDER ...]

Each FOLDER holds finished ``markov`` study folders (a ``result.json`` each) at any depth: the
folders of a ``sweep markov`` or of single studies. A setting is what the runs vary (alpha, T,
the corpus behind the prior, learning rate, width, steps); over its seeds the table gives how
many models formed their heads, the heads' step (``dynamics.head_formation_step``) over those
that did, the held-out excess-loss ratio, the global bigram's excess loss over Bayes (what a
statistical induction head can gain at all, on each seed's own held-out chains) and the mean n*
of the model (with a head) against Bayes: means and 95% Student-t intervals over the seeds
(:func:`~induction_bigram.intervals.mean_interval`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

from induction_bigram.files import atomic_write_text
from induction_bigram.intervals import mean_interval
from induction_bigram.markov.study import MarkovResult

SETTING = ("alpha", "seq_len", "corpus", "lr", "d_model", "steps")
START, END = "<!-- table: scripts/markov_formation.py -->", "<!-- end table -->"


def rows(folders: list[Path]) -> list[dict]:
    """One row per (study folder, alpha): its setting, seed and numbers."""
    out = []
    for path in sorted(p for folder in folders for p in folder.rglob("result.json")):
        result = MarkovResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        config = result.config
        for key, numbers in result.summary().items():
            out.append(
                {
                    "alpha": float(key),
                    "seq_len": config.task.seq_len,
                    "corpus": config.task.corpus,
                    "lr": config.train.lr,
                    "d_model": config.model.d_model,
                    "steps": config.train.steps,
                    "seed": config.train.seed,
                    "eval_every": config.train.eval_every,
                    **numbers,
                }
            )
    return out


def interval(values: list[float], bounds: tuple[float, float] | None = None, digits: int = 3) -> str:
    if not values:
        return "-"
    mean, low, high = mean_interval(values, bounds=bounds)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def table(records: list[dict]) -> list[str]:
    by_setting = defaultdict(list)
    for r in records:
        by_setting[tuple(r[k] for k in SETTING)].append(r)
    lines = [
        "| alpha | T | prior | lr | d_model | steps | heads formed | heads' step | bigram's excess over Bayes "
        "(nats) | excess ratio | n* model | n* Bayes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, group in sorted(by_setting.items(), key=lambda item: (*item[0][:2], *map(str, item[0][2:]))):
        alpha, seq_len, corpus, lr, d_model, steps = setting
        formed = [float(r["head_step"]) for r in group if r["head_step"] is not None]
        finite = [
            r["excess_ratio"] for r in group if r["excess_ratio"] is not None and math.isfinite(r["excess_ratio"])
        ]
        n_star = [r["n_star_model"] for r in group if r["n_star_model"] is not None]
        lines.append(
            f"| {alpha:g} | {seq_len} | {corpus} | {lr:g} | {d_model} | {steps} | {len(formed)} of {len(group)} | "
            f"{interval(formed, (0.0, math.inf), 0)} | {interval([r['bigram_excess'] for r in group])} | "
            f"{interval(finite)} | {interval(n_star, (0.0, math.inf), 2)} | {group[0]['n_star_bayes']:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="docs/markov-formation")
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    records = rows(args.folders)
    if not records:
        parser.error(f"no markov study result.json under {', '.join(map(str, args.folders))}")
    readme = args.out / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if text.count(START) != 1 or text.count(END) != 1:
        parser.error(f"{readme} needs the lines {START} and {END} once each, around the table")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    before, rest = text.split(START)
    after = rest.split(END)[1]
    atomic_write_text(args.out / "runs.csv", buffer.getvalue())
    atomic_write_text(readme, before + START + "\n" + "\n".join(table(records)) + "\n" + END + after)


if __name__ == "__main__":
    main()
