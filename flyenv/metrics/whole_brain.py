"""Metrics of whole-brain activity fitting (docs/research_systems.md, whole-brain activity fitting),
on aligned frame arrays.

Every function takes ``pred`` and ``true`` of the same shape, where ``pred[k]`` is the
prediction OF frame ``true[k]`` (not of the frame after it:
the original fitting program compared frame t with
the prediction of t+1, a misalignment these functions cannot make because
:func:`next_frame_pairs` builds the pairs).
"""

from __future__ import annotations

import numpy as np


def rate_bins(max_rate_hz: float, bin_size_hz: float = 0.25, max_firing_rate_hz: float = 100.0):
    """Bin edges: arange(0, ceil(max rate), bin_size) + [max_firing_rate] (the original's)."""
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


def per_neuropil_pearson(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over neuropils of the temporal Pearson correlation (column-wise, over frames).

    The pooled :func:`pearson` is inflated by differences in mean rate between neuropils
    (a constant per-neuropil mean scores ~0.45 on it); this one asks whether each
    neuropil's time course is predicted. A neuropil whose prediction is constant in time
    counts as 0 (it carries no temporal information; the correlation is undefined);
    neuropils whose true rate is constant are left out; nan if every neuropil is."""
    _check(pred, true)
    a = np.asarray(pred, np.float64).reshape(len(pred), -1)
    b = np.asarray(true, np.float64).reshape(len(true), -1)
    varies_a, ok = np.ptp(a, axis=0) > 0, np.ptp(b, axis=0) > 0  # exact constancy
    if not ok.any():
        return float("nan")
    a, b = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    r = np.where(varies_a & ok, (a * b).sum(0) / np.where(den > 0, den, 1.0), 0.0)
    return float(np.mean(r[ok]))


def zero_bin_accuracy(true: np.ndarray, bins: np.ndarray) -> float:
    """Bin accuracy of the all-zero prediction: the reference a bin accuracy must beat
    (every entry of ``true`` below the first bin edge above 0 counts as a hit)."""
    true = np.asarray(true)
    return bin_accuracy(np.zeros_like(true), true, bins)


def next_frame_pairs(rates: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) = (rates[t], rates[t + 1]) for every t in ``frames``."""
    frames = np.asarray(frames)
    if frames.size and (frames.min() < 0 or frames.max() + 1 >= len(rates)):
        raise ValueError("every frame t needs a next frame t+1 inside the recording")
    return rates[frames], rates[frames + 1]


def all_metrics(pred: np.ndarray, true: np.ndarray, bins: np.ndarray) -> dict[str, float]:
    """MSE (Hz^2), bin accuracy beside the all-zero prediction's, pooled and per-neuropil
    temporal Pearson."""
    return {
        "bin_accuracy": bin_accuracy(pred, true, bins),
        "bin_accuracy_all_zero": zero_bin_accuracy(true, bins),
        "mse": mse(pred, true),
        "pearson": pearson(pred, true),
        "pearson_per_neuropil": per_neuropil_pearson(pred, true),
    }


def _check(pred: np.ndarray, true: np.ndarray) -> None:
    if np.shape(pred) != np.shape(true):
        raise ValueError(f"pred and true differ in shape: {np.shape(pred)} vs {np.shape(true)}")
