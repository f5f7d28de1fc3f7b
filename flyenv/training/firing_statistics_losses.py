"""Firing-statistics losses (SPEC section 8): rate, CV, silent neurons, membrane
variance, and the van Rossum distance to a teacher's spike trains.

Statistics are accumulated over many chunks of truncated BPTT in ``RunningStats``:
the sums of earlier chunks are kept detached, the current chunk's carry gradients, so
the loss of every chunk is the loss of everything seen so far (a long observation window,
which low rates and CVs need) while the graph only spans one chunk.

Differentiable CV: for every step ``t`` let ``A_t`` be the time since the neuron's
previous spike (0 before its first). With spikes ``s_t`` (surrogate gradients)::

    N = sum_t s_t [t after a first spike],  S1 = sum_t s_t A_t,  S2 = sum_t s_t A_t^2
    mean ISI = S1 / N,   CV^2 = S2 N / S1^2 - 1

The forward value is exactly the CV of the inter-spike intervals; ``A_t`` is computed from
the detached spike train, so the gradient says which spikes (with their preceding
interval) should appear or vanish. The seed takes spike times from ``torch.where``, which
passes no gradient at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossWeights:
    """SPEC section 8 defaults: FR 1, CV 0.5, silent 1, membrane variance 10."""

    firing_rate: float = 1.0
    cv: float = 0.5
    silent_penalty: float = 1.0
    membrane_variance: float = 10.0
    van_rossum: float = 0.0


@dataclass
class Targets:
    rate_e_hz: float = 0.5
    rate_i_hz: float = 2.0
    cv: float = 1.0
    alpha_per_hz: float = 1.0
    """Silent penalty exp(-alpha r). (The seed's 0.01 leaves exp(-0.01 r) ~ 1 with almost
    no gradient at the target rates; 1/Hz penalises a neuron at 0 Hz vs 0.5 Hz by 40 %.)"""
    threshold_ratio: float = 0.8
    """Target of (mean V + std V - E_L) / (theta - E_L): the subthreshold membrane
    fluctuates up to this fraction of the way from rest to threshold (fluctuation-driven
    firing, which gives CV ~ 1)."""
    min_isis: int = 2
    """Neurons with fewer intervals are left out of the CV term (and reported)."""


def time_since_last_spike(
    spikes: torch.Tensor, last_spike_step: torch.Tensor, t0: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A_t in steps for (T, n, B) detached spikes; ``last_spike_step`` (n, B) is the
    absolute step of the previous spike (-1 = none), ``t0`` the chunk's first step.
    Returns A (T, n, B; 0 where there was no earlier spike) and the updated last step."""
    t = torch.arange(t0, t0 + spikes.shape[0], dtype=torch.float32)[:, None, None]
    stamp = torch.where(spikes > 0, t, torch.tensor(-1.0))
    stamp = torch.cat([last_spike_step[None], stamp]).cummax(0).values  # incl. previous
    prev = stamp[:-1]  # last spike strictly before step t
    a = torch.where(prev >= 0, t - prev, torch.zeros(()))
    return a, stamp[-1]


class RunningStats:
    """Differentiable sums over an observation window of several chunks."""

    KEYS = ("count", "n_isi", "s1", "s2", "v1", "v2")

    def __init__(self, n: int, batch: int, dt_ms: float):
        self.dt_ms = dt_ms
        self.n, self.batch = n, batch
        self.steps = 0
        self.sums = {k: torch.zeros(n) for k in self.KEYS}
        self.v_steps = 0

    def detach(self) -> None:
        self.sums = {k: v.detach() for k, v in self.sums.items()}

    def add(
        self,
        spikes: torch.Tensor,
        v: torch.Tensor | None,
        last_spike_step: torch.Tensor,
        t0: int,
    ) -> torch.Tensor:
        """Add a (T, n, B) chunk; returns the updated ``last_spike_step``."""
        a, last = time_since_last_spike(spikes.detach(), last_spike_step, t0)
        a = a * self.dt_ms  # ms
        had = (a > 0).float()
        self.sums["count"] = self.sums["count"] + spikes.sum((0, 2))
        self.sums["n_isi"] = self.sums["n_isi"] + (spikes * had).sum((0, 2))
        self.sums["s1"] = self.sums["s1"] + (spikes * a).sum((0, 2))
        self.sums["s2"] = self.sums["s2"] + (spikes * a.square()).sum((0, 2))
        if v is not None and v.numel():
            self.sums["v1"] = self.sums["v1"] + v.sum((0, 2))
            self.sums["v2"] = self.sums["v2"] + v.square().sum((0, 2))
            self.v_steps += v.shape[0]
        self.steps += spikes.shape[0]
        return last

    # --------------------------------------------------------------- statistics
    def rates_hz(self) -> torch.Tensor:
        return self.sums["count"] / (self.steps * self.batch * self.dt_ms * 1e-3)

    def cv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-neuron CV (n,) and the number of intervals it rests on."""
        n = self.sums["n_isi"]
        safe = n.clamp_min(1e-6)
        mean = self.sums["s1"] / safe
        var = (self.sums["s2"] / safe - mean.square()).clamp_min(1e-9)
        return var.sqrt() / mean.clamp_min(1e-6), n.detach()

    def membrane(self) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.v_steps * self.batch
        mean = self.sums["v1"] / m
        var = (self.sums["v2"] / m - mean.square()).clamp_min(1e-9)
        return mean, var.sqrt()


def firing_rate_loss(rates: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over neurons of (r - r*)^2 / r* (r* per neuron, Hz)."""
    return ((rates - target).square() / target).mean()


