"""Conductance-based LIF neurons with difference-of-exponentials synapses
(docs/research_systems.md, firing-statistics fitting).

Membrane (mV; conductances in nS, capacitance in pF, time in ms, so dt/C_m * g is
dimensionless)::

    V' = E_L + (V - E_L) beta - (dt / C_m) sum_k g_k (V - E_k)      beta = exp(-dt / tau_m)

The leak is integrated exactly; the synaptic term is an explicit step with the
conductances of the current step (the update of the original firing-statistics fitting).
Spike ``s = H(V' - theta)``
(surrogate gradient from ``flyenv.brains.core.surrogate``), then ``V' -> V_reset`` with the
reset detached; for ``refractory_ms`` after a spike ``V`` is held at ``V_reset``.

Synapses: receptor ``k`` (AMPA, NMDA, GABA_A) has a decay trace ``d_k`` and a rise trace
``r_k``; each step both decay by ``exp(-dt/tau)`` and receive the same kick ``x_k``
(presynaptic spikes times weights times ``g_bar_k``)::

    d_k' = d_k exp(-dt/tau_decay) + x_k        r_k' = r_k exp(-dt/tau_rise) + x_k
    g_k  = n_k (d_k' - r_k')

so one kick ``w`` at step 0 gives exactly ``g_k(t) = n_k w (exp(-t/tau_d) - exp(-t/tau_r))``
at the grid points ``t = m dt``; ``n_k`` normalises the peak of the continuous kernel to
1, so ``g_bar_k`` is the peak conductance of one unit-weight synapse (nS). AMPA and NMDA
are both driven by excitatory presynaptic spikes (input and recurrent E), GABA_A by
inhibitory ones.

Speed/memory: one step is one autograd node (``_CondStep``) that saves only tensors
that exist anyway (the previous ``V``, the new traces, a bool mask) and recomputes the
rest in its hand-written backward; an op-by-op graph saves ~20 tensors per step.
Layout is feature-major: (n, batch), traces (6, n, batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from flyenv.brains.core.surrogate import check_surrogate, spike, surrogate_derivative

RECEPTORS = ("AMPA", "NMDA", "GABA_A")


@dataclass(frozen=True)
class SynapseConfig:
    """Difference-of-exponentials receptor kinetics
    (the original's values: Meissner-Bernard et al.)."""

    tau_rise_ms: tuple[float, float, float] = (0.1, 10.0, 1.0)
    tau_decay_ms: tuple[float, float, float] = (5.0, 70.0, 6.0)
    e_rev_mv: tuple[float, float, float] = (0.0, 0.0, -70.0)
    g_bar_ns: tuple[float, float, float] = (0.5, 0.1, 2.0)
    """Peak conductance per unit weight: AMPA, NMDA (from E cells and inputs), GABA_A (from I)."""

    def validate(self) -> None:
        for r, d in zip(self.tau_rise_ms, self.tau_decay_ms, strict=True):
            if not (0 < r < d):
                raise ValueError(f"synapse needs 0 < tau_rise_ms < tau_decay_ms, got {r}, {d}")
        if any(g < 0 for g in self.g_bar_ns):
            raise ValueError(f"g_bar_ns must be >= 0, got {self.g_bar_ns}")


@dataclass(frozen=True)
class CellTypeConfig:
    """One cell type's membrane (original: E tau 85 ms, theta -38; I tau 50 ms, theta -45)."""

    tau_m_ms: float = 85.0
    theta_mv: float = -38.0
    v_reset_mv: float = -60.0
    e_leak_mv: float = -60.0
    g_leak_ns: float = 1.35
    refractory_ms: float = 8.0

    @property
    def c_m_pf(self) -> float:
        return self.g_leak_ns * self.tau_m_ms  # nS * ms = pF

    def validate(self) -> None:
        if not (self.tau_m_ms > 0 and self.g_leak_ns > 0 and self.refractory_ms >= 0):
            raise ValueError(f"cell type needs tau_m_ms, g_leak_ns > 0, refractory >= 0: {self}")
        if not self.theta_mv > self.v_reset_mv:
            raise ValueError(f"theta_mv must exceed v_reset_mv: {self}")


EXCITATORY = CellTypeConfig()
INHIBITORY = CellTypeConfig(tau_m_ms=50.0, theta_mv=-45.0, g_leak_ns=0.9)


@dataclass(frozen=True)
class ConductanceLIFConfig:
    dt_ms: float = 1.0
    excitatory: CellTypeConfig = field(default_factory=lambda: EXCITATORY)
    inhibitory: CellTypeConfig = field(default_factory=lambda: INHIBITORY)
    synapses: SynapseConfig = field(default_factory=SynapseConfig)
    surrogate: str = "fast_sigmoid"
    slope_per_mv: float = 0.5
    """Fast-sigmoid slope: 0.5/mV still passes 3 % of the peak derivative 10 mV below
    threshold, so neurons far from firing get a gradient (the original's 100 does not)."""

    def validate(self) -> None:
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms}")
        self.excitatory.validate()
        self.inhibitory.validate()
        self.synapses.validate()
        check_surrogate(self.surrogate)


