"""The one interface a walking task sees of a body.

Two bodies implement it: ``MujocoFly`` (NeuroMechFly in MuJoCo, one fly, float64)
and ``KinematicFly`` (the calibrated torch twin, B flies, float32, differentiable).
Everything is batched: tensors of shape (B, ...) on the body's device.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Body(Protocol):
    num_envs: int
    """B, the number of flies stepped together."""
    failure_reasons: tuple[str, ...]
    """What ``failure()`` can report; code k > 0 means ``failure_reasons[k - 1]``."""

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def xy(self) -> torch.Tensor:
        """(B, 2) thorax position in mm (world frame)."""
        ...

    @property
    def heading(self) -> torch.Tensor:
        """(B,) heading in rad, counter-clockwise from +x."""
        ...

    def reset(
        self,
        xy: torch.Tensor,
        heading: torch.Tensor,
        mask: torch.Tensor | None = None,
        init_phases: np.ndarray | None = None,
    ) -> None:
        """Put the flies in ``mask`` (all if None) at rest at ``xy`` (B, 2) facing ``heading``
        (B,); ``init_phases`` (B, 6) are the CPG phases where the body has a CPG."""
        ...

    def step(self, actions: torch.Tensor, dt_s: float) -> None:
        """Advance every fly by ``dt_s`` under ``actions`` (B, 2) in [-1, 1] (left, right
        descending drive)."""
        ...

    def sensor_positions(self) -> torch.Tensor:
        """(B, 4, 3) world positions of the left/right maxillary palps, then antennae, mm."""
        ...

    def seed(self, seed: int) -> None:
        """Seed the body's own noise, if it has any."""
        ...

    def failure(self) -> torch.Tensor:
        """(B,) long: 0, or k when the last step failed with ``failure_reasons[k - 1]``."""
        ...
