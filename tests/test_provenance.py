"""A report's provenance (induction_bigram/provenance.py): the report's code and the code each
of its runs was trained by, which differ in a resumed report."""

import os

from induction_bigram.provenance import SOURCE, code_state, provenance, provenance_line

OLD = {"commit": "0" * 40, "dirty": False}


def test_the_code_is_this_checkouts_and_a_file_outside_the_package_is_no_change():
    code = code_state()
    assert code["commit"] is None or (len(code["commit"]) == 40 and isinstance(code["dirty"], bool))
    if code["commit"] is not None and not code["dirty"]:
        scratch = SOURCE / f"provenance-test-{os.getpid()}.txt"  # untracked, not ignored
        try:
            scratch.write_text("a report written into the checkout")
            assert code_state() == code
        finally:
            scratch.unlink()


def test_runs_trained_by_the_reports_own_code_add_nothing_to_its_line():
    record = provenance(seeds=2, wall_seconds=1.0, run_codes=[code_state()] * 4)
    assert record["runs_by_code"] == [{**code_state(), "runs": 4}]
    assert "Its runs" not in provenance_line(record)


def test_a_resumed_reports_runs_are_counted_by_the_code_that_trained_them():
    now = code_state()
    record = provenance(seeds=2, wall_seconds=1.0, run_codes=[OLD, OLD, OLD, now, None])
    assert record["runs_by_code"] == [
        {**OLD, "runs": 3},
        {**now, "runs": 1},
        {"commit": None, "dirty": None, "runs": 1, "unrecorded": True},
    ]
    line = provenance_line(record)
    assert "were trained by commit 000000000000 (3), " in line and line.endswith("code not recorded (1).")