def peak_normalisation(tau_rise_ms: float, tau_decay_ms: float) -> float:
    """``n`` such that ``n (exp(-t/tau_d) - exp(-t/tau_r))`` peaks at exactly 1."""
    t_peak = (
        tau_rise_ms
        * tau_decay_ms
        / (tau_decay_ms - tau_rise_ms)
        * math.log(tau_decay_ms / tau_rise_ms)
    )
    return 1.0 / (math.exp(-t_peak / tau_decay_ms) - math.exp(-t_peak / tau_rise_ms))


class CondState(NamedTuple):
    v: torch.Tensor  # (n, B) membrane potential, mV
    q: torch.Tensor  # (6, n, B) traces [d_AMPA, r_AMPA, d_NMDA, r_NMDA, d_GABA, r_GABA]
    ref: torch.Tensor  # (n, B) refractory steps left (float, no gradient)


class CondConstants(NamedTuple):
    """Per-neuron (n, 1) and per-trace (6, 1, 1) constants of one step."""

    beta: torch.Tensor
    dt_over_c: torch.Tensor
    e_leak: torch.Tensor
    theta: torch.Tensor
    v_reset: torch.Tensor
    ref_steps: torch.Tensor
    decay: torch.Tensor  # (6, 1, 1)
    norm: torch.Tensor  # (6, 1, 1): +n_k for decay traces, -n_k for rise traces
    e_rev: torch.Tensor  # (6, 1, 1)
    g_bar: torch.Tensor  # (3,)
    kick: torch.Tensor  # (6, 2): trace kick per unit (excitatory, inhibitory) input
    mix: torch.Tensor  # (2, 6): rows sum_k g_k and sum_k g_k E_k over the traces


def make_constants(cfg: ConductanceLIFConfig, is_exc: torch.Tensor) -> CondConstants:
    """Constants for neurons whose type is given by the bool vector ``is_exc`` (n,)."""
    cfg.validate()
    e, i = cfg.excitatory, cfg.inhibitory

    def per(a: float, b: float) -> torch.Tensor:
        return torch.where(is_exc, torch.tensor(a), torch.tensor(b)).float()[:, None]

    s = cfg.synapses
    decay, norm, e_rev = [], [], []
    for k in range(3):
        n_k = peak_normalisation(s.tau_rise_ms[k], s.tau_decay_ms[k])
        decay += [math.exp(-cfg.dt_ms / s.tau_decay_ms[k]), math.exp(-cfg.dt_ms / s.tau_rise_ms[k])]
        norm += [n_k, -n_k]
        e_rev += [s.e_rev_mv[k]] * 2
    col = lambda x: torch.tensor(x, dtype=torch.float32)[:, None, None]  # noqa: E731
    return CondConstants(
        beta=per(math.exp(-cfg.dt_ms / e.tau_m_ms), math.exp(-cfg.dt_ms / i.tau_m_ms)),
        dt_over_c=per(cfg.dt_ms / e.c_m_pf, cfg.dt_ms / i.c_m_pf),
        e_leak=per(e.e_leak_mv, i.e_leak_mv),
        theta=per(e.theta_mv, i.theta_mv),
        v_reset=per(e.v_reset_mv, i.v_reset_mv),
        ref_steps=per(round(e.refractory_ms / cfg.dt_ms), round(i.refractory_ms / cfg.dt_ms)),
        decay=col(decay),
        norm=col(norm),
        e_rev=col(e_rev),
        g_bar=torch.tensor(s.g_bar_ns, dtype=torch.float32),
        kick=torch.tensor(
            [[s.g_bar_ns[0], 0.0]] * 2 + [[s.g_bar_ns[1], 0.0]] * 2 + [[0.0, s.g_bar_ns[2]]] * 2
        ),
        mix=torch.stack([col(norm).view(6), (col(norm) * col(e_rev)).view(6)]),
    )


def kicks(x_exc: torch.Tensor, x_inh: torch.Tensor, g_bar: torch.Tensor) -> torch.Tensor:
    """(6, n, B) trace kicks from excitatory / inhibitory weighted spike sums (n, B)."""
    ga, gn, gg = g_bar[0], g_bar[1], g_bar[2]
    a, n, g = ga * x_exc, gn * x_exc, gg * x_inh
    return torch.stack([a, a, n, n, g, g])


