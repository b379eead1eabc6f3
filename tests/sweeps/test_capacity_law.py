"""The capacity law on hand-made capacity sweep folders (no training): recall curves with a known
transition in x = d^2 / (n ln n) give that transition, and the result round-trips through JSON."""

import json
import math

import pytest

from induction_bigram.errors import ConfigError
from induction_bigram.files import claim_folder, dumps_json
from induction_bigram.memories.capacity import PRESETS, CapacityResult, CapacityRow
from induction_bigram.sweeps.capacity_law import (
    CapacityLaw,
    capacity_law,
    crossing,
    law_x,
    plot_capacity_law,
    read_sweep,
    write_capacity_law,
)

pytestmark = pytest.mark.backend_free("tl3")  # the law is fitted to stored tables: no model is built

WIDTHS = tuple(range(2, 129, 2))
SEEDS = (0, 1, 2)
SHIFT = {0: 0.9, 1: 1.0, 2: 1.1}  # the transition of seed s is x0 * SHIFT[s]: mean x0 over the seeds


def ramp(x: float, x0: float) -> float:
    """Recall linear in ln x, 0.5 at x0 (exactly what the interpolation in ln x recovers)."""
    return min(1.0, max(0.0, 0.5 + 0.2 * math.log(x / x0)))


def step(x: float, x0: float) -> float:
    return 1.0 if x >= x0 else 0.0


