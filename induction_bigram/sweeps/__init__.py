"""Sweeps on Ray: any study or training preset over a grid of settings and seeds, with
intervals over seeds (:mod:`.spec` what a sweep is, :mod:`.execute` running it on a local Ray or
a cluster, :mod:`.table` its rows and aggregate, :mod:`.figures` its plot)."""

from induction_bigram.sweeps.execute import run_one, run_sweep, run_sweeps
from induction_bigram.sweeps.spec import SweepRun, SweepSpec, load_spec, parse_grid
from induction_bigram.sweeps.table import SweepTable

__all__ = ["SweepRun", "SweepSpec", "SweepTable", "load_spec", "parse_grid", "run_one", "run_sweep", "run_sweeps"]
