"""Metrics of whole-brain activity fitting (SPEC section 7), on aligned frame arrays.

Every function takes ``pred`` and ``true`` of the same shape, where ``pred[k]`` is the
prediction OF frame ``true[k]`` (not of the frame after it: the seed compared frame t with
the prediction of t+1, a misalignment these functions cannot make because
:func:`next_frame_pairs` builds the pairs).
"""

from __future__ import annotations

import numpy as np


def rate_bins(max_rate_hz: float, bin_size_hz: float = 0.25, max_firing_rate_hz: float = 100.0):
    """Bin edges: arange(0, ceil(max rate), bin_size) + [max_firing_rate] (the seed's)."""
    if not bin_size_hz > 0:
        raise ValueError(f"bin_size must be > 0, got {bin_size_hz}")
    top = float(np.ceil(max_rate_hz))
    edges = np.arange(0.0, top, bin_size_hz)
    if edges.size == 0 or edges[-1] < max_firing_rate_hz:
        edges = np.append(edges, max_firing_rate_hz)
    return edges


def bin_indices(rates: np.ndarray, bins: np.ndarray) -> np.ndarray:
    return np.digitize(np.asarray(rates), bins, right=False)


def bin_accuracy(pred: np.ndarray, true: np.ndarray, bins: np.ndarray) -> float:
    """Fraction of (frame, neuropil) entries whose predicted rate falls in the true bin."""
    _check(pred, true)
    return float(np.mean(bin_indices(pred, bins) == bin_indices(true, bins)))


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    _check(pred, true)
    return float(np.mean((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) ** 2))


def pearson(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation over all entries (nan if either side is constant)."""
    _check(pred, true)
    a = np.asarray(pred, np.float64).ravel()
    b = np.asarray(true, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def next_frame_pairs(rates: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) = (rates[t], rates[t + 1]) for every t in ``frames``."""
    frames = np.asarray(frames)
    if frames.size and (frames.min() < 0 or frames.max() + 1 >= len(rates)):
        raise ValueError("every frame t needs a next frame t+1 inside the recording")
    return rates[frames], rates[frames + 1]


def all_metrics(pred: np.ndarray, true: np.ndarray, bins: np.ndarray) -> dict[str, float]:
    return {
        "bin_accuracy": bin_accuracy(pred, true, bins),
        "mse": mse(pred, true),
        "pearson": pearson(pred, true),
    }


def _check(pred: np.ndarray, true: np.ndarray) -> None:
    if np.shape(pred) != np.shape(true):
        raise ValueError(f"pred and true differ in shape: {np.shape(pred)} vs {np.shape(true)}")
