"""Firing-statistics losses (docs/research_systems.md, firing-statistics fitting):
rate, CV, silent neurons, membrane
variance, and the van Rossum distance to a teacher's spike trains.

Statistics are accumulated over many chunks of truncated BPTT in ``RunningStats``:
the sums of earlier chunks are kept detached, the current chunk's carry gradients, so
the loss of every chunk is the loss of everything seen so far (a long observation window,
which low rates and CVs need) while the graph only spans one chunk.

Differentiable CV from interpolated spike times: a spike at step ``k`` is placed where the
membrane crossed threshold between the steps,
``tau_k = (k - 1 + (theta - V_{k-1}) / (V^pre_k - V_{k-1})) dt`` (V^pre: before reset), so
each inter-spike interval ``tau_k - tau_prev`` is a differentiable function of the
membrane trajectory, hence of every weight (implicit-function / EventProp-style spike-time
gradient). With those intervals, per neuron::

    N = number of intervals,  S1 = sum ISI,  S2 = sum ISI^2,  CV^2 = S2 N / S1^2 - 1

which is the exact CV of the (sub-step accurate) spike times; the set of spikes is held
fixed in the gradient (rates are the rate term's business). Checked against finite
differences in the tests; a surrogate-weighted version that differentiates through the
spike indicators instead had the wrong sign for 4 of the 6 pathway scales (measured), and
the spike times of the original firing-statistics fitting (from ``torch.where``) pass no
gradient at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossWeights:
    """Defaults FR 1, CV 0.5, silent 1, membrane variance 10
    (docs/research_systems.md, firing-statistics fitting)."""

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
    """Silent penalty exp(-alpha r). (The original's 0.01 leaves exp(-0.01 r) ~ 1 with almost
    no gradient at the target rates; 1/Hz penalises a neuron at 0 Hz vs 0.5 Hz by 40 %.)"""
    threshold_ratio: float = 0.8
    """Target of (mean V + std V - E_L) / (theta - E_L): the subthreshold membrane
    fluctuates up to this fraction of the way from rest to threshold (fluctuation-driven
    firing, which gives CV ~ 1)."""
    min_isis: int = 2
    """Neurons with fewer intervals are left out of the CV term (and reported)."""


NO_SPIKE = -1e9  # "no previous spike" marker of the carried last spike time


def _spike_events(spikes: torch.Tensor):
    """Spikes of a (T, n, B) chunk as events sorted by (neuron, trial, time): flat index
    into (T, n, B), time step, (neuron, trial) key. Spikes are sparse (a few per 1,000
    entries), so all interval work happens on the events, not on (T, n, B) tensors."""
    n_t, n, b = spikes.shape
    flat = (spikes.detach() > 0).reshape(-1).nonzero().squeeze(1)
    t = flat // (n * b)
    key = flat % (n * b)  # neuron * B + trial
    order = torch.argsort(key * n_t + t)
    return flat[order], t[order], key[order]


def spike_times(
    spikes: torch.Tensor,
    v_pre: torch.Tensor,
    v: torch.Tensor,
    v_before: torch.Tensor,
    theta: torch.Tensor,
    t0: int,
    events=None,
) -> torch.Tensor:
    """Threshold-crossing time (in steps, absolute) of every spike event of a (T, n, B)
    chunk (``_spike_events`` order), interpolated between the step before (V after reset,
    ``v_before`` (n, B) before the chunk) and the step of the spike (``v_pre``)."""
    flat, t, key = _spike_events(spikes) if events is None else events
    nb = v.shape[1] * v.shape[2]
    prev = torch.where(
        t > 0,
        v.reshape(-1)[(flat - nb).clamp_min(0)],
        v_before.reshape(-1)[key],
    )
    th = theta[key // v.shape[2]]
    frac = (th - prev) / (v_pre.reshape(-1)[flat] - prev).clamp_min(1e-3)
    return (t0 + t).to(v.dtype) - 1.0 + frac.clamp(0.0, 1.0)


def isi_moments(
    spikes: torch.Tensor, tau: torch.Tensor, last_time: torch.Tensor, events=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-neuron (N, S1, S2) of the intervals (steps) ending in this chunk from the spike
    times ``tau`` of the events, and the updated last spike time (n, B; ``NO_SPIKE`` =
    none yet)."""
    n_t, n, b = spikes.shape
    flat, t, key = _spike_events(spikes) if events is None else events
    last_flat = last_time.reshape(-1)
    first = torch.ones_like(key, dtype=torch.bool)
    first[1:] = key[1:] != key[:-1]
    prev_tau = torch.where(first, last_flat[key], torch.cat([tau[:1], tau[:-1]]))
    valid = prev_tau > NO_SPIKE / 2
    isi = torch.where(valid, tau - prev_tau, torch.zeros(()))
    neuron = key // b
    zeros = torch.zeros(n, dtype=tau.dtype)
    n_isi = zeros.index_add(0, neuron, valid.to(tau.dtype))
    s1 = zeros.index_add(0, neuron, isi)
    s2 = zeros.index_add(0, neuron, isi.square())
    last = torch.ones_like(first)
    last[:-1] = key[1:] != key[:-1]
    new_last = last_flat.clone()
    new_last[key[last]] = tau.detach()[last]
    return n_isi, s1, s2, new_last.view_as(last_time)


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
        last_spike_time: torch.Tensor,
        t0: int,
        v_pre: torch.Tensor | None = None,
        v_before: torch.Tensor | None = None,
        theta: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Add a (T, n, B) chunk; returns the updated last spike time (steps). With
        ``v_pre``, ``v_before`` and ``theta`` the intervals are differentiable (module
        docstring); without, spikes sit on the grid (no gradient through the CV)."""
        events = _spike_events(spikes)
        if v_pre is not None and v_pre.numel():
            tau = spike_times(spikes, v_pre, v, v_before, theta, t0, events)
        else:
            tau = (t0 + events[1]).float()
        n_isi, s1, s2, last = isi_moments(spikes, tau, last_spike_time, events)
        dt = self.dt_ms
        self.sums["count"] = self.sums["count"] + spikes.sum((0, 2))
        self.sums["n_isi"] = self.sums["n_isi"] + n_isi
        self.sums["s1"] = self.sums["s1"] + s1 * dt
        self.sums["s2"] = self.sums["s2"] + s2 * dt * dt
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


def firing_rate_loss(
    rates: torch.Tensor, target: torch.Tensor, floor_hz: float = 0.0
) -> torch.Tensor:
    """Mean over neurons of (r - r*)^2 / max(r*, floor) (r* per neuron, Hz); the floor
    keeps a teacher's silent neurons (r* = 0) from dividing by zero."""
    return ((rates - target).square() / target.clamp_min(floor_hz)).mean()


