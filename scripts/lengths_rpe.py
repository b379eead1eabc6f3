"""Why RPE's in-context accuracy falls beyond 2 T_train, measured (docs/THEORY.md section 5.6,
issue 28): writes docs/lengths_rpe.json from lengths study folders, one per seed; with
``--accuracy``, the accuracy table of every variant over those seeds (docs/lengths_accuracy.json).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/lengths_rpe.py --out docs/lengths_rpe.json \\
        runs/lengths/seed=0 runs/lengths/seed=1 runs/lengths/seed=2
    OMP_NUM_THREADS=1 .venv/bin/python scripts/lengths_rpe.py --accuracy --out docs/lengths_accuracy.json \\
        runs/lengths/seed=0 runs/lengths/seed=1 runs/lengths/seed=2 runs/lengths/seed=3
    .venv/bin/python scripts/lengths_rpe.py --theory  # docs/THEORY.md's tables from the two files

Each folder is a finished ``induction-bigram lengths`` study (its ``result.json`` and one run
folder per variant); its trained ``rpe`` model is measured on the study's own oversight prompts
(same seeds, same count) under six conditions:

- ``trained``: the model as trained;
- ``clipped``: b_o := b_(T_train - 1) for o >= T_train at evaluation
  (:func:`~induction_bigram.lengths.clipped_relative_bias`, the ``rpe-clipped`` variant);
- ``far_mean``: b_o := mean(b_2..b_(T_train - 1)) for o >= T_train, a trained far value;
- ``log_scaling``: layer 1's scores times max(1, ln(t + 1) / ln T_train), offsets untouched;
- ``rpe_logn``: both (:func:`~induction_bigram.lengths.length_scaled_layer1`, the ``rpe-logn``
  variant);
- ``ideal_layer1``: layer 1's attention replaced by the exact previous-token pattern (all its
  weight on t - 1), so whatever still fails lies in layer 2 and the read-out.

Per k and condition: in-context accuracy on the last window; layer 1's mean attention on t - 1
over the window's queries and over the keys s in S (z_(s-1) = q, the keys layer 2 must find);
layer 2's mean attention mass on S at the scored queries (z_t = q, label >= 2) and |S| there.
And the learned bias b_o itself: b_0, b_1, the mean and minimum of b_2..b_(T_train - 1),
b_(T_train - 1), and the largest |b_o| beyond T_train (0 when those offsets never moved).

Over seeds each number is the mean of the per-seed values (each seed's value is the mean over
its prompts) with its 95% Student-t interval (:func:`~induction_bigram.intervals.mean_interval`),
attention masses and accuracies clipped to [0, 1].
"""

from __future__ import annotations

import argparse
import json
import math
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

from induction_bigram.claims import aggregate_claims
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.files import atomic_write_text, dumps_json
from induction_bigram.intervals import mean_interval
from induction_bigram.lengths import (
    PROTOCOLS,
    LengthsResult,
    accuracy_over_seeds,
    claims,
    clipped_relative_bias,
    length_scaled_layer1,
    protocol_batch,
    window,
)
from induction_bigram.model import Model, relative_position_bias
from induction_bigram.training.checkpoint import load

CONDITIONS = ("trained", "clipped", "far_mean", "log_scaling", "rpe_logn", "ideal_layer1")
MARKERS = ("<!-- lengths-rpe -->", "<!-- /lengths-rpe -->")
REPO = Path(__file__).resolve().parent.parent
BOUNDED = ("accuracy", "layer1_mass_prev", "layer1_mass_prev_at_S", "layer2_mass_on_S")


def _previous_token_pattern(pattern: torch.Tensor, hook) -> torch.Tensor:
    """All of layer 1's weight on t - 1 (on t itself at t = 0)."""
    n = pattern.shape[-1]
    ideal = torch.zeros(n, n, dtype=pattern.dtype, device=pattern.device)
    ideal[0, 0] = 1.0
    ideal[torch.arange(1, n), torch.arange(n - 1)] = 1.0
    return ideal.expand_as(pattern)