def cv_loss(cv: torch.Tensor, n_isi: torch.Tensor, target: float, min_isis: int) -> torch.Tensor:
    """Mean over neurons with >= ``min_isis`` intervals of (CV - target)^2."""
    ok = n_isi >= min_isis
    if not ok.any():
        return cv.sum() * 0.0
    return (cv[ok] - target).square().mean()


def silent_penalty(rates: torch.Tensor, alpha_per_hz: float) -> torch.Tensor:
    return torch.exp(-alpha_per_hz * rates).mean()


def membrane_ratio(
    mean_v: torch.Tensor, std_v: torch.Tensor, e_leak: torch.Tensor, theta: torch.Tensor
) -> torch.Tensor:
    """(mean V + std V - E_L) / (theta - E_L) per neuron."""
    return (mean_v + std_v - e_leak) / (theta - e_leak)


def membrane_variance_loss(ratio: torch.Tensor, target: float) -> torch.Tensor:
    return (ratio - target).square().mean()


def van_rossum_distance(
    spikes: torch.Tensor, teacher: torch.Tensor, tau_ms: float, dt_ms: float
) -> torch.Tensor:
    """Van Rossum (2001) distance per (neuron, batch), averaged: both (T, n, B) trains are
    filtered with exp(-t/tau) (unit jumps) and D^2 = (1/tau) int (f - g)^2 dt."""
    decay = torch.exp(torch.tensor(-dt_ms / tau_ms))
    diff = spikes - teacher
    # causal exponential filter as a linear recurrence, vectorised by doubling
    f = _exp_filter(diff, decay)
    d2 = f.square().sum(0) * dt_ms / tau_ms
    return d2.mean()


def _exp_filter(x: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """y_t = decay y_{t-1} + x_t along dim 0, by a log-depth scan (Hillis-Steele)."""
    y = x
    k, d = 1, decay
    while k < x.shape[0]:
        y = torch.cat([y[:k], y[k:] + d * y[:-k]])
        k, d = 2 * k, d * d
    return y


def statistics_loss(
    stats: RunningStats,
    rate_target: torch.Tensor,
    e_leak: torch.Tensor,
    theta: torch.Tensor,
    targets: Targets,
    weights: LossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the four statistic terms and their values."""
    r = stats.rates_hz()
    cv, n_isi = stats.cv()
    terms = {
        "firing_rate": firing_rate_loss(r, rate_target),
        "cv": cv_loss(cv, n_isi, targets.cv, targets.min_isis),
        "silent_penalty": silent_penalty(r, targets.alpha_per_hz),
    }
    if stats.v_steps:
        mean_v, std_v = stats.membrane()
        ratio = membrane_ratio(mean_v, std_v, e_leak, theta)
        terms["membrane_variance"] = membrane_variance_loss(ratio, targets.threshold_ratio)
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}


def summarize(stats: RunningStats, is_exc: torch.Tensor, e_leak, theta, min_isis: int) -> dict:
    """Per-population numbers (floats) of the window: rates, CV, silent fraction, ratio."""
    with torch.no_grad():
        r = stats.rates_hz()
        cv, n_isi = stats.cv()
        ok = n_isi >= min_isis
        out = {}
        for name, sel in (("E", is_exc), ("I", ~is_exc)):
            cvs = cv[sel & ok]
            out[f"rate_{name}_hz"] = float(r[sel].mean())
            out[f"cv_{name}"] = float(cvs.mean()) if cvs.numel() else float("nan")
            out[f"silent_{name}"] = float((r[sel] == 0).float().mean())
        cvs = cv[ok]
        out["cv_mean"] = float(cvs.mean()) if cvs.numel() else float("nan")
        out["silent_fraction"] = float((r == 0).float().mean())
        out["cv_defined_fraction"] = float(ok.float().mean())
        if stats.v_steps:
            mv, sv = stats.membrane()
            ratio = membrane_ratio(mv, sv, e_leak, theta)
            out["membrane_ratio_E"] = float(ratio[is_exc].mean())
            out["membrane_ratio_I"] = float(ratio[~is_exc].mean())
        return out
