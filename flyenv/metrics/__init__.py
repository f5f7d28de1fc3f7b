"""Evaluation metrics shared by agents, tests and figures."""

from flyenv.metrics.circular import (
    PVMapQuality,
    circular_mean,
    circular_std,
    pv_map_quality,
    wrap_to_pi,
)

__all__ = ["PVMapQuality", "circular_mean", "circular_std", "pv_map_quality", "wrap_to_pi"]