@torch.no_grad()
def measure(model: Model, task: TriggerTask, k: int, train_length: int, batch_size: int, seed: int, chunk: int):
    """One (model, k, condition)'s numbers on the study's oversight prompts of length k T_train."""
    generator = torch.Generator(device=task.device).manual_seed(seed + k)  # evaluate_lengths' seed
    batch = protocol_batch(task, "oversight", k, train_length, batch_size, generator)
    last = window(k, train_length)
    sums = dict.fromkeys(("correct", "scored", "prev", "prev_n", "prev_S", "prev_S_n", "S_mass", "S_size"), 0.0)
    names = ("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern")
    pieces = zip(*(x.split(chunk) for x in (batch.tokens, batch.targets, batch.labels)))
    for tokens, targets, labels in pieces:
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
        p1, p2 = cache[names[0]][:, 0], cache[names[1]][:, 0]
        scored = labels >= 2
        scored[:, : last.start] = False
        sums["correct"] += float(((logits.argmax(-1) == targets) & scored).sum())
        sums["scored"] += float(scored.sum())
        prev = p1.diagonal(offset=-1, dim1=-2, dim2=-1)  # [batch, L - 1]: weight of query t on t - 1
        sums["prev"] += float(prev[:, last.start - 1 :].sum())
        sums["prev_n"] += prev[:, last.start - 1 :].numel()
        # S at query t: keys s <= t with z_(s-1) = z_t (z_t the trigger queried)
        after = torch.zeros_like(tokens[:, :, None] == tokens[:, None, :])
        after[:, :, 1:] = tokens[:, :, None] == tokens[:, None, :-1]
        causal = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=tokens.device).tril()
        in_S = after & causal & scored[:, :, None]
        sums["S_mass"] += float((p2 * in_S).sum())
        sums["S_size"] += float(in_S.sum())
        keys = in_S.any(1)[:, 1:]  # keys s >= 1 in some scored query's S
        sums["prev_S"] += float(prev[keys].sum())
        sums["prev_S_n"] += float(keys.sum())
    n = sums["scored"]
    return {
        "accuracy": sums["correct"] / n,
        "layer1_mass_prev": sums["prev"] / sums["prev_n"],
        "layer1_mass_prev_at_S": sums["prev_S"] / sums["prev_S_n"],
        "layer2_mass_on_S": sums["S_mass"] / n,
        "S_size": sums["S_size"] / n,
        "n_scored": n,
    }


def bias_summary(model: Model, train_length: int) -> dict[str, float]:
    b = relative_position_bias(model).detach().double().cpu()
    T = train_length
    return {
        "b0": float(b[0]),
        "b1": float(b[1]),
        "mean_b2_to_T_minus_1": float(b[2:T].mean()),
        "min_b2_to_T_minus_1": float(b[2:T].min()),
        "b_T_minus_1": float(b[T - 1]),
        "max_abs_beyond_T": float(b[T:].abs().max()) if len(b) > T else math.nan,
    }


def condition(model: Model, name: str, train_length: int) -> AbstractContextManager:
    """The model under one of :data:`CONDITIONS`, within the block."""
    if name == "clipped":
        return clipped_relative_bias(model, train_length - 1)
    if name in ("far_mean", "log_scaling", "rpe_logn"):
        parts = {"far_bias": name != "log_scaling", "log_scaling": name != "far_mean"}
        return length_scaled_layer1(model, train_length, **parts)
    if name == "ideal_layer1":
        return model.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", _previous_token_pattern)])
    return nullcontext()


