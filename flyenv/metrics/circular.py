"""Population-vector map quality of a ring of cells (docs/research_systems.md, lateral line).

Cell k of n has preferred angle phi_k = 2 pi k / n. Spikes are binned at dt
(1 ms), box-smoothed over 20 ms, and decoded as theta_hat = arg(sum_k r_k e^{i phi_k}).
The true angle maps the stimulus position linearly onto [0, 2 pi). With the error
delta = wrap(theta_hat - theta_true), positions are split into bins; per bin the
circular mean of delta (all sweeps pooled) is the bias. Then

- sigma_theta = Mardia circular std of the per-bin biases (somatotopic error),
- delta_trial = sqrt(mean over bins of the per-bin circular variance 1 - R of the
  de-biased errors). With ``sweep_index`` (several test sweeps) the samples of a bin are
  the per-sweep circular means of its errors, so this is trial-to-trial (across-sweep)
  variability; without it, a single sweep's time steps in the bin are the samples,
- valid_fraction = fraction of time steps inside the evaluation window (all of them
  without a window) with a defined decoded angle (some activity after smoothing).

A perfect map gives sigma_theta near 0; a random one about pi/2 or more. Mardia's
circular std is sqrt(-2 ln R), R the mean resultant length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import convolve


def wrap_to_pi(x: np.ndarray) -> np.ndarray:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(x) + np.pi) % (2.0 * np.pi) - np.pi


def circular_mean(x: np.ndarray) -> float:
    """Direction of the mean resultant vector (nan for no samples)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return float("nan")
    return float(np.arctan2(np.mean(np.sin(x)), np.mean(np.cos(x))))


def circular_variance(x: np.ndarray) -> float:
    """Circular variance 1 - R, R the mean resultant length (nan for no samples)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return float("nan")
    return float(1.0 - np.hypot(np.mean(np.cos(x)), np.mean(np.sin(x))))


def circular_std(x: np.ndarray) -> float:
    """Mardia circular standard deviation sqrt(-2 ln R) (nan for no samples)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return float("nan")
    r = np.hypot(np.mean(np.cos(x)), np.mean(np.sin(x)))
    return float(np.sqrt(-2.0 * np.log(np.clip(r, 1e-12, 1.0))))


@dataclass(frozen=True)
class PVMapQuality:
    """Per-time-step decoding and the three scalar map-quality numbers."""

    theta_true: np.ndarray
    theta_hat: np.ndarray
    delta_theta: np.ndarray
    theta_bins: np.ndarray
    bias_theta: np.ndarray
    sigma_trial_theta: np.ndarray
    sigma_theta: float
    delta_trial: float
    valid_fraction: float


def _box_smooth(rates: np.ndarray, width: int) -> np.ndarray:
    """Centered moving average along time with zero padding (np.convolve 'same')."""
    if width <= 1 or rates.shape[0] == 0:
        return rates
    kernel = np.full((width, 1), 1.0 / width)
    return convolve(rates, kernel, mode="same", method="direct" if rates.shape[0] < 64 else "auto")


