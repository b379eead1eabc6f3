from pathlib import Path

import pytest
import torch

from induction_bigram import BigramStats
from induction_bigram.errors import DataError
from tests.conftest import shakespeare_text_path


@pytest.mark.parametrize("root", ["repo", "worktrees/branch"])
def test_the_text_is_found_in_shared_data_beside_the_repository(tmp_path, monkeypatch, root):
    """CI keeps the text at ../shared/data/tinyshakespeare.txt relative to the repository root;
    a git worktree one folder deeper finds the same file."""
    monkeypatch.delenv("INDUCTION_BIGRAM_SHAKESPEARE", raising=False)
    repo = tmp_path / "ci" / root
    repo.mkdir(parents=True)
    assert shakespeare_text_path(repo) is None or not shakespeare_text_path(repo).is_relative_to(tmp_path)
    text = tmp_path / "ci" / "shared" / "data" / "tinyshakespeare.txt"
    text.parent.mkdir(parents=True)
    text.write_text("First Citizen:\n", encoding="utf-8")
    assert shakespeare_text_path(repo) == text
    monkeypatch.setenv("INDUCTION_BIGRAM_SHAKESPEARE", str(tmp_path / "elsewhere.txt"))  # a named file comes first
    (tmp_path / "elsewhere.txt").write_text("x", encoding="utf-8")
    assert shakespeare_text_path(repo) == tmp_path / "elsewhere.txt"


def test_shipped_counts_equal_a_recount_of_the_text(stats):
    path = shakespeare_text_path()
    if path is None:
        pytest.skip("tinyshakespeare.txt is not on this machine (set INDUCTION_BIGRAM_SHAKESPEARE)")
    recount = BigramStats.from_file(path)
    assert recount.vocab == stats.vocab
    assert torch.equal(recount.unigram_counts, stats.unigram_counts)
    assert torch.equal(recount.bigram_counts, stats.bigram_counts)


def test_shipped_statistics_match_the_theory(stats):
    assert stats.n_tokens == 65
    assert list(stats.vocab) == sorted(stats.vocab)
    assert int(stats.unigram_counts.sum()) == 1_115_394
    assert int(stats.bigram_counts.sum()) == 1_115_393
    assert torch.allclose(stats.bigram.sum(-1), torch.ones(65, dtype=torch.float64))


def test_from_text_counts_pairs():
    s = BigramStats.from_text("abab")
    assert s.vocab == ("a", "b")
    assert s.unigram_counts.tolist() == [2, 2]
    assert s.bigram_counts.tolist() == [[0, 2], [1, 0]]
    # "b" is followed by "a" once; "a" always by "b"
    assert s.bigram.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_character_without_successor_falls_back_to_unigram():
    s = BigramStats.from_text("aab")  # "b" only at the end
    assert torch.allclose(s.bigram[1], s.unigram)


def test_from_file_reads_a_path_and_from_text_never_guesses_one(tmp_path: Path):
    path = tmp_path / "corpus.txt"
    path.write_text("hello world")
    assert BigramStats.from_file(path).n_tokens == len(set("hello world"))
    assert BigramStats.from_file(str(path)).source["file"] == "corpus.txt"
    # a str is always the text: "corpus.txt" has the characters of the file name
    assert BigramStats.from_text(str(path)).vocab == tuple(sorted(set(str(path))))
    with pytest.raises(DataError, match=r"from_text takes the text itself.*from_file"):
        BigramStats.from_text(path)
    with pytest.raises(DataError, match="cannot read corpus"):
        BigramStats.from_file(tmp_path / "missing.txt")


def test_encode_decode_round_trip(stats):
    text = "First Citizen:\nBefore we proceed any further, hear me speak."
    assert stats.decode(stats.encode(text)) == text


def test_unknown_character_names_it(stats):
    with pytest.raises(DataError, match=r"\['é'\].*index 3"):
        stats.encode("cafée")


def test_decode_rejects_out_of_range_ids(stats):
    with pytest.raises(DataError, match="token id 65 is outside"):
        stats.decode([1, 2, 65])


def test_save_load_round_trip(tmp_path, stats):
    stats.save(tmp_path / "s.json")
    loaded = BigramStats.load(tmp_path / "s.json")
    assert loaded.vocab == stats.vocab and torch.equal(loaded.bigram_counts, stats.bigram_counts)