def seed_numbers(folder: Path) -> dict[str, dict]:
    """The trained rpe model of one study folder: its bias and its numbers per condition and k."""
    study = LengthsResult.from_dict(json.loads((folder / "result.json").read_text()))
    config, T = study.config, study.config.task.seq_len
    settings = config.lengths
    model = load(folder / "rpe", device="cpu")
    model.eval()
    task = TriggerTask(BigramStats.from_corpus(config.task.corpus), config.task, "cpu")
    numbers: dict[str, dict] = {"bias": bias_summary(model, T)}
    for name in CONDITIONS:
        with condition(model, name, T):
            numbers[name] = {
                f"{k}x": measure(model, task, k, T, settings.eval_batch_size, settings.eval_seed, settings.chunk_size)
                for k in settings.multiples
            }
    return numbers


def over_seeds(per_seed: list[dict], bounded: bool) -> dict:
    """Nested dicts of per-seed numbers -> the same nesting of {mean, low, high, n_seeds}."""
    first = per_seed[0]
    if isinstance(first, dict):
        return {key: over_seeds([s[key] for s in per_seed], bounded or key in BOUNDED) for key in first}
    mean, low, high = mean_interval(per_seed)
    if bounded:
        low, high = max(low, 0.0), min(high, 1.0)
    return {"mean": mean, "low": low, "high": high, "n_seeds": len(per_seed), "per_seed": per_seed}


def _cell(x: dict) -> str:
    return f"{x['mean']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"


def _clipped(claim: dict) -> dict:
    """A claim's interval over seeds clipped to [0, 1] (its statistics here are accuracies)."""
    return {"mean": claim["mean"], "low": max(claim["low"], 0.0), "high": min(claim["high"], 1.0)}


def accuracy_table(accuracy: dict) -> list[str]:
    """One accuracy file (``--accuracy``) as a Markdown table, oversight prompts."""
    ks = list(next(iter(accuracy["oversight"].values())))
    return [
        f"In-context accuracy on oversight prompts (seeds {', '.join(map(str, accuracy['seeds']))}; "
        f"{accuracy['interval']}):",
        "",
        "| variant | " + " | ".join(ks) + " |",
        "|---" * (len(ks) + 1) + "|",
        *(f"| {v} | " + " | ".join(_cell(cells[k]) for k in ks) + " |" for v, cells in accuracy["oversight"].items()),
        "",
        "The claims registered for issue 28 over these seeds (yes: the whole interval on the claimed side; "
        "no: wholly on the other):",
        "",
        *(
            f"- {c['statement']}: {_cell(_clipped(c))} over {c['n_values']} seeds, "
            f"{c['statistic']} {c['direction']} {c['threshold']:g}: {c['verdict']}"
            for c in accuracy["claims"]
            if c["statement"].startswith("[")
        ),
        "",
    ]


