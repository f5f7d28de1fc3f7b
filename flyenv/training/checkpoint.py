"""Atomic, resumable checkpoints for torch training runs."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flyenv.io import atomic_write


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (global state, for exact resume)
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with torch.save to a temp file, then rename: a killed run never
    leaves a truncated checkpoint."""

    def write(tmp: Path) -> None:
        torch.save(payload, tmp)

    return atomic_write(path, write)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; train first or pass the right path"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for damaged files
        raise ValueError(
            f"checkpoint {path} is unreadable ({exc}); delete it or restore a good copy"
        ) from exc
