"""Character-level unigram and bigram statistics of a corpus (docs/THEORY.md section 1).

Token ids are the sorted characters of the corpus. ``BigramStats.default()`` loads the shipped
statistics of tiny Shakespeare (N = 65; produced by ``scripts/derive_stats.py``).
``BigramStats.synthetic`` (corpus name ``"zipf:N:ALPHA:SEED"``) builds Zipf statistics of any size,
for the capacity law of docs/THEORY.md section 3.4: Zipf data is the setting in which Cabannes,
Dohmatob & Bietti (ICLR 2024, "Scaling laws for associative memories") derive power laws of the
memory error in d.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import no_type_check

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.errors import DataError
from induction_bigram.files import atomic_write_text

FORMAT = "induction-bigram-stats"
SHIPPED = {"tinyshakespeare": "tinyshakespeare.json"}
ZIPF_TOTAL = 10_000_000
"""Default number of tokens behind synthetic counts (the unigram counts sum to about this)."""
FIRST_SYNTHETIC_CHARACTER = 0xC0
ZIPF_NAME = re.compile(r"zipf:(\d+):([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?):(\d+)")


@dataclass(frozen=True, eq=False)
class BigramStats:
    """Counts over a character vocabulary.

    Attributes:
        vocab: the characters; token id i is ``vocab[i]``.
        unigram_counts: occurrences of each character.
        bigram_counts: ``[i, j]`` = number of adjacent pairs (i, j) in the text.
        source: free-form provenance (file name, hash, sizes).
    """

    vocab: tuple[str, ...]
    unigram_counts: Int[Tensor, " n_tokens"]
    bigram_counts: Int[Tensor, "n_tokens n_tokens"]
    source: dict

    def __post_init__(self) -> None:
        n = len(self.vocab)
        if n < 2 or len(set(self.vocab)) != n or any(len(c) != 1 for c in self.vocab):
            raise DataError(f"vocab must hold at least 2 distinct single characters, got {n}")
        if self.unigram_counts.shape != (n,) or self.bigram_counts.shape != (n, n):
            raise DataError(
                f"counts have shapes {tuple(self.unigram_counts.shape)} and "
                f"{tuple(self.bigram_counts.shape)}, expected ({n},) and ({n}, {n})"
            )
        if (self.unigram_counts < 0).any() or (self.bigram_counts < 0).any():
            raise DataError("counts must be non-negative")
        if (self.unigram_counts == 0).any():
            missing = [self.vocab[i] for i in torch.nonzero(self.unigram_counts == 0).flatten()]
            raise DataError(f"characters {missing!r} have zero count; drop them from the vocab")

    # -- construction --------------------------------------------------------------------

    @classmethod
    @no_type_check  # the check below names from_file; runtime type checkers must not pre-empt it
    def from_text(cls, text: str) -> "BigramStats":
        """Count the characters and adjacent pairs of ``text``, the text itself.

        A path is never guessed from a string: for a file use :meth:`from_file` (a
        ``pathlib.Path`` or other ``os.PathLike`` here is a :class:`DataError` that says so).
        """
        if isinstance(text, os.PathLike):
            raise DataError(
                f"BigramStats.from_text takes the text itself, got the path {os.fspath(text)!r}; "
                "use BigramStats.from_file(path) to read a file"
            )
        if not isinstance(text, str):
            raise DataError(f"BigramStats.from_text takes a str, got {type(text).__name__}")
        return cls._count(text, {"file": None})

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "BigramStats":
        """Count the characters and adjacent pairs of a UTF-8 text file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read corpus {path}: {err}") from None
        return cls._count(text, {"file": path.name})

    @classmethod
    def _count(cls, text: str, origin: dict) -> "BigramStats":
        if len(text) < 2:
            raise DataError(f"a corpus needs at least 2 characters, got {len(text)}")
        vocab = tuple(sorted(set(text)))
        lookup = {c: i for i, c in enumerate(vocab)}
        ids = torch.tensor([lookup[c] for c in text], dtype=torch.long)
        n = len(vocab)
        unigram = torch.bincount(ids, minlength=n)
        bigram = torch.bincount(ids[:-1] * n + ids[1:], minlength=n * n).reshape(n, n)
        origin = origin | {"n_characters": len(text), "n_pairs": len(text) - 1}
        return cls(vocab, unigram, bigram, origin)

    @classmethod
    def synthetic(cls, n_tokens: int, alpha: float, seed: int, total: int = ZIPF_TOTAL) -> "BigramStats":
        """Zipf statistics over ``n_tokens`` characters (corpus name ``"zipf:N:ALPHA:SEED"``).

        Unigram pi_u(i) proportional to (i + 1)^-alpha (token 0 the most frequent); each row of
        the bigram a Zipf law with the same exponent over its own random permutation of the
        tokens, drawn from ``seed``: pi_b(sigma_i(r) | i) proportional to (r + 1)^-alpha, so that
        every token has its own favourite successor sigma_i(0). Counts are integers consistent
        with these laws: unigram_counts[i] = round(total pi_u(i)) (at least 1), and row i of the
        bigram counts is round(unigram_counts[i] pi_b(. | i)), as if a text of about ``total``
        characters had been counted. This is the Zipf setting of Cabannes, Dohmatob & Bietti
        (ICLR 2024) for the capacity of associative memories (docs/THEORY.md sections 1, 3.4).

        The vocabulary is the first ``n_tokens`` characters from U+00C0 on that are printable,
        not whitespace and not combining marks (``À``, ``Á``, ...), so each is one token of the
        models' character tokenizer and ids follow code points (sorted, as for a text). The
        same arguments give bitwise the same counts (Python's ``random.Random(seed)``).
        """
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
            raise DataError(f"synthetic statistics need an integer n_tokens >= 2, got {n_tokens!r}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise DataError(f"synthetic statistics need a finite alpha >= 0, got {alpha!r}")
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise DataError(f"synthetic statistics need an integer total >= 1, got {total!r}")
        law = torch.arange(1, n_tokens + 1, dtype=torch.float64) ** -float(alpha)
        law = law / law.sum()
        unigram = torch.round(total * law).long().clamp_min(1)
        rng = random.Random(seed)
        ranks = torch.empty(n_tokens, n_tokens, dtype=torch.long)  # ranks[i, j]: rank of j after i
        for i in range(n_tokens):
            order = list(range(n_tokens))
            rng.shuffle(order)
            ranks[i, torch.tensor(order)] = torch.arange(n_tokens)
        bigram = torch.round(unigram.double()[:, None] * law[ranks]).long()
        source = {"synthetic": "zipf", "n_tokens": n_tokens, "alpha": float(alpha), "seed": seed, "total": total}
        return cls(_synthetic_vocab(n_tokens), unigram, bigram, source)

    @classmethod
    def default(cls) -> "BigramStats":
        """The shipped character statistics of tiny Shakespeare."""
        return cls.named("tinyshakespeare")

    @classmethod
    def named(cls, name: str) -> "BigramStats":
        """Shipped statistics by name (see ``SHIPPED``)."""
        if name not in SHIPPED:
            raise DataError(f"no shipped statistics named {name!r}; have {sorted(SHIPPED)}")
        with resources.as_file(resources.files("induction_bigram.data") / SHIPPED[name]) as p:
            return cls.load(p)

    @classmethod
    def from_corpus(cls, corpus: str) -> "BigramStats":
        """Resolve ``TaskConfig.corpus``: a shipped name, ``"zipf:N:ALPHA:SEED"``, a stats JSON,
        or a text file.

        ``"zipf:N:ALPHA:SEED"`` is :meth:`synthetic` with N tokens (an integer >= 2), exponent
        ALPHA (a non-negative decimal, e.g. ``1`` or ``1.25``) and SEED (a non-negative integer),
        e.g. ``"zipf:64:1.0:0"``; a name that starts with ``zipf:`` but does not parse is a
        :class:`DataError` naming it.

        The result is shared between calls for the same corpus (a file counts as the same
        while its size and modification time are): one study reads its corpus once however
        many models it trains. Treat it as read-only.
        """
        if corpus in SHIPPED:
            return _cached_corpus(corpus, None)
        if corpus.startswith("zipf:"):
            return _cached_zipf(*_parse_zipf(corpus))
        path = Path(corpus)
        if not path.is_file():
            raise DataError(f"task.corpus {corpus!r} is neither a shipped name {sorted(SHIPPED)} nor a file")
        stat = path.stat()
        return _cached_corpus(str(path.resolve()), (stat.st_size, stat.st_mtime_ns))

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "vocab": list(self.vocab),
            "unigram_counts": self.unigram_counts.tolist(),
            "bigram_counts": self.bigram_counts.tolist(),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BigramStats":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError("not an induction-bigram statistics file (missing 'format')")
        try:
            return cls(
                tuple(data["vocab"]),
                torch.tensor(data["unigram_counts"], dtype=torch.long),
                torch.tensor(data["bigram_counts"], dtype=torch.long),
                dict(data.get("source", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"malformed statistics: {err}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=True, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "BigramStats":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read statistics {path}: {err}") from None
        return cls.from_dict(data)

    # -- distributions -------------------------------------------------------------------

    @property
    def n_tokens(self) -> int:
        """N, the vocabulary size."""
        return len(self.vocab)

    @property
    def unigram(self) -> Float[Tensor, " n_tokens"]:
        """pi_u, the unigram distribution (float64)."""
        counts = self.unigram_counts.double()
        return counts / counts.sum()

    @property
    def bigram(self) -> Float[Tensor, "n_tokens n_tokens"]:
        """pi_b(j | i) in row i (float64).

        A character seen only at the very end of the text has no successor; its row falls
        back to pi_u so that every row is a distribution.
        """
        counts = self.bigram_counts.double()
        totals = counts.sum(-1, keepdim=True)
        return torch.where(totals > 0, counts / totals.clamp_min(1), self.unigram)

    def most_frequent(self, k: int) -> Int[Tensor, " k"]:
        """The k most frequent tokens, most frequent first (ties: lower id first)."""
        order = sorted(range(self.n_tokens), key=lambda i: (-int(self.unigram_counts[i]), i))
        return torch.tensor(order[:k], dtype=torch.long)

    def global_favourite(self, token: int) -> int:
        """g = argmax_j pi_b(j | token)."""
        return int(self.bigram[self.check_ids(torch.tensor([token]))[0]].argmax())

    # -- text <-> ids --------------------------------------------------------------------

    def encode(self, text: str) -> Int[Tensor, " length"]:
        """Token ids of ``text``; a character outside the vocabulary is a :class:`DataError`."""
        lookup = {c: i for i, c in enumerate(self.vocab)}
        unknown = sorted({c for c in text if c not in lookup})
        if unknown:
            where = text.index(unknown[0])
            raise DataError(
                f"characters {unknown!r} are not in the vocabulary (first at index {where}); "
                f"the vocabulary has {self.n_tokens} characters"
            )
        return torch.tensor([lookup[c] for c in text], dtype=torch.long)

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """The characters of a 1-D sequence of token ids."""
        ids = torch.as_tensor(ids)
        if ids.ndim != 1:
            raise DataError(f"decode takes a 1-D sequence of ids, got shape {tuple(ids.shape)}")
        return "".join(self.vocab[i] for i in self.check_ids(ids).tolist())

    def check_ids(self, ids: Tensor) -> Tensor:
        """Return ``ids`` unchanged, or raise naming the first id outside [0, N)."""
        bad = (ids < 0) | (ids >= self.n_tokens)
        if bad.any():
            first = int(ids[bad].flatten()[0])
            raise DataError(f"token id {first} is outside the vocabulary [0, {self.n_tokens})")
        return ids


@functools.lru_cache(maxsize=8)
def _cached_corpus(corpus: str, stamp: tuple[int, int] | None) -> BigramStats:
    if stamp is None:
        return BigramStats.named(corpus)
    path = Path(corpus)
    return BigramStats.load(path) if path.suffix == ".json" else BigramStats.from_file(path)


def _parse_zipf(corpus: str) -> tuple[int, float, int]:
    match = ZIPF_NAME.fullmatch(corpus)
    if match is None or int(match[1]) < 2:
        raise DataError(
            f"task.corpus {corpus!r} is not a synthetic Zipf corpus: write zipf:N:ALPHA:SEED with an integer "
            "N >= 2, a decimal ALPHA >= 0 and an integer SEED >= 0, e.g. zipf:64:1.0:0"
        )
    return int(match[1]), float(match[2]), int(match[3])


@functools.lru_cache(maxsize=8)
def _cached_zipf(n_tokens: int, alpha: float, seed: int) -> BigramStats:
    return BigramStats.synthetic(n_tokens, alpha, seed)


def _synthetic_vocab(n_tokens: int) -> tuple[str, ...]:
    """The first ``n_tokens`` characters from U+00C0 on that are printable, not whitespace and
    not combining marks."""
    vocab: list[str] = []
    code = FIRST_SYNTHETIC_CHARACTER
    while len(vocab) < n_tokens:
        if code > 0x10FFFF:
            raise DataError(f"there are not {n_tokens} printable characters for a synthetic vocabulary")
        char = chr(code)
        if char.isprintable() and not char.isspace() and not unicodedata.category(char).startswith("M"):
            vocab.append(char)
        code += 1
    return tuple(vocab)
