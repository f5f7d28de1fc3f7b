"""Braitenberg vehicle for odor taxis: turn toward more attractive, away from aversive odor.

Reads only the odor block of an OdorTaxis observation (channel-major, sensors in
the order L palp, R palp, L antenna, R antenna). Each side's reading is a weighted
mean of its palp and antenna (flygym's example weights palps 1 : antennae 9). The
left-right difference of the log-compressed readings is a log concentration ratio,
so the turn command does not depend on how far away the source is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BraitenbergConfig:
    attractive_gain: float = 80.0
    """Turn per unit of log10 left/right concentration ratio, attractive channel."""
    aversive_gain: float = 80.0
    palp_weight: float = 1.0
    antenna_weight: float = 9.0
    forward_action: float = 0.5
    """Action of both sides when walking straight (0.5 = flygym drive 1.0)."""
    turn_action: float = 1.0
    """Action difference added/subtracted at a saturated turn."""


class BraitenbergPolicy:
    """``policy(obs) -> action`` for OdorTaxis observations with ``odor_channels`` channels."""

    def __init__(self, odor_channels: int, config: BraitenbergConfig | None = None) -> None:
        if odor_channels < 1:
            raise ValueError(f"odor_channels must be >= 1, got {odor_channels}")
        self.odor_channels = odor_channels
        self.config = config or BraitenbergConfig()

    def side_difference(self, obs: np.ndarray, channel: int) -> float:
        """Weighted left-minus-right odor reading of one channel."""
        c = self.config
        palp_l, palp_r, ant_l, ant_r = obs[4 * channel : 4 * channel + 4]
        total = c.palp_weight + c.antenna_weight
        left = (c.palp_weight * palp_l + c.antenna_weight * ant_l) / total
        right = (c.palp_weight * palp_r + c.antenna_weight * ant_r) / total
        return float(left - right)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        expected = 4 * self.odor_channels + 3
        if obs.shape != (expected,):
            raise ValueError(
                f"observation has shape {obs.shape}; expected ({expected},) for "
                f"{self.odor_channels} odor channel(s)"
            )
        c = self.config
        drive = c.attractive_gain * self.side_difference(obs, 0)
        if self.odor_channels > 1:
            drive -= c.aversive_gain * self.side_difference(obs, 1)
        turn = np.tanh(drive)  # > 0: turn left (slow the left legs)
        action = np.array(
            [c.forward_action - c.turn_action * turn, c.forward_action + c.turn_action * turn]
        )
        return np.clip(action, -1.0, 1.0).astype(np.float32)