def theory_block(causes: dict, accuracies: dict[str, dict]) -> str:
    """The generated block of docs/THEORY.md section 7.2, from the causes file and the accuracy
    files (file name -> contents)."""
    lines = []
    for name, accuracy in accuracies.items():
        lines += [f"docs/{name}:", "", *accuracy_table(accuracy)]
    lines += [
        f"docs/lengths_rpe.json: the trained rpe model under each condition (seeds "
        f"{', '.join(f.split('=')[-1] for f in causes['folders'])}; {causes['interval']}): layer-1 attention on "
        "t - 1 over the window's queries and at the keys s in S, layer-2 attention mass on S at the scored "
        "queries, and the accuracy:",
        "",
    ]
    rpe = causes["rpe"]
    columns = [
        ("trained", "layer1_mass_prev", "layer 1 on t-1"),
        ("trained", "layer1_mass_prev_at_S", "layer 1 on t-1, keys in S"),
        ("trained", "layer2_mass_on_S", "layer 2 on S"),
        ("trained", "accuracy", "accuracy"),
        ("clipped", "accuracy", "clipped (rpe-clipped)"),
        ("far_mean", "layer1_mass_prev", "far_mean: layer 1 on t-1"),
        ("far_mean", "accuracy", "far_mean"),
        ("log_scaling", "accuracy", "log_scaling"),
        ("rpe_logn", "layer1_mass_prev", "both (rpe-logn): layer 1 on t-1"),
        ("rpe_logn", "accuracy", "both (rpe-logn)"),
        ("ideal_layer1", "layer2_mass_on_S", "ideal layer 1: layer 2 on S"),
        ("ideal_layer1", "accuracy", "ideal layer 1"),
    ]
    ks = list(rpe["trained"])
    lines += [
        "| k | " + " | ".join(title for *_, title in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        *(f"| {k} | " + " | ".join(_cell(rpe[c][k][q]) for c, q, _ in columns) + " |" for k in ks),
        "",
        "The learned bias: "
        + ", ".join(
            f"{name} {_cell(rpe['bias'][key])}"
            for key, name in (
                ("b0", "b_0"),
                ("b1", "b_1"),
                ("mean_b2_to_T_minus_1", "mean(b_2..b_(T_train-1))"),
                ("min_b2_to_T_minus_1", "min(b_2..b_(T_train-1))"),
                ("b_T_minus_1", "b_(T_train-1)"),
                ("max_abs_beyond_T", "max |b_o| for o >= T_train"),
            )
        )
        + ".",
    ]
    return "\n".join(lines)


def theory_inputs(docs: Path) -> tuple[dict, dict[str, dict]]:
    """The causes file and every accuracy file there (docs/lengths_accuracy*.json)."""
    accuracies = {p.name: json.loads(p.read_text()) for p in sorted(docs.glob("lengths_accuracy*.json"))}
    return json.loads((docs / "lengths_rpe.json").read_text()), accuracies


def write_theory(docs: Path) -> None:
    """Replace the block between ``<!-- lengths-rpe -->`` and ``<!-- /lengths-rpe -->`` of THEORY.md."""
    start, end = MARKERS
    theory = docs / "THEORY.md"
    text = theory.read_text(encoding="utf-8")
    before, rest = text.split(start, 1)
    block = theory_block(*theory_inputs(docs))
    atomic_write_text(theory, f"{before}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="lengths study folders, one per seed")
    parser.add_argument("--out", type=Path, help="the JSON file to write")
    parser.add_argument("--accuracy", action="store_true", help="write every variant's accuracy table instead")
    parser.add_argument("--theory", action="store_true", help="write docs/THEORY.md's tables from docs/lengths_*.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.theory:
        write_theory(REPO / "docs")
        return
    if not args.folders or args.out is None:
        parser.error("give --out and the study folders (or --theory)")
    if args.accuracy:
        studies = [LengthsResult.from_dict(json.loads((f / "result.json").read_text())) for f in args.folders]
        table = {
            "interval": "95% Student-t interval of the per-seed accuracies (each over the study's "
            f"{studies[0].config.lengths.eval_batch_size} prompts per length), "
            "over training seeds only, clipped to [0, 1]",
            "folders": [str(f) for f in args.folders],
            "seeds": [s.config.train.seed for s in studies],
            "train_length": studies[0].config.task.seq_len,
            **{
                p: {v: {k: i._asdict() for k, i in ks.items()} for v, ks in accuracy_over_seeds(studies, p).items()}
                for p in PROTOCOLS
            },
            "claims": [c.to_dict() for c in aggregate_claims([claims(s) for s in studies])],
        }
        atomic_write_text(args.out, dumps_json(table) + "\n")
        return
    per_seed = [seed_numbers(folder) for folder in args.folders]
    result = {
        "interval": "95% Student-t interval of the per-seed means (each over the study's prompts), "
        "accuracies and attention masses clipped to [0, 1]",
        "folders": [str(f) for f in args.folders],
        "rpe": over_seeds(per_seed, False),
    }
    atomic_write_text(args.out, dumps_json(result) + "\n")


if __name__ == "__main__":
    main()