def population_rate_loss(
    rates: torch.Tensor, target: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """Sum over populations (E = ``groups``, I = rest) of (mean r - r*)^2 / r*.

    Added to the per-neuron term because surrogate gradients reach neurons near threshold
    (the active ones) far more than silent ones, so the per-neuron term alone pulls active
    neurons down harder than it lifts quiet ones and the population mean settles below
    target (measured: E 0.40 Hz for 0.5, I 1.5 Hz for 2 at the end of training)."""
    out = rates.new_zeros(())
    for sel in (groups, ~groups):
        if sel.any():
            t = target[sel].mean()
            out = out + (rates[sel].mean() - t).square() / t
    return out


def teacher_rate_loss(
    rates: torch.Tensor, teacher_rates: torch.Tensor, is_exc: torch.Tensor, floor_hz: float = 0.1
) -> torch.Tensor:
    """Mean over neurons of (r - r_teacher)^2 / (population-mean teacher rate). Not the
    per-neuron r* of ``firing_rate_loss``: a neuron the teacher left silent in a short
    window would get weight 1/floor and bias every update towards more inhibition."""
    with torch.no_grad():
        t = teacher_rates
        norm = torch.where(is_exc, t[is_exc].mean(), t[~is_exc].mean()).clamp_min(floor_hz)
    return ((rates - teacher_rates).square() / norm).mean()


def cv_loss(
    cv: torch.Tensor,
    n_isi: torch.Tensor,
    target: float,
    min_isis: int,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over populations (``groups``: bool (n,) E mask; None = one population) of
    (population-mean CV - target)^2, over neurons with >= ``min_isis`` intervals.

    The population mean, not a per-neuron MSE: a CV from a handful of intervals is noisy,
    and in a per-neuron MSE the few bursty outliers (CV 3-4) dominate the gradient, which
    then lowers CV whatever the target (measured on the 200-neuron test network)."""
    ok = n_isi >= min_isis
    masks = [ok] if groups is None else [ok & groups, ok & ~groups]
    terms = [(cv[m].mean() - target).square() for m in masks if m.any()]
    if not terms:
        return cv.sum() * 0.0
    return torch.stack(terms).mean()


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
    groups: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the four statistic terms and their values (``groups``: E mask, so
    the CV term is per population)."""
    r = stats.rates_hz()
    cv, n_isi = stats.cv()
    terms = {
        "firing_rate": firing_rate_loss(r, rate_target)
        + (population_rate_loss(r, rate_target, groups) if groups is not None else 0.0),
        "cv": cv_loss(cv, n_isi, targets.cv, targets.min_isis, groups),
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
