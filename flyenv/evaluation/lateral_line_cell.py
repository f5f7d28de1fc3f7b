"""Sweep cell: one lateral-line training + test run, STDP on or off.

``lateral_line_cell(config, seed, run_dir)`` builds the preset ``config["preset"]``
(``ll_thesis``, ``ll_learned`` or ``ll_fast``), applies ``config["overrides"]`` (any
``NetworkParams`` field, e.g. a reduced ``n_training_trials``), and with
``config["plasticity"] = "none"`` zeroes every STDP increment and the homeostatic scaling
(no weight changes at all: the no-plasticity control, same wiring, initial weights and
seeded inputs as the STDP run). It returns the PV map quality over
``n_test_sweeps`` test sweeps and the MON->TS topography index before and after training.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import fields, replace
from typing import Any

from flyenv.brains.lateral_line.params import MODES, NO_PLASTICITY, NetworkParams, apply_model_mode

PLASTICITY = ("stdp", "none")


def cell_params(config: dict[str, Any], seed: int) -> NetworkParams:
    """NetworkParams of one cell (preset, overrides, plasticity switch, seed)."""
    preset = config.get("preset")
    if preset not in MODES:
        raise ValueError(f"config['preset'] must be one of {', '.join(MODES)}, got {preset!r}")
    plasticity = config.get("plasticity", "stdp")
    if plasticity not in PLASTICITY:
        raise ValueError(
            f"config['plasticity'] must be one of {', '.join(PLASTICITY)}, got {plasticity!r}"
        )
    over = dict(config.get("overrides", {}))
    known = {f.name for f in fields(NetworkParams)}
    bad = sorted(set(over) - known)
    if bad:
        raise ValueError(f"unknown NetworkParams field(s) in config['overrides']: {bad}")
    p = replace(apply_model_mode(NetworkParams(), preset), **over, seed=int(seed))
    if plasticity == "none":
        p = replace(p, **NO_PLASTICITY)  # as the agent's --disable-all-plasticity
    return p


def lateral_line_cell(config: dict[str, Any], seed: int, run_dir: pathlib.Path) -> dict[str, Any]:
    """Train + test one network; writes ``run_summary.json`` into ``run_dir``."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is not needed here; only keep other cells single-threaded
        pass
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from flyenv.training.lateral_line_stdp import run_seed

    p = cell_params(config, seed)
    r = run_seed(p, progress=False)
    out = {
        "sigma_theta": float(r["pv_sigma_theta"]),
        "delta_trial": float(r["pv_delta_trial"]),
        "valid_fraction": float(r["pv_valid_fraction"]),
        "topography_before": float(r["topography_before"]["index"]),
        "topography_after": float(r["topography_after"]["index"]),
        "topography_change": float(
            r["topography_after"]["index"] - r["topography_before"]["index"]
        ),
        "sigma_theta_mirrored": float(r["pv_sigma_theta_mirrored"]),
        # Decoder direction taken from the learned weights (sign of the topography index),
        # not from the test: the error of the map if the readout knew which way it runs.
        "sigma_theta_oriented": float(
            r["pv_sigma_theta"]
            if not r["topography_after"]["index"] < 0
            else r["pv_sigma_theta_mirrored"]
        ),
        "local_order_before": float(r["topography_before"]["local_order"]),
        "local_order_after": float(r["topography_after"]["local_order"]),
        "ts_test_rate_hz": float(
            r["ts_spikes_during_test_window"] / (p.n_ts * p.n_test_sweeps * r["test_duration_s"])
        ),
        "n_training_trials": int(p.n_training_trials),
        "n_test_sweeps": int(p.n_test_sweeps),
        "wall_s": float(r["wall_s"]),
    }
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run_summary.json").write_text(
        json.dumps(
            {
                **out,
                "config": config,
                "seed": int(seed),
                "topography_before_profile": r["topography_before"],
                "topography_after_profile": r["topography_after"],
            },
            indent=2,
        )
    )
    return out
