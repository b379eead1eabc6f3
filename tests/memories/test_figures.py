import pytest

from induction_bigram.config import ModelConfig
from induction_bigram.figures import save_figure, save_figures
from induction_bigram.memories import capacity, study
from induction_bigram.memories.figures import (
    capacity_figures,
    memory_figures,
    plot_memory_coefficients,
    plot_memory_training,
)
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
        "memories": {m: {"recall": 0.5, "recall_first8": 0.6, "margin": 1.0} for m in ("W_O2", "W_K2", "W_K1")},
    }
    fig = plot_memory_training([record, {**record, "step": 10}], first_positions=8)
    assert len(fig.axes[0].lines) == 5
    assert len(plot_memory_training([record]).axes[0].lines) == 4  # no recall_first64 recorded: no such curve
    with pytest.raises(ValueError, match="no memory scores"):
        plot_memory_training([{"step": 0}])


def test_study_figures_are_drawn_from_the_result_alone(tmp_path):
    result = study.run(study.PRESETS["test"], progress=False)
    figs = memory_figures(result)
    assert list(figs) == ["memories_coefficients.png", "memories_training.png", "attention.html"]
    w_k1 = next(ax for ax in figs["memories_coefficients.png"].axes if ax.get_title().startswith("W_K^1"))
    assert w_k1.images[0].get_array().shape == (7, 8)  # the first 8 positions (memories.first_positions)
    written = save_figures(figs, tmp_path)
    page = (tmp_path / "attention.html").read_text()
    assert len(written) == 3 and "layer 2: induction head" in page and "\\u2423" in page  # spaces made visible
    no_history = memory_figures(study.MemoriesResult(**{**vars(result), "history": []}))
    assert "memories_training.png" not in no_history


def test_capacity_figure_has_one_tick_per_width():
    result = capacity.run(capacity.PRESETS["test"], progress=False)
    (name, fig), *others = capacity_figures(result).items()
    assert name == "capacity.png" and not others
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["8", "16"]
