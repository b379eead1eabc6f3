"""The claims table of REPORT.md, judged over seeds (induction_bigram.report.render, docs/THEORY.md section 8)."""

import re
from dataclasses import replace

from induction_bigram.claims import Claim, aggregate_claims
from induction_bigram.incontext.in_words import idealised_in_words, paths_in_words
from induction_bigram.report.render import StudySection, render_claims, render_report, what_holds
from induction_bigram.studies import STUDIES


def _claims(result: dict) -> list[Claim]:
    """A toy study's claims: an accuracy against 0.9, an order, and a reported count."""
    acc = result["acc"]
    return [
        Claim(
            "2",
            "learns the task",
            f"accuracy {acc:.3f}",
            value=acc,
            threshold=0.9,
            direction=">=",
            statistic="accuracy",
        ),
        Claim("3", "forms in order", f"steps {result['steps']}", result["steps"] == sorted(result["steps"])),
        Claim("5.4", "hijack threshold", f"n* {result['n']} | by T", reported=True),
    ]


def _toy_parts():
    return replace(STUDIES["memories"].parts, claims=_claims, section=lambda result, claims: [])


TOY = replace(STUDIES["memories"], name="toy", title="Toy study", load=_toy_parts)


def _result(acc: float, steps=(1, 2, 3), n: int = 2) -> dict:
    return {"acc": acc, "steps": list(steps), "n": n}


