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
    """Time constant of each of the two cascaded lags from drive to velocity."""
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
                sensor_offsets_body_mm=z["sensor_offsets_body_mm"],
                metadata=json.loads(str(z["metadata"])),
            )


# Catmull-Rom basis: the weights of the 4 knots around a cell are B^T [1, t, t^2, t^3].
_CATMULL_ROM = 0.5 * np.array(
    [[0, 2, 0, 0], [-1, 0, 1, 0], [2, -5, 4, -1], [-1, 3, -3, 1]], dtype=np.float64
)


def _pad_linear(table: np.ndarray) -> np.ndarray:
    """Add one ghost row/column on each side by linear extrapolation."""
    t = np.concatenate([2 * table[:1] - table[1:2], table, 2 * table[-1:] - table[-2:-1]], axis=0)
    return np.concatenate([2 * t[:, :1] - t[:, 1:2], t, 2 * t[:, -1:] - t[:, -2:-1]], axis=1)


def _cell_polynomials(table: np.ndarray) -> np.ndarray:
    """(n, n, C) knot values -> ((n-1)^2, C, 16) bicubic coefficients per cell.

    In cell (i, j) with fractions (t, s): value = sum_pq A[p, q] t^p s^q with
    A = B^T P B, P the 4x4 knots around the cell (ghost knots at the border).
    """
    padded = _pad_linear(table)
    n = table.shape[0]
    coefs = np.empty(((n - 1) ** 2, table.shape[2], 16))
    for i in range(n - 1):
        for j in range(n - 1):
            patch = padded[i : i + 4, j : j + 4]  # (4, 4, C); padded index i is knot i-1
            a = np.einsum("pk,klc,ql->cpq", _CATMULL_ROM, patch, _CATMULL_ROM)
            coefs[i * (n - 1) + j] = a.reshape(table.shape[2], 16)
    return coefs


class DriveMap(torch.nn.Module):
    """``(B, 2)`` actions in [-1, 1] -> ``(B, 3)`` steady-state (forward, left, yaw) rates.

    ``std(actions)`` gives the calibrated trial-to-trial spread the same way. Each
    grid cell stores its bicubic polynomial, so a query is one row gather and one
    small matrix product (fast for thousands of flies).
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
        self.register_buffer(
            "mean_coefs", torch.as_tensor(_cell_polynomials(cal.mean), dtype=torch.float32)
        )
        self.register_buffer(
            "std_coefs", torch.as_tensor(_cell_polynomials(cal.std), dtype=torch.float32)
        )

    def _evaluate(self, coefs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        a = actions.clamp(self.lo, self.lo + self.step * (self.n - 1))
        u = (a - self.lo) / self.step
        cell = u.detach().floor().clamp(0, self.n - 2)
        frac = (u - cell).to(coefs.dtype)
        cell = cell.long()
        rows = coefs.index_select(0, cell[:, 0] * (self.n - 1) + cell[:, 1])  # (B, C, 16)
        powers = torch.arange(4, device=actions.device, dtype=coefs.dtype)
        tp = frac[:, 0:1] ** powers  # (B, 4)
        sp = frac[:, 1:2] ** powers
        mono = (tp[:, :, None] * sp[:, None, :]).reshape(-1, 16, 1)
        return torch.bmm(rows, mono).squeeze(-1)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        return self._evaluate(self.mean_coefs, actions)

    def std(self, actions: torch.Tensor) -> torch.Tensor:
        return self._evaluate(self.std_coefs, actions).clamp_min(0.0)