def test_corrupt_stats_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.json").write_text('{"format": "induction-bigram-stats", "vocab": ["a"]')
    with pytest.raises(DataError, match="cannot read statistics"):
        BigramStats.load(tmp_path / "s.json")


def test_corpus_resolution(tmp_path, stats):
    assert BigramStats.from_corpus("tinyshakespeare").vocab == stats.vocab
    with pytest.raises(DataError, match="neither a shipped name"):
        BigramStats.from_corpus(str(tmp_path / "missing.txt"))


def test_most_frequent_tokens(stats):
    top = stats.most_frequent(5)
    assert stats.decode(top)[0] == " "
    counts = stats.unigram_counts[top]
    assert (counts[:-1] >= counts[1:]).all()
    assert counts[-1] >= stats.unigram_counts.sort(descending=True).values[4]


def test_a_corpus_is_read_once_until_its_file_changes(tmp_path: Path):
    corpus = tmp_path / "text.txt"
    corpus.write_text("abab")
    first = BigramStats.from_corpus(str(corpus))
    assert BigramStats.from_corpus(str(corpus)) is first
    assert BigramStats.from_corpus("tinyshakespeare") is BigramStats.from_corpus("tinyshakespeare")
    corpus.write_text("abcabc")
    assert BigramStats.from_corpus(str(corpus)).vocab == ("a", "b", "c")


# -- synthetic Zipf statistics ------------------------------------------------------------------


def test_synthetic_counts_follow_the_zipf_laws():
    s = BigramStats.synthetic(40, 1.2, seed=3, total=10**7)
    ranks = torch.arange(1, 41, dtype=torch.float64)
    law = ranks**-1.2 / (ranks**-1.2).sum()
    assert s.n_tokens == 40 and s.source["synthetic"] == "zipf"
    assert torch.equal(s.unigram_counts, torch.round(10**7 * law).long())
    assert torch.allclose(s.unigram, law, rtol=1e-4)
    for i in (0, 17, 39):  # each row: the same law over its own permutation of the tokens
        row = s.bigram_counts[i]
        assert int(row.sum()) == pytest.approx(int(s.unigram_counts[i]), rel=1e-3)
        ordered = row.sort(descending=True).values.double()
        assert torch.allclose(ordered / ordered.sum(), law, atol=2e-3)
    favourites = [s.global_favourite(i) for i in range(40)]
    assert len(set(favourites)) > 10  # not one shared favourite successor


def test_synthetic_vocabulary_is_printable_single_characters():
    s = BigramStats.synthetic(300, 1.0, seed=0)
    assert s.vocab[0] == "\u00c0" and list(s.vocab) == sorted(s.vocab)
    assert all(len(c) == 1 and c.isprintable() and not c.isspace() for c in s.vocab)
    assert s.decode(s.encode("".join(s.vocab))) == "".join(s.vocab)


def test_synthetic_is_reproducible_and_seeds_differ():
    a, b = BigramStats.synthetic(32, 1.0, seed=0), BigramStats.synthetic(32, 1.0, seed=0)
    assert torch.equal(a.bigram_counts, b.bigram_counts) and torch.equal(a.unigram_counts, b.unigram_counts)
    c = BigramStats.synthetic(32, 1.0, seed=1)
    assert torch.equal(a.unigram_counts, c.unigram_counts)  # the unigram law has no randomness
    assert not torch.equal(a.bigram_counts, c.bigram_counts)


def test_zipf_corpus_names():
    s = BigramStats.from_corpus("zipf:24:0.8:5")
    assert torch.equal(s.bigram_counts, BigramStats.synthetic(24, 0.8, 5).bigram_counts)
    assert BigramStats.from_corpus("zipf:24:0.8:5") is s  # built once per name
    assert BigramStats.from_corpus("zipf:24:1:5").source["alpha"] == 1.0


@pytest.mark.parametrize("name", ["zipf:", "zipf:64", "zipf:64:1.0", "zipf:1:1.0:0", "zipf:x:1:0", "zipf:8:-1:0"])
def test_malformed_zipf_names_are_data_errors_naming_them(name):
    with pytest.raises(DataError, match=f"{name!r}.*zipf:N:ALPHA:SEED"):
        BigramStats.from_corpus(name)


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(DataError, match="n_tokens >= 2"):
        BigramStats.synthetic(1, 1.0, 0)
    with pytest.raises(DataError, match="alpha >= 0"):
        BigramStats.synthetic(8, float("nan"), 0)
