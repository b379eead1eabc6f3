import pytest

from induction_bigram import ModelConfig
from induction_bigram.figures import save_figure
from induction_bigram.memories.figures import plot_memory_coefficients, plot_memory_training
from induction_bigram.memories.projections import project_W_K1, project_W_K2, project_W_O2
from tests.conftest import model_of


def test_memory_heatmaps_mark_every_intended_entry(tmp_path):
    model = model_of(ModelConfig(d_model=16, n_ctx=80, d_vocab=7))
    projections = {"W_O2": project_W_O2(model), "W_K2": project_W_K2(model), "W_K1": project_W_K1(model)}
    fig = plot_memory_coefficients(projections)
    markers = [ax.collections[0].get_offsets() for ax in fig.axes if ax.collections and ax.get_title()]
    assert [len(m) for m in markers] == [7, 7, 63]  # W_K1 clipped to the first 64 positions
    save_figure(fig, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


def test_training_curves_need_memory_scores():
    record = {
        "step": 0,
        "in_context_accuracy": 0.1,
        "memories": {m: {"recall": 0.5, "recall_first64": 0.6, "margin": 1.0} for m in ("W_O2", "W_K2", "W_K1")},
    }
    fig = plot_memory_training([record, {**record, "step": 10}])
    assert len(fig.axes[0].lines) == 5
    with pytest.raises(ValueError, match="no memory scores"):
        plot_memory_training([{"step": 0}])
