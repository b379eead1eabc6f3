"""What TransformerLens's own loss says on the shipped models, with and without the induction head.

For every model of :func:`induction_bigram.pretrained.available`, on ``--batches`` task batches
(seeds 0, 1, ...; ``--batch-size`` sequences each, the model's own task and T) and on
``--batches`` sets of repeated random tokens (:func:`repeated_random_tokens`, half length 30),
measures ``model(tokens, return_type="loss")`` (the mean over every position, as a TL user calls
it) as it is and with the induction head ablated (``blocks.1.attn.hook_z`` zeroed), and beside
it :func:`in_context_loss` (the targets with label >= 2) and the loss on the bigram targets
(label 0). Each number is the mean over the batches with its 95% t interval: the models are one
training seed each, so the interval is over prompts only.

Writes ``--out`` (default docs/tl_loss.json) and prints a table.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/tl_loss.py [--batches 5] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import torch

import induction_bigram as ib
from induction_bigram.anymodel import repeated_random_tokens
from induction_bigram.data.task import TaskBatch
from induction_bigram.files import dumps_json
from induction_bigram.intervals import mean_interval
from induction_bigram.pretrained import available, pretrained_config, pretrained_task
from induction_bigram.training.metrics import masked_cross_entropy

REPO = Path(__file__).resolve().parent.parent
ABLATED = [("blocks.1.attn.hook_z", lambda z, hook: torch.zeros_like(z))]  # the induction head's output


def losses(model, tokens: torch.Tensor, batch: TaskBatch | None) -> dict[str, float]:
    """TL's loss, as a TL user calls it, and (on a task batch) the in-context and bigram-target losses."""
    out = {"tl_loss": model(tokens, return_type="loss").item()}
    if batch is not None:
        logits = model(tokens)
        out["in_context_loss"] = ib.in_context_loss(logits, batch).item()
        out["bigram_target_loss"] = masked_cross_entropy(logits, batch.targets, batch.bigram).item()
    return out


@torch.no_grad()
def measure(name: str, batches: int, batch_size: int) -> dict:
    model = ib.load_pretrained(name, "cpu")
    task = pretrained_task(name)
    rows: dict[str, list[float]] = {}
    for seed in range(batches):
        batch = task.sample(batch_size, torch.Generator().manual_seed(seed))
        repeated = repeated_random_tokens(model, batch_size, 30, seed)
        for ablated in (False, True):
            with model.hooks(fwd_hooks=ABLATED if ablated else []):
                suffix = "_ablated" if ablated else ""
                for key, value in losses(model, batch.tokens, batch).items():
                    rows.setdefault(f"task_{key}{suffix}", []).append(value)
                rows.setdefault(f"repeated_tl_loss{suffix}", []).append(losses(model, repeated, None)["tl_loss"])
    return {
        "trained_on": pretrained_config(name).train.loss,
        **{key: mean_interval(values)._asdict() for key, values in rows.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5, help="task batches (seeds 0..N-1) per model (default 5)")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per batch (default 64)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "tl_loss.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {
        "transformer_lens": importlib.metadata.version("transformer-lens"),
        "batches": args.batches,
        "batch_size": args.batch_size,
        "ablation": "blocks.1.attn.hook_z zeroed",
        "interval": "mean over batches, 95% Student t (one training seed per model)",
        "models": {name: measure(name, args.batches, args.batch_size) for name in available()},
    }
    args.out.write_text(dumps_json(result) + "\n")
    keys = [k for k in next(iter(result["models"].values())) if k != "trained_on"]
    print(f"{'model':<10} {'trained on':<11} " + " ".join(f"{k:>32}" for k in keys))
    for name, row in result["models"].items():
        cells = [f"{row[k]['mean']:.2f} [{row[k]['low']:.2f}, {row[k]['high']:.2f}]" for k in keys]
        print(f"{name:<10} {row['trained_on']:<11} " + " ".join(f"{c:>32}" for c in cells))


if __name__ == "__main__":
    main()
