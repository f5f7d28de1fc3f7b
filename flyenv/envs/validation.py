"""Checks shared by every flyenv environment: bad input fails loudly, with the fix."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


def validate_box_action(action, space: spaces.Box, env_name: str) -> np.ndarray:
    """Return ``action`` as a float array of the space's shape, clipped to its bounds.

    Raises:
        ValueError: wrong shape, non-numeric, NaN or infinite entries.
    """
    try:
        arr = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{env_name}: action must be numeric with shape {space.shape}, got {action!r}"
        ) from exc
    if arr.shape != space.shape:
        raise ValueError(
            f"{env_name}: action has shape {arr.shape}, expected {space.shape}; "
            f"pass one value per action dimension (e.g. env.action_space.sample())"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{env_name}: action contains NaN or inf ({arr.tolist()}); "
            "check the policy's output (exploding weights or a division by zero)"
        )
    return np.clip(arr, space.low, space.high)
