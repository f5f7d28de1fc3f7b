"""Topography index of a feed-forward weight matrix onto a ring (lateral-line MON -> TS).

Each presynaptic cell i has a preferred angle (by default its place along the line,
2 pi i / n_pre: LL->MON is wired topographically by index) and each postsynaptic
(TS) cell k its ring angle phi_k = 2 pi k / n_post, the angle the population-vector
decoder assigns it. For every TS cell the weight-weighted circular mean of its inputs'
preferred angles is its *input centre*; the topography index is the Fisher-Lee circular
correlation between input centres and ring angles over TS cells. A perfect map gives
~1, a random matrix or a map whose rows are shuffled among TS cells ~0 (a mirrored map
gives -1). Fisher-Lee is used, not Jammalamadaka-SenGupta, because ring angles are
uniform on the circle, where the latter's circular means are undefined; Fisher-Lee is
invariant to a rotation of either variable.

``local_order`` is the mean cosine of the difference between the input centres of
neighbouring TS cells (k, k+1): ~1 when neighbours share inputs from neighbouring places
(a map, in any orientation, also one folded or wound several times around the ring), ~0
for a random matrix. With the index it separates "no map" (both ~0) from "a map whose
global layout does not follow the ring" (order high, index low or negative).

The profile is the mean synaptic weight against the ring distance (in TS cells) between
a synapse's target and the TS position of its source's preferred angle: a learned or
wired map has more weight at short distance.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fisher_lee_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Fisher & Lee (1983) circular-circular correlation in [-1, 1] (nan for < 2 samples)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length, got {a.shape} and {b.shape}")
    n = a.size
    if n < 2:
        return float("nan")
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    num = 4.0 * (np.sum(ca * cb) * np.sum(sa * sb) - np.sum(ca * sb) * np.sum(sa * cb))
    den_a = n**2 - np.sum(np.cos(2 * a)) ** 2 - np.sum(np.sin(2 * a)) ** 2
    den_b = n**2 - np.sum(np.cos(2 * b)) ** 2 - np.sum(np.sin(2 * b)) ** 2
    den = np.sqrt(max(den_a, 0.0) * max(den_b, 0.0))
    return float(num / den) if den > 1e-12 else float("nan")


def topography_index(
    weights: np.ndarray,
    pre_angle_rad: np.ndarray | None = None,
    n_distance_bins: int = 30,
) -> dict[str, Any]:
    """Topography of a dense (n_pre, n_post) non-negative weight matrix onto a ring.

    Returns ``index`` (Fisher-Lee correlation of input centres with ring angles),
    ``local_order`` (mean cos of neighbouring centres' difference), ``alignment`` (mean resultant length of centre - ring angle: 1 when the centres
    follow the ring up to a constant offset), ``centre_rad`` (n_post, nan for a TS cell
    without input), and the profile ``profile_distance_cells`` / ``profile_mean_weight``
    (mean weight of the nonzero-capable entries, i.e. all entries, per ring-distance bin,
    divided by the overall mean so 1 = no preference).
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or min(w.shape) < 1:
        raise ValueError(f"weights must be a 2-D (n_pre, n_post) matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0 (a weight matrix, not a difference)")
    n_pre, n_post = w.shape
    if pre_angle_rad is None:
        pre = 2.0 * np.pi * np.arange(n_pre) / n_pre
    else:
        pre = np.asarray(pre_angle_rad, dtype=float)
        if pre.shape != (n_pre,):
            raise ValueError(f"pre_angle_rad must have shape ({n_pre},), got {pre.shape}")
    ring = 2.0 * np.pi * np.arange(n_post) / n_post
    z = np.exp(1j * pre) @ w  # (n_post,) weighted resultant of input angles
    has = w.sum(axis=0) > 0
    centre = np.full(n_post, np.nan)
    centre[has] = np.mod(np.angle(z[has]), 2.0 * np.pi)
    index = fisher_lee_correlation(centre[has], ring[has]) if has.sum() >= 2 else float("nan")
    alignment = float(np.abs(np.mean(np.exp(1j * (centre[has] - ring[has]))))) if has.any() else 0.0
    c = centre[has]  # neighbours along the chain of TS cells that have input
    local_order = float(np.mean(np.cos(np.diff(c)))) if c.size >= 2 else float("nan")

    # Ring distance (TS cells) between each target and the source's preferred TS place.
    d = np.angle(np.exp(1j * (ring[None, :] - pre[:, None]))) * n_post / (2.0 * np.pi)
    d = np.abs(d)
    edges = np.linspace(0.0, n_post / 2.0, n_distance_bins + 1)
    which = np.clip(np.digitize(d, edges) - 1, 0, n_distance_bins - 1)
    total = np.bincount(which.ravel(), w.ravel(), minlength=n_distance_bins)
    count = np.bincount(which.ravel(), minlength=n_distance_bins)
    mean_w = w.mean()
    prof = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    prof = prof / mean_w if mean_w > 0 else prof
    return {
        "index": index,
        "alignment": alignment,
        "local_order": local_order,
        "centre_rad": centre,
        "profile_distance_cells": 0.5 * (edges[:-1] + edges[1:]),
        "profile_mean_weight": prof,
    }


def topography_summary(weights: np.ndarray, n_distance_bins: int = 10) -> dict[str, Any]:
    """JSON-ready scalars and the coarse profile of :func:`topography_index`."""
    t = topography_index(weights, n_distance_bins=n_distance_bins)
    return {
        "index": float(t["index"]),
        "alignment": float(t["alignment"]),
        "local_order": float(t["local_order"]),
        "profile_distance_cells": [float(v) for v in t["profile_distance_cells"]],
        "profile_relative_weight": [float(v) for v in t["profile_mean_weight"]],
    }