def _rows(text: str) -> list[list[str]]:
    """The findings table's rows, without the id column (the toy study's claims are unregistered)."""
    lines = text.split("| id | section | claim |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    assert all(row[0] == "unregistered" for row in rows)
    return [row[1:] for row in rows]


def test_the_header_names_the_runs_device_from_their_record_else_this_machines_cores():
    section = StudySection(TOY, _result(0.95), seconds=60.0)
    assert "device: NVIDIA H100; " in render_report([section], "quick", 60.0, {"device": "NVIDIA H100"})
    assert re.search(r"device: CPU \(.+, \d+ cores\); ", render_report([section], "quick"))


def test_one_seed_keeps_the_single_run_report():
    section = StudySection(TOY, _result(0.95), seconds=60.0)
    text = render_report([section], "quick")
    assert "## Claims of docs/THEORY.md" in text and "## Toy study" in text and "from 1 seed" in text
    assert "| id | section | claim | mean [95% interval] over seeds | threshold | held |" in text
    assert _rows(text) == [
        ["2", "learns the task", "0.950 over 1 seed (no interval); accuracy 0.950", "accuracy >= 0.9", "yes"],
        ["3", "forms in order", "steps [1, 2, 3]", "in every seed", "yes"],
        ["5.4", "hijack threshold", "n* 2 \\| by T", "", "reported"],
    ]
    failed = _rows(render_report([StudySection(TOY, _result(0.85, steps=(2, 1, 3)))], None))
    assert [row[-1] for row in failed] == ["**no**", "**no**", "reported"]


def test_seeds_give_intervals_and_verdicts_over_seeds():
    results = [_result(0.95), _result(0.96, steps=(2, 1, 3), n=3), _result(0.97)]
    section = StudySection(TOY, results[0], results=results)
    assert section.claims == _claims(results[0]) and len(section.seed_claims) == 3
    rows = _rows(render_report([section], "full"))
    assert rows[0][2].startswith("0.960 [") and rows[0][2].endswith("] over 3 seeds") and rows[0][4] == "yes"
    assert rows[1][2] == "held in 2 of 3 seeds" and rows[1][4] == "undecided"
    assert rows[2][2] == "seed 0: n* 2 \\| by T; seed 1: n* 3 \\| by T; seed 2: n* 2 \\| by T"


def test_an_interval_straddling_the_threshold_is_undecided_and_one_below_fails():
    straddle = aggregate_claims([_claims(_result(a)) for a in (0.88, 0.92, 0.96)])
    below = aggregate_claims([_claims(_result(a)) for a in (0.80, 0.82, 0.84)])
    table = render_claims([straddle[0], below[0]])
    assert table[0].startswith("Each claim over 3 seeds")
    assert [row.rsplit(" | ", 1)[1] for row in table[-2:]] == ["undecided |", "**no** |"]


def _share_claims(shares: list[float]) -> list:
    return aggregate_claims([[Claim("4.1", "share through W_F", f"{s:.3f}", value=s, reported=True)] for s in shares])


def test_the_paths_are_said_in_words_from_claim_4_1_over_seeds():
    """Which mechanism carries the in-context signal, with the interval over seeds; nothing
    when the study did not report it."""
    through_ffn = paths_in_words(_share_claims([0.93, 0.95, 0.94]))
    assert "mostly through the FFN W_F: 94% [" in through_ffn and "over 3 seeds" in through_ffn
    assert "mostly directly" in paths_in_words(_share_claims([0.1, 0.2, 0.15]))
    assert paths_in_words(_share_claims([0.3])).count("[") == 0  # one seed: no interval
    assert paths_in_words([]) == ""


def test_sanity_checks_are_shown_apart_from_the_findings():
    """A registered claim carries its id; one registered as a sanity check goes to its own table."""
    from dataclasses import replace

    claims = aggregate_claims([_claims(_result(a)) for a in (0.95, 0.96, 0.97)])
    table = "\n".join(render_claims([replace(claims[0], id=4, role="sanity"), replace(claims[1], id=6)]))
    findings, sanity = table.split("Sanity checks (true by construction")
    assert "| 6 | 3 | forms in order |" in findings and "learns the task" not in findings
    assert "| 4 | 2 | learns the task |" in sanity


def test_what_holds_lists_the_findings_by_verdict_and_the_sanity_checks_apart():
    from dataclasses import replace

    claims = aggregate_claims([_claims(_result(a, steps=(2, 1, 3))) for a in (0.95, 0.96, 0.97)])
    text = what_holds([replace(claims[0], id=1), replace(claims[1], id=2), replace(claims[2], id=3, role="sanity")])
    assert "- hold: 1 (2)" in text and "- fail: 2 (3)" in text and "- undecided: none" in text
    assert "0 of 1 hold" in text and "untested: the reference recipe" in text
    assert "not run in this report" not in text  # no study named: nothing to leave out


def test_what_holds_names_the_registered_claims_a_report_left_out():
    """A study's registered claims that the report did not judge are listed as not run, the
    superseded ones and those of studies outside the report not."""
    from dataclasses import replace

    from induction_bigram.claims import registry

    formation = [r for r in registry().values() if r.study == "formation" and r.superseded_by is None]
    judged, left = formation[0], formation[1:]
    claims = aggregate_claims([_claims(_result(a)) for a in (0.95, 0.96, 0.97)])
    line = what_holds([replace(claims[0], id=judged.id)], ["formation"]).splitlines()[-1]
    named = line.split(": ", 1)[1].split(", ")
    assert line.startswith("- registered, not run in this report")
    assert named == [f"{r.id} ({r.section})" for r in left]  # judged.id is not among them


def test_the_idealised_twin_in_words_reads_the_means_over_seeds():
    row = {"n": 3}
    for key, (mean, low, high) in {
        "idealised.paths.in_context_share_through_ffn": (0.0, 0.0, 0.0),
        "paths.in_context_share_through_ffn": (0.95, 0.93, 0.97),
        "idealised.hijack_thresholds.64.measured": (1.0, 1.0, 1.0),
        "idealised.hijack_thresholds.128.measured": (4.0, 3.0, 5.0),
        "hijack_thresholds.128.measured": (3.67, 2.23, 5.1),
    }.items():
        row |= {f"{key}.mean": mean, f"{key}.low": low, f"{key}.high": high}
    words = idealised_in_words({"incontext": {"seeds": [row]}})
    assert "0% [0%, 0%] of layer 2's effect through W_F, against 95% [93%, 97%]" in words
    assert "n* at T = 128 is 4.00 [3.00, 5.00], the trained model's 3.67 [2.23, 5.10]" in words
    assert idealised_in_words({"incontext": {"seeds": [{"n": 3}]}}) == ""  # no twin trained