def make_sweep(folder, ns=(16, 64), trained=lambda d, n, s, *_: ramp(law_x(d, n), 3.0 * SHIFT[s]), theory=None):
    """A sweep folder of capacity results, one per N and seed, whose recalls are given
    functions of (d, n, seed, N); the same function serves every memory (each with its own n)."""
    theory = theory or (lambda d, n, s, *_: ramp(law_x(d, n), 6.0 * SHIFT[s]))
    with claim_folder(folder, "sweep"):  # marked as a sweep of ours, as a real one is
        pass
    base = PRESETS["test"]
    records = []
    for n_tokens in ns:
        config = base.with_overrides({"task.corpus": f"zipf:{n_tokens}:1.0:0", "capacity.widths": list(WIDTHS)})
        stored = {"W_O2": n_tokens, "W_K2": config.task.n_triggers, "W_K1": config.task.seq_len - 1}
        for seed in SEEDS:
            rows = tuple(
                CapacityRow(
                    d,
                    0.0,
                    0.0,
                    {m: {"recall": trained(d, n, seed, n_tokens)} for m, n in stored.items()},
                    {m: {"recall": theory(d, n, seed, n_tokens)} for m, n in stored.items()},
                )
                for d in WIDTHS
            )
            name = f"task.corpus=zipf:{n_tokens}:1.0:0__seed={seed}"
            (folder / "runs" / name).mkdir(parents=True)
            result = CapacityResult(config, 1.0, {}, rows)
            (folder / "runs" / name / "result.json").write_text(dumps_json(result.to_dict()))
            records.append({"run": name, "seed": seed, "values": {"task.corpus": n_tokens}, "status": "done"})
    records.append({"run": "failed-one", "seed": 0, "values": {}, "status": "failed"})  # left out
    (folder / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_crossing_interpolates_in_log_x():
    assert crossing([1.0, 4.0], [0.0, 1.0]) == pytest.approx(2.0)  # half-way in ln x
    assert crossing([1.0, 2.0, 4.0], [0.2, 0.5, 0.9]) == pytest.approx(2.0)
    assert crossing([4.0, 1.0, 2.0], [1.0, 0.2, 0.4]) == pytest.approx(2 * 2 ** (1 / 6))  # sorted by x first
    assert crossing([1.0, 2.0], [0.6, 0.9]) is None  # above 0.5 already: not bracketed
    assert crossing([1.0, 2.0], [0.1, 0.3]) is None  # never reaches it


def test_a_known_transition_is_found_with_its_interval_and_the_curves_collapse(tmp_path):
    points, runs = read_sweep(make_sweep(tmp_path))
    assert runs == 6
    law = capacity_law(points, runs)
    o2 = law.transition("W_O2", "trained")
    assert o2.mean == pytest.approx(3.0, rel=1e-3) and o2.seeds == o2.of_seeds == 3
    assert o2.low < 3.0 < o2.high
    half = 4.30265 * 0.3 / math.sqrt(3)  # t(0.975, 2) * sd of (2.7, 3.0, 3.3) / sqrt(3)
    assert (o2.low, o2.high) == pytest.approx((3.0 - half, 3.0 + half), rel=3e-3)  # 3 significant figures
    assert set(o2.per_n) == {"16", "64"} and o2.per_n["64"]["mean"] == pytest.approx(3.0, rel=1e-3)
    assert o2.spread["d2_over_n_log_n"] == pytest.approx(0.0, abs=1e-3) and o2.collapses is True
    assert o2.spread["d2"] > 1  # the same crossings in d^2 alone are far apart
    assert law.transition("W_O2", "theory").mean == pytest.approx(6.0, rel=1e-3)
    k1 = law.transition("W_K1", "trained")
    assert list(k1.per_n) == ["15"] and k1.collapses is None and k1.spread["d2"] is None  # one T: one n
    assert k1.per_n["15"]["curves"] == 6 and k1.mean == pytest.approx(3.0, rel=1e-3)  # one curve per run


def test_a_step_gives_the_geometric_mean_of_its_bracketing_widths(tmp_path):
    def at(d, n, s, *_):
        return step(d, 20)  # recall 1 from d = 20 on, for every n: no collapse in x

    law = capacity_law(*read_sweep(make_sweep(tmp_path, trained=at, theory=at)))
    o2 = law.transition("W_O2", "trained")
    for n in (16, 64):
        expected = math.sqrt(law_x(18, n) * law_x(20, n))
        assert o2.per_n[str(n)]["mean"] == pytest.approx(expected, rel=2e-3)
        assert o2.per_n[str(n)]["low"] == o2.per_n[str(n)]["high"] == o2.per_n[str(n)]["mean"]
    assert o2.spread["d2"] == pytest.approx(0.0, abs=1e-3)
    assert o2.collapses is False  # the crossings sit at one d, so at x that differ by n ln n


def test_runs_that_share_an_n_are_separate_curves(tmp_path):
    def by_corpus(d, n, s, n_tokens):  # W_K1's n = T - 1 is the same in every run; its curve is not
        return step(d, 20 if n_tokens == 16 else 40)

    k1 = capacity_law(*read_sweep(make_sweep(tmp_path, trained=by_corpus))).transition("W_K1", "trained")
    early, late = (math.sqrt(law_x(d - 2, 15) * law_x(d, 15)) for d in (20, 40))
    assert k1.per_n["15"]["curves"] == 6 and k1.seeds == 3
    assert k1.mean == pytest.approx((early + late) / 2, rel=2e-3) and k1.low == k1.high == k1.mean


def test_a_curve_that_never_crosses_has_no_transition(tmp_path):
    law = capacity_law(*read_sweep(make_sweep(tmp_path, trained=lambda d, n, s, *_: 0.1)))
    none = law.transition("W_O2", "trained")
    assert (none.mean, none.low, none.high, none.seeds, none.collapses) == (None, None, None, 0, None)


def test_the_json_round_trips_and_the_files_are_written(tmp_path):
    returned, png, data = write_capacity_law(make_sweep(tmp_path))
    assert png == tmp_path / "capacity_law.png" and png.stat().st_size > 10_000
    written = json.loads(data.read_text())
    law = CapacityLaw.from_dict(written)
    assert dumps_json(law.to_dict()) == dumps_json(written)
    assert written["variable"] == "d^2 / (n ln n)" and written["runs"] == 6
    assert {(t["memory"], t["model"]) for t in written["transitions"]} == {
        (m, k) for m in ("W_O2", "W_K2", "W_K1") for k in ("trained", "theory")
    }
    assert law == returned
    fig = plot_capacity_law(law)
    assert len(fig.axes) == 3 and all(ax.get_xscale() == "log" for ax in fig.axes)


def test_the_table_has_a_row_per_memory_and_model_with_its_numbers(tmp_path):
    law = capacity_law(*read_sweep(make_sweep(tmp_path)))
    lines = law.table().splitlines()
    assert len(lines) == 2 + len(law.transitions) and lines[0].count("|") == lines[1].count("|")
    for line, t in zip(lines[2:], law.transitions):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert cells[:3] == [t.memory, t.model, ", ".join(t.per_n)] and len(cells) == 7
        assert cells[3] == ("no crossing" if t.mean is None else f"{t.mean:g} [{t.low:g}, {t.high:g}]")
        assert cells[6] == {True: "yes", False: "no", None: ""}[t.collapses]


def test_a_folder_that_is_not_a_capacity_sweep_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no sweep at"):
        read_sweep(tmp_path)
    (tmp_path / "runs.jsonl").write_text(json.dumps({"run": "r", "seed": 0, "status": "done"}) + "\n")
    with pytest.raises(ConfigError, match="is not a capacity result"):
        read_sweep(tmp_path)


def test_the_command_prints_the_table_and_writes_the_files(tmp_path, capsys):
    from induction_bigram.cli import main

    assert main(["capacity-law", str(make_sweep(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| memory | model | n |") and "wrote" in out
    assert (tmp_path / "capacity_law.json").is_file() and (tmp_path / "capacity_law.png").is_file()
