from induction_bigram import preset
from induction_bigram.memories.capacity import compare_across_widths
from induction_bigram.memories.figures import plot_capacity


def test_trained_and_theory_models_are_compared_per_width():
    recipe = preset("quick").with_overrides(
        [
            "train.steps=3",
            "train.batch_size=4",
            "train.eval_batch_size=4",
            "task.seq_len=16",
            "model.n_ctx=16",
            "train.device=cpu",
        ]
    )
    rows = compare_across_widths((8, 16), recipe, eval_batch_size=8, progress=False)
    assert [r.d_model for r in rows] == [8, 16]
    for row in rows:
        assert set(row.trained) == set(row.theory) == {"W_O2", "W_K2", "W_K1"}
        assert 0 <= row.trained_accuracy <= 1 and 0 <= row.theory_accuracy <= 1
        # the theory-built memory is its own ideal form
        assert abs(row.theory["W_K1"]["cosine"] - 1) < 1e-4 and abs(row.theory["W_O2"]["cosine"] - 1) < 1e-4
    assert plot_capacity(rows).axes
