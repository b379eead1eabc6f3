"""Run the any-model analyses on the shipped ``markov`` model and on its untrained twin, and
write what they find to docs/markov_analyses.json (whole or not at all).

    .venv/bin/python scripts/markov_analyses.py [--out docs/markov_analyses.json]

What is measured is :func:`induction_bigram.dynamics.analyses.analyse_markov_model` (its module
doc); the untrained model is the shipped config's model at its initialisation (``model.seed``),
the no-circuit baseline, which must come out as "nothing found". README.md and docs/guide.md
quote the file through scripts/docs_numbers.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from induction_bigram.dynamics.analyses import analyse_markov_model
from induction_bigram.files import atomic_write_text, dumps_json
from induction_bigram.model import build_standard_model
from induction_bigram.model.backend import TL_VERSION
from induction_bigram.pretrained import load_pretrained, standard_pretrained_config

OUT = Path(__file__).resolve().parent.parent / "docs" / "markov_analyses.json"


def markov_analyses() -> dict[str, Any]:
    """The shipped ``markov`` model's analyses and its untrained twin's, on the CPU."""
    config = standard_pretrained_config("markov")
    return {
        "model": "markov",
        "transformer_lens": TL_VERSION,
        "trained": analyse_markov_model(load_pretrained("markov", "cpu"), config),
        "untrained": analyse_markov_model(build_standard_model(config.model, "cpu"), config),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the JSON goes (default: {OUT})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    atomic_write_text(args.out, dumps_json(markov_analyses()) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
