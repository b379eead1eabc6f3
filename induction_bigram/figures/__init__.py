"""Shared figure machinery: PNG writing (:mod:`.style`) and circuitsvis attention views
(:mod:`.views`)."""

from induction_bigram.figures.style import save_figure, save_figures
from induction_bigram.figures.views import attention_view, save_view, token_labels

__all__ = ["attention_view", "save_figure", "save_figures", "save_view", "token_labels"]
