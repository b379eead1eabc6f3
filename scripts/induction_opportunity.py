"""How much a text rewards in-context copying, per context length: the incentive an induction
head has on it (docs/THEORY.md section 3.8, the standard model).

For random windows of the held-out tail of the text, at each position t the "copy guess" is the
character that followed the last earlier occurrence, inside the window, of the ``match``
characters before t (what an induction head matching that many characters predicts). Printed
per window length: the share of positions that have such an occurrence, how often the copy
guess is right there, and how often a trigram model of the rest of the text is right there.
A copy guess that beats the trigram on a larger share of positions is a larger incentive;
``--match`` takes several lengths, to see how many characters a copy must match to pay::

    python scripts/induction_opportunity.py path/to/tinyshakespeare.txt --lengths 128,256,512,1024
    python scripts/induction_opportunity.py path/to/tinyshakespeare.txt --lengths 512 --match 1,2,3,4,6

With ``--json FILE`` the rows are also written there: docs/induction_opportunity.json, which
docs/THEORY.md section 3.8 quotes (scripts/docs_numbers.py), is this script's output for
``../shared/data/tinyshakespeare.txt --lengths 512 --match 1,2,3,4,6 --json docs/induction_opportunity.json``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from induction_bigram.files import atomic_write_text


@dataclass(frozen=True)
class Opportunity:
    """The copy guess against the trigram, for one window length."""

    length: int
    applies: float  # share of positions with an earlier occurrence of the last `match` characters
    copy_right: float  # how often the copy guess is right where it applies
    trigram_right: float  # how often the trigram's most likely character is right there


def trigram_table(text: str) -> dict[str, str]:
    """The most frequent character after each pair of characters."""
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for i in range(2, len(text)):
        counts[text[i - 2 : i]][text[i]] += 1
    return {pair: counter.most_common(1)[0][0] for pair, counter in counts.items()}


def opportunity(
    text: str, length: int, windows: int = 300, match: int = 4, held_out: float = 0.1, seed: int = 0
) -> Opportunity:
    split = int(len(text) * (1 - held_out))
    trigram, tail = trigram_table(text[:split]), text[split:]
    if len(tail) <= length:
        raise ValueError(f"the held-out tail has {len(tail)} characters, fewer than a window of {length}")
    rng = random.Random(seed)
    positions = applies = copy_right = trigram_right = 0
    for _ in range(windows):
        start = rng.randrange(len(tail) - length)
        window = tail[start : start + length]
        for t in range(match, length):
            positions += 1
            earlier = window.rfind(window[t - match : t], 0, t - 1)
            if earlier < 0:
                continue
            applies += 1
            copy_right += window[earlier + match] == window[t]
            trigram_right += trigram.get(window[t - 2 : t]) == window[t]
    return Opportunity(length, applies / positions, copy_right / max(applies, 1), trigram_right / max(applies, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text", help="a UTF-8 text file")
    parser.add_argument("--lengths", default="128,256,512,1024", help="window lengths (comma-separated)")
    parser.add_argument("--match", default="4", help="characters the copy guess matches (comma-separated)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    with open(args.text, encoding="utf-8") as handle:
        text = handle.read()
    rows = measure(text, [int(n) for n in args.lengths.split(",")], [int(m) for m in args.match.split(",")])
    print("matched | n_ctx | positions with an earlier match | copy guess right there | trigram right there")
    for row in rows:
        print(
            f"{row['match']} | {row['length']} | {row['applies']:.1%} | {row['copy_right']:.1%} | "
            f"{row['trigram_right']:.1%}"
        )
    if args.json:  # written whole or not at all
        atomic_write_text(Path(args.json), json.dumps({"rows": rows}, indent=1) + "\n")


def measure(text: str, lengths: list[int], matches: list[int]) -> list[dict]:
    """Every (match, window length) row: :class:`Opportunity`'s fields and ``match``."""
    return [{"match": m, **asdict(opportunity(text, n, match=m))} for m in matches for n in lengths]


if __name__ == "__main__":
    main()
