"""Derive the shipped tiny-Shakespeare statistics from the text.

    python scripts/derive_stats.py ../shared/data/tinyshakespeare.txt

writes ``induction_bigram/data/tinyshakespeare.json`` (the counts and the text's SHA-256; the
text itself is never committed).
"""

import argparse
import hashlib
from pathlib import Path

from induction_bigram.data.stats import BigramStats

OUT = Path(__file__).resolve().parents[1] / "induction_bigram" / "data" / "tinyshakespeare.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", type=Path, help="path to tinyshakespeare.txt")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    stats = BigramStats.from_file(args.text)
    stats.source["sha256"] = hashlib.sha256(args.text.read_bytes()).hexdigest()
    stats.save(args.out)
    print(f"wrote {args.out}: N = {stats.n_tokens}, {stats.source['n_pairs']:,} pairs")


if __name__ == "__main__":
    main()
