"""Cell functions for tests/sweep/test_sweep.py (importable by Ray workers: the driver's
sys.path travels with each task)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np


def noisy_mean(config: dict, seed: int, run_dir: Path) -> dict:
    """A known answer: the score is ``mu`` plus N(0, sigma) noise drawn from the seed."""
    rng = np.random.default_rng(seed)
    (run_dir / "artifact.txt").write_text(f"{config['name']} {seed}\n")
    calls = run_dir / "calls"
    calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
    x = config["mu"] + config.get("sigma", 1.0) * rng.normal()
    curve_x = [0.0, 1.0, 2.0]
    rows = [{"timesteps": t, "success_rate": x * t / 2} for t in (0, 2, 4)]
    curve = {"x": curve_x, "y": [0.0, x / 2, x]}
    return {"score": x, "info": {"seed": seed}, "curve": curve, "rows": rows}


def killed_once(config: dict, seed: int, run_dir: Path) -> dict:
    """Dies with SIGKILL on its first attempt (a crashed worker), succeeds on the retry."""
    marker = run_dir / "killed_once"
    if not marker.exists():
        marker.write_text("1")
        os.kill(os.getpid(), signal.SIGKILL)
    return {"score": float(seed)}


def always_raises(config: dict, seed: int, run_dir: Path) -> dict:
    if seed == config["bad_seed"]:
        raise RuntimeError(f"seed {seed} diverged")
    return {"score": float(seed)}


def killed_always(config: dict, seed: int, run_dir: Path) -> dict:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
