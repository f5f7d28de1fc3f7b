"""The calibrated map from descending drive to body-frame velocities, in torch.

Loads the calibration file made by ``flyenv.bodies.calibrate`` (steady-state
forward speed, lateral speed and turn rate of the MuJoCo fly on a grid of
left/right drives, with their trial-to-trial spread) and interpolates it with
Catmull-Rom bicubic splines: exact at the grid points, continuous first
derivatives, so gradients with respect to the drive are smooth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from flyenv.bodies.calibrate import DEFAULT_CALIBRATION_PATH

MEAN_KEYS = ("forward_speed_mm_s", "lateral_speed_mm_s", "turn_rate_rad_s")
STD_KEYS = ("forward_speed_std_mm_s", "lateral_speed_std_mm_s", "turn_rate_std_rad_s")


@dataclass(frozen=True)
class Calibration:
    """Arrays of one calibration file (numpy)."""

    action_grid: np.ndarray
    mean: np.ndarray
    """(n, n, 3): forward mm/s, leftward mm/s, yaw rad/s; rows = left action."""
    std: np.ndarray
    response_tau_s: float
    startup_delay_s: float
    sensor_offsets_body_mm: np.ndarray
    """(4, 3): L palp, R palp, L antenna, R antenna; x forward, y left, z height."""
    metadata: dict

    @classmethod
    def load(cls, path: str | Path | None = None) -> Calibration:
        path = Path(path) if path is not None else DEFAULT_CALIBRATION_PATH
        if not path.exists():
            raise FileNotFoundError(
                f"calibration file {path} is missing; regenerate it with "
                "`python -m flyenv.bodies.calibrate --out {path}`"
            )
        with np.load(path) as z:
            return cls(
                action_grid=z["action_grid"],
                mean=np.stack([z[k] for k in MEAN_KEYS], axis=-1),
                std=np.stack([z[k] for k in STD_KEYS], axis=-1),
                response_tau_s=float(z["response_tau_s"]),
                startup_delay_s=float(z["startup_delay_s"]),
                sensor_offsets_body_mm=z["sensor_offsets_body_mm"],
                metadata=json.loads(str(z["metadata"])),
            )


def _catmull_rom_weights(t: torch.Tensor) -> torch.Tensor:
    """(B,) fractions -> (B, 4) weights of the 4 neighbouring knots."""
    t2, t3 = t * t, t * t * t
    return 0.5 * torch.stack(
        [-t + 2 * t2 - t3, 2 - 5 * t2 + 3 * t3, t + 4 * t2 - 3 * t3, -t2 + t3], dim=-1
    )


def _pad_linear(table: np.ndarray) -> np.ndarray:
    """Add one ghost row/column on each side by linear extrapolation."""
    t = np.concatenate([2 * table[:1] - table[1:2], table, 2 * table[-1:] - table[-2:-1]], axis=0)
    return np.concatenate([2 * t[:, :1] - t[:, 1:2], t, 2 * t[:, -1:] - t[:, -2:-1]], axis=1)


class DriveMap(torch.nn.Module):
    """``(B, 2)`` actions in [-1, 1] -> ``(B, 3)`` steady-state (forward, left, yaw) rates.

    ``std(actions)`` gives the calibrated trial-to-trial spread the same way.
    """

    def __init__(self, calibration: Calibration | None = None) -> None:
        super().__init__()
        cal = calibration or Calibration.load()
        grid = cal.action_grid
        spacing = np.diff(grid)
        if len(grid) < 4 or not np.allclose(spacing, spacing[0]):
            raise ValueError("the calibration grid must be regular with at least 4 points per side")
        self.lo = float(grid[0])
        self.step = float(spacing[0])
        self.n = len(grid)
        table = np.concatenate([cal.mean, cal.std], axis=-1)  # (n, n, 6)
        self.register_buffer("table", torch.as_tensor(_pad_linear(table), dtype=torch.float32))

    def _interpolate(self, actions: torch.Tensor) -> torch.Tensor:
        a = actions.clamp(self.lo, self.lo + self.step * (self.n - 1))
        u = (a - self.lo) / self.step
        i = u.detach().floor().clamp(0, self.n - 2)
        frac = u - i
        i = i.long()
        wx = _catmull_rom_weights(frac[:, 0])  # (B, 4)
        wy = _catmull_rom_weights(frac[:, 1])
        offs = torch.arange(4, device=actions.device)
        rows = i[:, 0:1] + offs  # padded index of knot i-1 is i
        cols = i[:, 1:2] + offs
        patch = self.table[rows[:, :, None], cols[:, None, :]]  # (B, 4, 4, 6)
        return torch.einsum("bi,bj,bijc->bc", wx, wy, patch)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        return self._interpolate(actions)[:, :3]

    def std(self, actions: torch.Tensor) -> torch.Tensor:
        return self._interpolate(actions)[:, 3:].clamp_min(0.0)
