"""Wiring of the LL -> MON -> TS network: topographic targets, lateral kernels, synapse lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flyenv.brains.lateral_line.params import NetworkParams


def mixed_topographic_targets(
    n_src: int,
    n_dst: int,
    degree: int,
    sigma: float,
    topography_strength: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n_src, degree) partner indices: a fraction drawn near the source's relative
    position (Gaussian, clipped at the ends), the rest uniformly at random."""
    topo = float(np.clip(topography_strength, 0.0, 1.0))
    n_topo = int(round(degree * topo))
    centers = np.linspace(0.0, 1.0, n_src)[:, None] * (n_dst - 1)
    parts = []
    if n_topo > 0:
        if sigma >= n_dst:
            parts.append(rng.integers(0, n_dst, size=(n_src, n_topo)))
        else:
            raw = rng.normal(centers, sigma, size=(n_src, n_topo))
            parts.append(np.clip(np.rint(raw), 0, n_dst - 1).astype(np.int64))
    if degree - n_topo > 0:
        parts.append(rng.integers(0, n_dst, size=(n_src, degree - n_topo)))
    return rng.permuted(np.concatenate(parts, axis=1), axis=1)


def _index_distance(n: int, periodic: bool) -> np.ndarray:
    """(n, n) distance between cell indices: around the ring, or along an open chain."""
    idx = np.arange(n)
    d = np.abs(idx[:, None] - idx[None, :])
    return np.minimum(d, n - d) if periodic else d


def ring_inhibition_kernel_mV(
    n: int, radius: int, peak_mV: float, periodic: bool = True
) -> np.ndarray:
    """Dense (src, dst) triangular lateral inhibition on a ring (``periodic``) or on an
    open chain of cells, no self-connection."""
    d = _index_distance(n, periodic)
    r = max(int(radius), 1)
    k = peak_mV * (1.0 - d / r)
    k[(d > r) | (d == 0)] = 0.0
    return k.astype(np.float32)


def ts_lateral_kernel_mV(
    n: int,
    radius: int,
    inh_peak_mV: float,
    exc_peak_mV: float,
    exc_sigma: float,
    periodic: bool = True,
) -> np.ndarray:
    """Signed (src, dst) TS-TS kernel in mV of inhibition: the triangular ring
    inhibition minus a Gaussian short-range excitation exc_peak * exp(-d^2 / 2 sigma^2)
    (ring distance d >= 1, no self-connection). Negative entries are excitatory; with
    exc_peak 0 this is exactly :func:`ring_inhibition_kernel_mV`. ``periodic=False``
    measures distance along an open chain (no interaction across the ends)."""
    k = ring_inhibition_kernel_mV(n, radius, inh_peak_mV, periodic).astype(np.float64)
    if exc_peak_mV != 0.0:
        if not exc_sigma > 0:
            raise ValueError(f"ts_lateral_exc_sigma must be > 0, got {exc_sigma}")
        d = _index_distance(n, periodic)
        exc = exc_peak_mV * np.exp(-0.5 * (d / exc_sigma) ** 2)
        exc[d == 0] = 0.0
        k -= exc
    return k.astype(np.float32)


@dataclass
class Connectivity:
    """Synapse lists (as saved in artifacts) and their dense pair matrices."""

    ll_mon_i: np.ndarray
    ll_mon_j: np.ndarray
    mon_ts_i: np.ndarray
    mon_ts_j: np.ndarray
    ll_mon_mult: np.ndarray  # (n_ll, n_mon) synapse count per pair
    mon_ts_mult: np.ndarray  # (n_mon, n_ts)
    mon_to_inh: np.ndarray  # bool (n_mon,)
    ts_to_inh: np.ndarray  # bool (n_ts,)
    ts_lateral_mV: np.ndarray  # (n_ts, n_ts)


def build_connectivity(p: NetworkParams) -> Connectivity:
    if p.ll_to_mon_topography_strength <= 0.0:
        mask = np.random.default_rng([p.seed, 31]).random((p.n_ll, p.n_mon)) < p.p_ll_to_mon
        ll_i, ll_j = np.nonzero(mask)
    else:
        src = mixed_topographic_targets(
            p.n_mon,
            p.n_ll,
            p.ll_to_mon_in_degree,
            p.ll_to_mon_sigma,
            p.ll_to_mon_topography_strength,
            np.random.default_rng([p.seed, 31]),
        )
        ll_i = src.ravel()
        ll_j = np.repeat(np.arange(p.n_mon), p.ll_to_mon_in_degree)
    dst = mixed_topographic_targets(
        p.n_mon,
        p.n_ts,
        p.mon_to_ts_out_degree,
        p.mon_to_ts_sigma,
        p.mon_to_ts_topography_strength,
        np.random.default_rng([p.seed, 0]),
    )
    mt_i = np.repeat(np.arange(p.n_mon), p.mon_to_ts_out_degree)
    mt_j = dst.ravel()
    ll_mult = np.zeros((p.n_ll, p.n_mon), np.float32)
    np.add.at(ll_mult, (ll_i, ll_j), 1.0)
    mt_mult = np.zeros((p.n_mon, p.n_ts), np.float32)
    np.add.at(mt_mult, (mt_i, mt_j), 1.0)
    rng = np.random.default_rng([p.seed, 41])
    return Connectivity(
        ll_mon_i=ll_i.astype(np.int64),
        ll_mon_j=ll_j.astype(np.int64),
        mon_ts_i=mt_i.astype(np.int64),
        mon_ts_j=mt_j.astype(np.int64),
        ll_mon_mult=ll_mult,
        mon_ts_mult=mt_mult,
        mon_to_inh=rng.random(p.n_mon) < p.mon_to_global_inh_p,
        ts_to_inh=rng.random(p.n_ts) < float(np.clip(p.ts_to_global_inh_p, 0.0, 1.0)),
        ts_lateral_mV=ts_lateral_kernel_mV(
            p.n_ts,
            p.ts_lateral_radius,
            p.ts_local_inh_peak_mV,
            p.ts_lateral_exc_peak_mV,
            p.ts_lateral_exc_sigma,
            p.ts_lateral_periodic,
        ),
    )
