"""How well the kinematic twin reproduces the MuJoCo fly under the same drives.

Both bodies start at rest at the origin facing +x with the same CPG phases (MuJoCo)
and receive the same piecewise-constant action sequence. Reported per sequence:
the MuJoCo path length, the distance between the two final positions, and the
final heading difference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402


@dataclass
class TransferResult:
    path_length_mm: np.ndarray  # (n,)
    final_error_mm: np.ndarray  # (n,)
    heading_error_deg: np.ndarray  # (n,)
    mujoco_xy: np.ndarray  # (n, T + 1, 2)
    twin_xy: np.ndarray  # (n, T + 1, 2)

    @property
    def relative_error(self) -> np.ndarray:
        return self.final_error_mm / np.maximum(self.path_length_mm, 1e-9)

    def summary(self) -> dict[str, float]:
        return {
            "median_final_error_mm": float(np.median(self.final_error_mm)),
            "median_relative_error": float(np.median(self.relative_error)),
            "median_heading_error_deg": float(np.median(self.heading_error_deg)),
            "median_path_length_mm": float(np.median(self.path_length_mm)),
        }


def random_action_sequences(
    n: int, duration_s: float, segment_s: float, dt_s: float, seed: int
) -> np.ndarray:
    """(n, T, 2) actions uniform in [-1, 1]^2, held for ``segment_s`` at a time."""
    rng = np.random.default_rng(seed)
    steps = int(round(duration_s / dt_s))
    per_segment = int(round(segment_s / dt_s))
    segments = rng.uniform(-1.0, 1.0, size=(n, int(np.ceil(steps / per_segment)), 2))
    return np.repeat(segments, per_segment, axis=1)[:, :steps]


def compare_twin_to_mujoco(
    n_sequences: int = 10,
    duration_s: float = 1.0,
    segment_s: float = 0.1,
    control_period_s: float = 0.01,
    seed: int = 0,
    calibration_path: str | None = None,
    progress: bool = False,
) -> TransferResult:
    from flygym.arena import OdorArena
    from tqdm import tqdm

    from flyenv.bodies.hybrid_turning import action_to_drive
    from flyenv.bodies.kinematic_fly import KinematicFly, KinematicFlyConfig
    from flyenv.bodies.mujoco_fly import MujocoFly

    actions = random_action_sequences(n_sequences, duration_s, segment_s, control_period_s, seed)
    T = actions.shape[1]
    phases = np.random.default_rng(seed + 1).uniform(0, 2 * np.pi, (n_sequences, 6))
    body = MujocoFly(OdorArena())
    steps = int(round(control_period_s / body.config.timestep_s))
    mj_xy = np.zeros((n_sequences, T + 1, 2))
    mj_heading = np.zeros(n_sequences)
    for i in tqdm(range(n_sequences), desc="MuJoCo sequences", disable=not progress):
        body.reset_pose(phases[i], heading_rad=0.0)
        mj_xy[i, 0] = body.thorax_position[:2]
        for t in range(T):
            body.step_drive(action_to_drive(actions[i, t]), steps)
            mj_xy[i, t + 1] = body.thorax_position[:2]
        mj_heading[i] = body.heading_rad

    twin = KinematicFly(
        n_sequences, KinematicFlyConfig(calibration_path=calibration_path), dtype=torch.float64
    )
    start = torch.as_tensor(mj_xy[:, 0], dtype=torch.float64)
    twin.reset(start, torch.zeros(n_sequences, dtype=torch.float64))
    tw_xy = np.zeros_like(mj_xy)
    tw_xy[:, 0] = mj_xy[:, 0]
    with torch.no_grad():
        acts = torch.as_tensor(actions, dtype=torch.float64)
        for t in range(T):
            twin.step(acts[:, t], control_period_s)
            tw_xy[:, t + 1] = twin.xy.numpy()
    path = np.linalg.norm(np.diff(mj_xy, axis=1), axis=2).sum(axis=1)
    err = np.linalg.norm(tw_xy[:, -1] - mj_xy[:, -1], axis=1)
    dh = np.angle(np.exp(1j * (twin.heading.numpy() - mj_heading)))
    return TransferResult(path, err, np.rad2deg(np.abs(dh)), mj_xy, tw_xy)
