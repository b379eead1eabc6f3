import torch

from induction_bigram import ModelConfig
from induction_bigram.views import attention_view, save_view, token_labels
from tests.conftest import model_of


def test_attention_view_shows_both_heads_with_characters(stats, tmp_path):
    model = model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65))
    tokens = stats.encode("First Citizen:\nSpeak")
    assert token_labels(stats, tokens)[5] == "\u2423" and token_labels(stats, tokens)[14] == "\u23ce"
    view = attention_view(model, tokens, stats)
    assert type(view).__name__ == "RenderedHTML"
    assert "previous-token head" in view.local_src and "induction head" in view.local_src
    assert "Citizen" not in view.local_src  # tokens are single characters, not words
    assert '"F"' in view.local_src
    save_view(view, tmp_path / "view.html")
    page = (tmp_path / "view.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" in page and "unpkg.com" not in page


def test_view_rejects_out_of_vocabulary_tokens(stats):
    import pytest

    from induction_bigram import DataError

    model = model_of(ModelConfig(d_model=16, n_ctx=8, d_vocab=65))
    with pytest.raises(DataError, match="token id 70"):
        attention_view(model, torch.tensor([1, 70]), stats)
