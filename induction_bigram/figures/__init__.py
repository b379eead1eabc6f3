"""Shared figure machinery: PNG writing (:mod:`.style`), circuitsvis attention views
(:mod:`.views`), and the Markdown of the report's study sections (:mod:`.markdown`)."""

from induction_bigram.figures.style import save_figure, save_figures
from induction_bigram.figures.views import attention_view, save_view, token_labels

__all__ = ["attention_view", "save_figure", "save_figures", "save_view", "token_labels"]