def pv_map_quality(
    spike_counts: np.ndarray,
    x_cm: np.ndarray,
    dt_s: float = 0.001,
    n_pos_bins: int = 100,
    smooth_s: float = 0.02,
    eval_x_min_cm: float | None = None,
    eval_x_max_cm: float | None = None,
    sweep_index: np.ndarray | None = None,
) -> PVMapQuality:
    """Population-vector map quality of a ring population.

    spike_counts: (T, n_cells) spikes per time bin of ``dt_s`` (cell order = ring order).
    x_cm: (T,) stimulus position at each time bin.
    eval_x_min_cm / eval_x_max_cm: optional window; outside it activity is zeroed and
    theta_true maps the window (not the whole trace) onto [0, 2 pi).
    sweep_index: optional (T,) integer label of the test sweep each time bin belongs to
    (several sweeps concatenated); delta_trial is then the across-sweep variability.
    Smoothing runs within each sweep (no leakage across a sweep boundary).
    """
    counts = np.asarray(spike_counts, dtype=float)
    x = np.asarray(x_cm, dtype=float)
    if counts.ndim != 2:
        raise ValueError(f"spike_counts must be 2-D (time, cells), got shape {counts.shape}")
    if x.shape != (counts.shape[0],):
        raise ValueError(
            f"x_cm must have shape ({counts.shape[0]},) to match spike_counts, got {x.shape}"
        )
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    if n_pos_bins < 1:
        raise ValueError(f"n_pos_bins must be >= 1, got {n_pos_bins}")
    if (eval_x_min_cm is None) != (eval_x_max_cm is None):
        raise ValueError("eval_x_min_cm and eval_x_max_cm must be given together")
    if eval_x_min_cm is not None and not eval_x_max_cm > eval_x_min_cm:
        raise ValueError("eval_x_max_cm must be greater than eval_x_min_cm")
    if sweep_index is not None:
        sweep_index = np.asarray(sweep_index)
        if sweep_index.shape != x.shape or not np.issubdtype(sweep_index.dtype, np.integer):
            raise ValueError(
                f"sweep_index must be an integer array of shape {x.shape} (one sweep label "
                f"per time bin), got {sweep_index.dtype} {sweep_index.shape}"
            )

    n_t, n_cells = counts.shape
    rates = counts / dt_s
    use_win = eval_x_min_cm is not None
    if use_win:
        ok = (x >= eval_x_min_cm) & (x <= eval_x_max_cm)
        rates[~ok] = 0.0
    else:
        ok = np.ones(n_t, dtype=bool)
    width = max(1, int(round(smooth_s / dt_s)))
    if sweep_index is None:
        rates = _box_smooth(rates, width)
    else:
        for sw in np.unique(sweep_index):
            sel = sweep_index == sw
            rates[sel] = _box_smooth(rates[sel], width)

    phi = 2.0 * np.pi * np.arange(n_cells) / max(n_cells, 1)
    total = rates.sum(axis=1)
    active = total > 1e-12
    theta_hat = np.full(n_t, np.nan)
    if np.any(active):
        z = rates[active] @ np.exp(1j * phi)
        theta_hat[active] = np.mod(np.angle(z), 2.0 * np.pi)

    theta_true = np.full(n_t, np.nan)
    if use_win:
        theta_true[ok] = 2.0 * np.pi * (x[ok] - eval_x_min_cm) / (eval_x_max_cm - eval_x_min_cm)
    elif n_t:
        theta_true[:] = 2.0 * np.pi * (x - x.min()) / (np.ptp(x) + 1e-12)

    delta = np.full(n_t, np.nan)
    m = np.isfinite(theta_hat) & np.isfinite(theta_true)
    delta[m] = wrap_to_pi(theta_hat[m] - theta_true[m])

    edges = np.linspace(0.0, 2.0 * np.pi, n_pos_bins + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    bias = np.full(n_pos_bins, np.nan)
    sigma_trial = np.full(n_pos_bins, np.nan)
    bin_of = np.digitize(theta_true, edges) - 1  # nan -> n_pos_bins+... filtered by m
    for b in range(n_pos_bins):
        in_b = m & (bin_of == b)
        eb = delta[in_b]
        if eb.size:
            mu = circular_mean(eb)
            bias[b] = mu
            if sweep_index is None:
                samples = eb
            else:  # one sample per sweep: that sweep's mean error in this bin
                samples = np.array(
                    [
                        circular_mean(delta[in_b & (sweep_index == sw)])
                        for sw in np.unique(sweep_index[in_b])
                    ]
                )
            # sigma_trial holds sqrt(circular variance) of the de-biased samples
            var = circular_variance(wrap_to_pi(samples - mu)) if samples.size >= 2 else 0.0
            sigma_trial[b] = np.sqrt(max(var, 0.0))

    vb = np.isfinite(bias)
    vd = np.isfinite(delta) & ok
    # Fallbacks follow the original: no usable bins -> error of the raw deltas, else pi.
    if np.any(vb):
        sigma_theta = circular_std(bias[vb])
    else:
        sigma_theta = circular_std(delta[vd]) if np.any(vd) else float(np.pi)
    if np.any(np.isfinite(sigma_trial)):
        delta_trial = float(np.sqrt(np.nanmean(sigma_trial**2)))
    else:
        delta_trial = circular_std(delta[vd]) if np.any(vd) else float(np.pi)
    # Over the evaluation window only (time outside it cannot be decoded by design).
    valid_fraction = float(np.mean(vd[ok])) if np.any(ok) else 0.0
    return PVMapQuality(
        theta_true=theta_true,
        theta_hat=theta_hat,
        delta_theta=delta,
        theta_bins=centers,
        bias_theta=bias,
        sigma_trial_theta=sigma_trial,
        sigma_theta=float(sigma_theta),
        delta_trial=float(delta_trial),
        valid_fraction=valid_fraction,
    )