def _conductances(q1: torch.Tensor, k: CondConstants) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_k g_k and sum_k g_k E_k, (n, B) each, in one (2, 6) x (6, n B) product."""
    return (k.mix @ q1.reshape(6, -1)).view(2, *q1.shape[1:]).unbind(0)


def _pre_membrane(v, q1, k: CondConstants):
    """Membrane before spike/reset and the total conductance it used."""
    g_tot, g_rev = _conductances(q1, k)
    pre = k.e_leak + (v - k.e_leak) * k.beta - k.dt_over_c * (g_tot * v - g_rev)
    return pre, g_tot


def step_forward(x2, v, q, active, k: CondConstants):
    """Forward kernel (no autograd): spikes (bool), V after reset, traces, V before reset.
    ``x2`` (2, n, B): excitatory and inhibitory kicks."""
    q1 = torch.addcmul((k.kick @ x2.reshape(2, -1)).view(q.shape), q, k.decay)
    pre, _ = _pre_membrane(v, q1, k)
    vt = torch.where(active, pre, k.v_reset)
    s = vt > k.theta
    return s, torch.where(s, k.v_reset, vt), q1, vt


def step_backward(v, q1, vt, active, k: CondConstants, surrogate, slope, g_s, g_v, g_q1, g_vt):
    """Hand-written backward of ``step_forward`` from the saved ``v``, ``q1``, ``vt`` (all
    tensors that exist anyway), ``active``: gradients w.r.t. x_exc, x_inh, v, q."""
    g_tot = (k.mix[0] @ q1.reshape(6, -1)).view(vt.shape)
    s = vt > k.theta
    sg = surrogate_derivative(vt - k.theta, surrogate, slope)
    # reset detached: V' = V_t (1 - s) + V_reset s with s treated as a constant
    g_pre = g_s * sg
    if g_v is not None:
        g_pre = g_pre + torch.where(s, 0.0, g_v)
    if g_vt is not None:
        g_pre = g_pre + g_vt
    g_pre = torch.where(active, g_pre, 0.0)
    g_vin = g_pre * (k.beta - k.dt_over_c * g_tot)
    # d pre / d q1_j = -dt/C norm_j (V - E_j)
    g_q1 = -(k.dt_over_c * g_pre) * (k.norm * (v - k.e_rev)) + (0.0 if g_q1 is None else g_q1)
    g_q = g_q1 * k.decay
    g_xe, g_xi = (k.kick.t() @ g_q1.reshape(6, -1)).view(2, *vt.shape).unbind(0)
    return g_xe, g_xi, g_vin, g_q


def refractory_update(s: torch.Tensor, ref: torch.Tensor, k: CondConstants) -> torch.Tensor:
    """Steps left of the refractory period after this step's spikes ``s`` (bool)."""
    return torch.where(s, k.ref_steps, (ref - 1.0).clamp_min(0.0))


class _CondStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_exc, x_inh, v, q, active, k: CondConstants, surrogate, slope):  # type: ignore[override]
        s, v_new, q1, vt = step_forward(torch.stack([x_exc, x_inh]), v, q, active, k)
        ctx.save_for_backward(v, q1, vt, active)
        ctx.k, ctx.sur = k, (surrogate, slope)
        return s.to(v.dtype), v_new, q1, vt

    @staticmethod
    def backward(ctx, g_s, g_v, g_q1, g_vt):  # type: ignore[override]
        v, q1, vt, active = ctx.saved_tensors
        grads = step_backward(v, q1, vt, active, ctx.k, *ctx.sur, g_s, g_v, g_q1, g_vt)
        return (*grads, None, None, None, None)


def cond_step(
    x_exc: torch.Tensor,
    x_inh: torch.Tensor,
    state: CondState,
    k: CondConstants,
    surrogate: str = "fast_sigmoid",
    slope: float = 0.5,
) -> tuple[torch.Tensor, CondState]:
    """One step (fused autograd node). ``x_exc``/``x_inh``: weighted presynaptic spike
    sums (n, B) arriving this step. Returns spikes (surrogate gradients), the new state and
    the membrane before spike/reset (differentiable; for spike-time interpolation)."""
    active = state.ref <= 0
    s, v, q, vt = _CondStep.apply(x_exc, x_inh, state.v, state.q, active, k, surrogate, slope)
    ref = refractory_update(s.detach() > 0, state.ref, k)
    return s, CondState(v, q, ref), vt


def cond_step_reference(
    x_exc: torch.Tensor,
    x_inh: torch.Tensor,
    state: CondState,
    k: CondConstants,
    surrogate: str = "fast_sigmoid",
    slope: float = 0.5,
) -> tuple[torch.Tensor, CondState]:
    """The same step op by op (autograd records every operation): the tests check the
    fused backward against it. Same returns as ``cond_step``."""
    active = state.ref <= 0
    q1 = state.q * k.decay + kicks(x_exc, x_inh, k.g_bar)
    pre, _ = _pre_membrane(state.v, q1, k)
    vt = torch.where(active, pre, k.v_reset)
    s = spike(vt - k.theta, surrogate, slope)
    sd = s.detach()
    v = vt * (1 - sd) + k.v_reset * sd
    return s, CondState(v, q1, refractory_update(sd > 0, state.ref, k)), vt


def init_state(k: CondConstants, batch: int, v0: torch.Tensor | None = None) -> CondState:
    """Rest (or ``v0`` (n, B)), no conductance, not refractory."""
    n = k.e_leak.shape[0]
    v = k.e_leak.expand(n, batch).clone() if v0 is None else v0
    return CondState(v, torch.zeros(6, n, batch), torch.zeros(n, batch))
