# moved from tests/test_calibration_transfer.py
"""Calibration of the twin from MuJoCo, and the twin-vs-MuJoCo transfer check."""

import json

import numpy as np

from flyenv.bodies.calibrate import main as calibrate_main
from flyenv.bodies.drive_map import Calibration
from flyenv.bodies.transfer import compare_twin_to_mujoco


def test_shipped_calibration_is_complete_and_plausible():
    cal = Calibration.load()
    assert cal.mean.shape == (9, 9, 3) and np.isfinite(cal.mean).all()
    fwd, turn = cal.mean[..., 0], cal.mean[..., 2]
    # Equal drives walk straight; more drive walks faster.
    assert abs(turn[8, 8]) < 0.5 and fwd[8, 8] > fwd[4, 4] > 0
    # Left stronger than right turns clockwise and vice versa (antisymmetric).
    assert turn[8, 4] < -2 and turn[4, 8] > 2
    # Antennae sit ahead of the palps, left sensors on the left (+y).
    off = cal.sensor_offsets_body_mm
    assert off[2, 0] > off[0, 0] > 0 and off[0, 1] > 0 > off[1, 1] and off[2, 1] > off[3, 1]
    assert 0.005 <= cal.response_tau_s <= 0.1
    assert "command" in cal.metadata


def test_calibration_script_writes_a_loadable_file(tmp_path):
    out = tmp_path / "cal.npz"
    calibrate_main(
        [
            "--grid",
            "4",
            "--seeds",
            "1",
            "--trial-s",
            "0.12",
            "--transient-s",
            "0.05",
            "--workers",
            "1",
            "--identify-sequences",
            "0",
            "--out",
            str(out),
        ]
    )
    cal = Calibration.load(out)
    assert cal.mean.shape == (4, 4, 3) and np.isfinite(cal.mean).all()
    assert json.loads(json.dumps(cal.metadata))["config"]["grid_points"] == 4


def test_twin_reproduces_mujoco_under_random_drives():
    """The issue's transfer criterion: 10 random 1 s drive sequences (new drive every
    100 ms, uniform over the whole action range), held out from the lag identification."""
    result = compare_twin_to_mujoco(n_sequences=10, duration_s=1.0, seed=0)
    summary = result.summary()
    print(summary)
    assert summary["median_path_length_mm"] > 5.0  # the fly really walked
    assert summary["median_relative_error"] < 0.15
    assert summary["median_heading_error_deg"] < 20.0
