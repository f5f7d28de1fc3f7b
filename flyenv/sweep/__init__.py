"""``flyenv sweep``: configs x seeds grids run as Ray tasks, gathered into tables with CIs."""

from flyenv.sweep.aggregate import CI_METHOD, bootstrap_ci, summarize
from flyenv.sweep.runner import execute_cell, run_sweep
from flyenv.sweep.spec import Cell, SweepSpec, SweepSpecError, load_sweep_spec, parse_sweep_spec

__all__ = [
    "CI_METHOD",
    "Cell",
    "SweepSpec",
    "SweepSpecError",
    "bootstrap_ci",
    "execute_cell",
    "load_sweep_spec",
    "parse_sweep_spec",
    "run_sweep",
    "summarize",
]
