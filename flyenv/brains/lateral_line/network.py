"""LL -> MON -> TS spiking network with STDP for the fish lateral line
(docs/research_systems.md, lateral line).

Layers (dt = 1 ms, forward Euler as in the Brian2 original):

- LL: Poisson afferents, one per neuromast, rate given per time step.
- MON: LIF (tau_m 10 ms, tau_s 2 ms, Vth -54, reset -60, E_L -74 mV, refractory
  2 ms); sparse LL input (fixed, or multiplicative STDP), background Poisson, and a
  global inhibitory cell driven by a random subset of MON.
- TS: same LIF; MON->TS synapses with additive STDP and hard bounds [0, wmax]
  (traces 20 ms), background Poisson, triangular ring lateral inhibition and an
  optional global feedback-inhibition cell.

Equations per neuron: dv/dt = (E_L - v + ge - gi)/tau_m (frozen while refractory),
dge/dt = -ge/tau_s, dgi/dt = -gi/tau_s; a spike adds its weight (mV) to ge or gi.
Within a step the order is Brian2's: integrate all groups, threshold/reset, then
deliver this step's spikes (Poisson inputs included) and apply STDP.

Implementation notes (why it is fast):
- A chunk (a training trial, the test sweep) runs in one numba-compiled kernel
  (flyenv/brains/lateral_line/kernels.py) on preallocated arrays: no per-step Python.
  ``backend="numpy"`` keeps the step-by-step numpy version as the reference; both give
  identical spikes and weights (tested spike for spike).
- The Poisson inputs of a chunk are drawn up front from the network's seeded numpy
  Generator as event lists (LL: one uniform per afferent and step; background: exact
  Bernoulli grids from geometric gaps, one draw per spike), so runs are seeded and a
  saved Generator state resumes a run exactly.
- LL->MON is event-driven (CSR by LL cell); MON inhibition is global, so its gi is a
  scalar; membrane potential is kept relative to E_L and ge - gi as one net current.
- MON->TS synapses are stored per synapse, (n_mon, out_degree), with a CSR index by
  target: a MON spike touches its own 16 weights, a TS spike its incoming column
  (event-driven STDP); duplicates of a (pre, post) pair stay separate synapses as in
  Brian2. STDP traces are kept scaled by the accumulated decay (nothing decays per
  step) and renormalised when the factor gets small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flyenv.brains.lateral_line.connectivity import build_connectivity, ts_lateral_kernel_mV
from flyenv.brains.lateral_line.params import NetworkParams


def _pair_mean(i: np.ndarray, j: np.ndarray, w: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """Dense pair matrix holding the mean of the per-synapse values of each pair."""
    out = np.zeros(mult.shape, np.float64)
    np.add.at(out, (i, j), w)
    return (out / np.maximum(mult, 1.0)).astype(np.float32)


@dataclass
class SpikeRecord:
    """Spikes of one simulated chunk: (step, neuron) pairs per layer plus counts."""

    n_steps: int
    ll_t: np.ndarray
    ll_i: np.ndarray
    mon_t: np.ndarray
    mon_i: np.ndarray
    ts_t: np.ndarray
    ts_i: np.ndarray
    mon_count: np.ndarray = field(repr=False)  # (n_steps,) MON spikes per step
    ts_count: np.ndarray = field(repr=False)


@dataclass
class InputEvents:
    """Poisson input spikes of one chunk as per-step CSR lists (indices ascending)."""

    n_steps: int
    ll_t: np.ndarray
    ll_i: np.ndarray
    ll_ptr: np.ndarray
    bgm_i: np.ndarray
    bgm_ptr: np.ndarray
    bgt_i: np.ndarray
    bgt_ptr: np.ndarray


def bernoulli_grid_events(
    rng: np.random.Generator, n_steps: int, n_cells: int, prob: float
) -> tuple[np.ndarray, np.ndarray]:
    """(step, cell) of the successes of n_steps x n_cells independent Bernoulli(prob)
    trials, sorted by step then cell. Exact (geometric gaps along the flattened grid),
    but draws one number per success instead of one per trial."""
    n = n_steps * n_cells
    if n == 0 or prob <= 0.0:
        e = np.empty(0, np.int64)
        return e, e
    if prob >= 1.0:
        flat = np.arange(n, dtype=np.int64)
        return flat // n_cells, flat % n_cells
    parts, last, remaining = [], -1, n
    while True:
        mean = remaining * prob
        k = int(mean + 6.0 * np.sqrt(mean) + 16)
        pos = last + np.cumsum(rng.geometric(prob, size=k))
        if pos[-1] >= n:
            parts.append(pos[pos < n])
            break
        parts.append(pos)
        last = int(pos[-1])
        remaining = n - 1 - last
    flat = np.concatenate(parts)
    return flat // n_cells, flat % n_cells


def _csr_ptr(t: np.ndarray, n_steps: int) -> np.ndarray:
    return np.searchsorted(t, np.arange(n_steps + 1)).astype(np.int64)


class _LIFState:
    """Membrane u = v - E_L, net current and refractory counters of one LIF group.

    ``g`` is the net synaptic current ge - gi (they share tau_s and enter the membrane
    only as a difference) pre-multiplied by dt/tau_m; ``ref`` counts the steps a cell
    stays clamped at reset (Brian2 refractory)."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.u = (rng.random(n) * 2.0).astype(np.float32)  # v = E_L + U(0, 2) mV
        self.g = np.zeros(n, np.float32)
        self.ref = np.zeros(n, np.int64)


BACKENDS = ("numba", "numpy")


def threshold_offsets_after_trial(
    offset_mV: np.ndarray, rate_hz: np.ndarray, eta_mV_per_hz: float, max_mV: float
) -> np.ndarray:
    """The intrinsic-plasticity step (``LateralLineNetwork.ts_threshold_homeostasis``):
    offset + eta * (rate - mean rate), clipped to +-max_mV, as float32. A function of its
    own so that a peer implementation (benchmarks/bench_lateral_line.py) runs the same rule."""
    rate = np.asarray(rate_hz, dtype=np.float64)
    new = np.asarray(offset_mV, dtype=np.float64) + eta_mV_per_hz * (rate - rate.mean())
    return np.clip(new, -max_mV, max_mV).astype(np.float32)


class LateralLineNetwork:
    """The LL->MON->TS network; call :meth:`run` on chunks of LL rates.

    MON->TS synapses are stored per synapse as an (n_mon, out_degree) matrix (pre
    spikes touch only their own row of 16 weights), with a CSR index by target for
    post spikes, so duplicates of a (pre, post) pair stay separate synapses as in Brian2.

    ``backend="numba"`` (default) runs each chunk in one compiled kernel
    (:mod:`flyenv.brains.lateral_line.kernels`); ``"numpy"`` is the step-by-step
    reference, which gives the same spikes and weights from the same seed. LL->MON STDP
    (off in both presets) always runs on the numpy path.
    """

    def __init__(self, params: NetworkParams, backend: str = "numba"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        p = params
        self.p = p
        self.backend = backend
        self.conn = c = build_connectivity(p)
        init_rng = np.random.default_rng([p.seed, 51])
        n_llmon = c.ll_mon_i.size
        if p.ll_mon_use_stdp:
            w = p.ll_mon_w_init_mV + p.ll_mon_w_jitter_stdp_mV * init_rng.random(n_llmon)
            self.ll_w = _pair_mean(c.ll_mon_i, c.ll_mon_j, w, c.ll_mon_mult)
        else:
            # Fixed synapses add up exactly, so the dense matrix holds the pair's sum.
            w = p.ll_mon_w_mean_mV + p.ll_mon_w_jitter_mV * init_rng.random(n_llmon)
            self.ll_w = np.zeros((p.n_ll, p.n_mon), np.float32)
            np.add.at(self.ll_w, (c.ll_mon_i, c.ll_mon_j), w.astype(np.float32))
        self.ll_mask = c.ll_mon_mult > 0
        deg = p.mon_to_ts_out_degree
        w0 = p.mon_ts_w_init + p.mon_ts_w_jitter * init_rng.random(c.mon_ts_i.size)
        self.mt_w = w0.astype(np.float32).reshape(p.n_mon, deg)  # per synapse
        self.mt_post = c.mon_ts_j.reshape(p.n_mon, deg)
        order = np.argsort(c.mon_ts_j, kind="stable")
        self.in_ptr = np.searchsorted(c.mon_ts_j[order], np.arange(p.n_ts + 1))
        self.in_syn = order  # flat synapse ids grouped by target TS cell
        self.in_pre = c.mon_ts_i[order]
        state_rng = np.random.default_rng([p.seed, 61])
        self.mon = _LIFState(p.n_mon, state_rng)
        self.ts = _LIFState(p.n_ts, state_rng)
        # Global inhibitory cells: [u, ge, refractory steps left] of the MON and TS ones
        self.inh = np.zeros(6)
        self.x_pre_mon = np.zeros(p.n_mon, np.float32)  # MON->TS pre traces
        self.x_post_ts = np.zeros(p.n_ts, np.float32)
        self.x_pre_ll = np.zeros(p.n_ll, np.float32)  # LL->MON traces
        self.x_post_mon = np.zeros(p.n_mon, np.float32)
        # TS threshold offsets (mV), set by intrinsic plasticity (ts_threshold_homeostasis)
        self.ts_th_offset = np.zeros(p.n_ts, np.float32)
        self.rng = np.random.default_rng([p.seed, 71])
        self.ll_homeo_target = self._ll_incoming().mean() if p.ll_mon_use_stdp else 0.0
        self.mt_out_target = self.mt_w.sum(axis=1, dtype=np.float64)
        self.mt_homeo_target_cell = self._mt_incoming()
        self.mt_homeo_target = float(self.mt_homeo_target_cell.mean())
        self.step_count = 0
        self._llm_csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def set_ts_lateral_exc(self, peak_mV: float, sigma: float) -> None:
        """Replace the TS-TS excitation of the lateral kernel (the inhibition stays)."""
        p = self.p
        self.conn.ts_lateral_mV = ts_lateral_kernel_mV(
            p.n_ts,
            p.ts_lateral_radius,
            p.ts_local_inh_peak_mV,
            peak_mV,
            sigma,
            p.ts_lateral_periodic,
        )

    # -- weights as per-synapse lists (artifact format)
    def mon_ts_weights(self) -> np.ndarray:
        return self.mt_w.ravel().astype(float)

    def mon_ts_dense(self) -> np.ndarray:
        """(n_mon, n_ts) summed weight per pair (for drive figures)."""
        out = np.zeros((self.p.n_mon, self.p.n_ts))
        np.add.at(out, (self.conn.mon_ts_i, self.conn.mon_ts_j), self.mt_w.ravel())
        return out

    def ll_mon_weights_mV(self) -> np.ndarray:
        w = self.ll_w[self.conn.ll_mon_i, self.conn.ll_mon_j].astype(float)
        if not self.p.ll_mon_use_stdp:  # dense holds pair sums; split back per synapse
            w = w / self.conn.ll_mon_mult[self.conn.ll_mon_i, self.conn.ll_mon_j]
        return w

    def _mt_incoming(self) -> np.ndarray:
        return np.bincount(self.mt_post.ravel(), self.mt_w.ravel(), minlength=self.p.n_ts)

    def _ll_incoming(self) -> np.ndarray:
        return (self.ll_w * self.conn.ll_mon_mult).sum(axis=0)

    def homeostasis(self) -> None:
        """Multiplicative scaling of incoming weights towards the population mean
        (MON->TS when ``mon_ts_homeo_eta`` > 0; LL->MON with its STDP and eta > 0)."""
        p = self.p
        if p.ll_mon_use_stdp and p.ll_mon_homeo_eta > 0:
            inc = self._ll_incoming()
            scale = np.ones(p.n_mon)
            nz = inc > 1e-12
            scale[nz] = np.clip(
                1 + p.ll_mon_homeo_eta * (self.ll_homeo_target / inc[nz] - 1), 0.9, 1.1
            )
            np.clip(
                self.ll_w * scale[None, :].astype(np.float32), 0, p.ll_mon_wmax_mV, out=self.ll_w
            )
        if p.mon_ts_homeo_eta > 0:
            inc = self._mt_incoming()
            nz = inc > 1e-12
            if np.any(nz):
                scale = np.ones(p.n_ts)
                if p.mon_ts_homeo_fixed_target and p.mon_ts_homeo_per_cell:
                    target = self.mt_homeo_target_cell[nz]
                elif p.mon_ts_homeo_fixed_target:
                    target = self.mt_homeo_target
                else:
                    target = inc[nz].mean()
                step = max(0.0, p.mon_ts_homeo_max_step)
                scale[nz] = np.clip(
                    1 + p.mon_ts_homeo_eta * (target / inc[nz] - 1), 1 - step, 1 + step
                )
                np.clip(
                    self.mt_w * scale[self.mt_post].astype(np.float32),
                    0,
                    p.mon_ts_wmax,
                    out=self.mt_w,
                )
        if p.mon_ts_homeo_eta > 0 and p.mon_ts_norm_presynaptic:
            out = self.mt_w.sum(axis=1, dtype=np.float64)
            nz = out > 1e-12
            scale = np.ones(p.n_mon)
            scale[nz] = self.mt_out_target[nz] / out[nz]
            np.clip(self.mt_w * scale[:, None].astype(np.float32), 0, p.mon_ts_wmax, out=self.mt_w)

    def ts_threshold_homeostasis(self, ts_spike_counts: np.ndarray, duration_s: float) -> None:
        """Intrinsic plasticity of the TS thresholds after a training trial (off when
        ``ts_threshold_homeo_mV_per_hz`` is 0): each TS cell's threshold moves by
        eta * (its rate - the TS population's mean rate), clipped to
        +-``ts_threshold_homeo_max_mV``. Cells that fire more than the others become
        less excitable and silent ones more, so every TS cell comes to win for some
        stimulus positions: the "conscience" of competitive learning (DeSieno 1988,
        Proc IEEE ICNN 1:117) in the form of homeostatic intrinsic plasticity (Desai,
        Rutherford & Turrigiano 1999, Nat Neurosci 2:515). The population's mean
        threshold stays put, so the TS mean rate is not regulated, only its spread."""
        p = self.p
        eta = p.ts_threshold_homeo_mV_per_hz
        if eta == 0:
            return
        counts = np.asarray(ts_spike_counts, dtype=np.float64)
        if counts.shape != (p.n_ts,):
            raise ValueError(f"ts_spike_counts must have shape ({p.n_ts},), got {counts.shape}")
        if not duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        self.ts_th_offset[...] = threshold_offsets_after_trial(
            self.ts_th_offset, counts / duration_s, eta, p.ts_threshold_homeo_max_mV
        )

    def _prepare_rates(self, rates_hz: np.ndarray) -> np.ndarray:
        p = self.p
        sub = max(0.0, p.ll_rate_baseline_subtract_hz)
        if p.ll_rate_mode == "modulation":
            sub += 40.0  # the stimulus baseline r0
        return np.clip((rates_hz - sub) * max(0.0, p.ll_rate_gain), 0.0, None)

    def draw_inputs(self, rates_hz: np.ndarray) -> InputEvents:
        """Poisson spikes of the LL afferents and the MON / TS background for a chunk,
        from the network's seeded Generator (LL first, then MON, then TS background)."""
        p = self.p
        n_steps = rates_hz.shape[0]
        dt = p.dt_s
        ll_t, ll_i = np.nonzero(
            self.rng.random(rates_hz.shape) < self._prepare_rates(rates_hz) * dt
        )
        bgm_t, bgm_i = bernoulli_grid_events(self.rng, n_steps, p.n_mon, p.bg_rate_mon_hz * dt)
        bgt_t, bgt_i = bernoulli_grid_events(self.rng, n_steps, p.n_ts, p.bg_rate_ts_hz * dt)
        return InputEvents(
            n_steps=n_steps,
            ll_t=ll_t.astype(np.int64),
            ll_i=ll_i.astype(np.int64),
            ll_ptr=_csr_ptr(ll_t, n_steps),
            bgm_i=bgm_i,
            bgm_ptr=_csr_ptr(bgm_t, n_steps),
            bgt_i=bgt_i,
            bgt_ptr=_csr_ptr(bgt_t, n_steps),
        )

    def run(self, rates_hz: np.ndarray, plastic: bool = True) -> SpikeRecord:
        """Simulate ``len(rates_hz)`` steps driven by LL rates (T, n_ll) in Hz."""
        p = self.p
        rates_hz = np.asarray(rates_hz, dtype=float)
        if rates_hz.ndim != 2 or rates_hz.shape[1] != p.n_ll:
            raise ValueError(f"rates_hz must have shape (T, {p.n_ll}), got {rates_hz.shape}")
        if not np.all(np.isfinite(rates_hz)):
            raise ValueError("rates_hz contains NaN or inf")
        ev = self.draw_inputs(rates_hz)
        if self.backend == "numba" and not p.ll_mon_use_stdp:
            rec = self._run_numba(ev, plastic)
        else:
            rec = self._run_numpy(ev, plastic)
        self.step_count += ev.n_steps
        return rec

    # -- shared constants of both paths
    def _consts(self) -> dict[str, Any]:
        p = self.p
        f32 = np.float32
        dt_ms = p.dt_s * 1e3
        km = dt_ms / p.tau_m_ms
        return {
            "km": km,
            "leak": f32(1.0 - km),
            "decay_s": f32(1.0 - dt_ms / p.tau_s_ms),  # forward Euler, as the original
            "th": f32(p.vth_mV - p.el_mV),
            "ur": f32(p.vreset_mV - p.el_mV),
            "n_ref": max(0, int(round(p.tau_ref_ms / dt_ms))),
            "bg_mon_in": f32(km * p.bg_w_mon_mV),
            "bg_ts_in": f32(km * p.bg_w_ts_mV),
            "gain": km * p.mon_ts_gain_mV,
            "inh_mon": f32(p.global_inh_to_mon_mV * km),
            "inh_ts": f32(max(0.0, p.global_inh_to_ts_mV) * km),
            "tr": float(np.exp(-dt_ms / p.mon_ts_stdp_tau_ms)),  # STDP trace decay per step
            "wmax": f32(p.mon_ts_wmax),
        }

    def _ll_mon_csr(self, km: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fixed LL->MON pairs by LL row: (ptr, target MON cells, km * weight)."""
        if self._llm_csr is None:
            wk = self.ll_w * np.float32(km)
            rows, cols = np.nonzero(self.ll_mask)
            ptr = np.searchsorted(rows, np.arange(self.p.n_ll + 1)).astype(np.int64)
            self._llm_csr = (ptr, cols.astype(np.int64), wk[rows, cols].astype(np.float32))
        return self._llm_csr

    def _record(self, ev, mon_i, m_cnt, ts_i, t_cnt) -> SpikeRecord:
        steps = np.arange(ev.n_steps)
        return SpikeRecord(
            n_steps=ev.n_steps,
            ll_t=ev.ll_t,
            ll_i=ev.ll_i,
            mon_t=np.repeat(steps, m_cnt),
            mon_i=mon_i.astype(np.int64),
            ts_t=np.repeat(steps, t_cnt),
            ts_i=ts_i.astype(np.int64),
            mon_count=m_cnt,
            ts_count=t_cnt,
        )

    def _run_numba(self, ev: InputEvents, plastic: bool) -> SpikeRecord:
        from flyenv.brains.lateral_line.kernels import simulate_chunk

        p, k = self.p, self._consts()
        n = ev.n_steps
        mt_stdp = plastic and (p.mon_ts_apre != 0 or p.mon_ts_apost != 0)
        llm_ptr, llm_post, llm_w = self._ll_mon_csr(k["km"])
        per_cell = n // (k["n_ref"] + 1) + 1  # at most one spike per refractory period
        mon_out = np.empty(p.n_mon * per_cell, np.int32)
        ts_out = np.empty(p.n_ts * per_cell, np.int32)
        m_cnt = np.zeros(n, np.int64)
        t_cnt = np.zeros(n, np.int64)
        n_m, n_t = simulate_chunk(
            n,
            ev.ll_ptr,
            ev.ll_i,
            ev.bgm_ptr,
            ev.bgm_i,
            ev.bgt_ptr,
            ev.bgt_i,
            llm_ptr,
            llm_post,
            llm_w,
            self.mt_w,
            self.mt_post,
            self.in_ptr,
            self.in_syn,
            self.in_pre,
            self._lat_km(),
            self.conn.mon_to_inh,
            self.conn.ts_to_inh,
            self.mon.u,
            self.mon.g,
            self.mon.ref,
            self.ts.u,
            self.ts.g,
            self.ts.ref,
            self.ts_th_offset,
            self.x_pre_mon,
            self.x_post_ts,
            self.inh,
            k["leak"],
            k["decay_s"],
            k["th"],
            k["ur"],
            k["n_ref"],
            k["km"],
            k["bg_mon_in"],
            k["bg_ts_in"],
            k["gain"],
            k["inh_mon"],
            k["inh_ts"],
            float(p.mon_to_global_inh_drive_mV),
            float(p.ts_to_global_inh_drive_mV),
            bool(p.use_ts_feedback_inh),
            bool(mt_stdp),
            float(p.mon_ts_apre),
            float(p.mon_ts_apost),
            k["wmax"],
            k["tr"],
            np.float32(k["tr"] ** n),
            mon_out,
            m_cnt,
            ts_out,
            t_cnt,
        )
        return self._record(ev, mon_out[:n_m], m_cnt, ts_out[:n_t], t_cnt)

    def _lat_km(self) -> np.ndarray:
        km = self._consts()["km"]
        return np.ascontiguousarray(self.conn.ts_lateral_mV * np.float32(km))

    def _run_numpy(self, ev: InputEvents, plastic: bool) -> SpikeRecord:
        """Step-by-step numpy reference (and the LL->MON STDP path)."""
        p, k = self.p, self._consts()
        n_steps = ev.n_steps
        f32 = np.float32
        km, leak, decay_s, th, ur = k["km"], k["leak"], k["decay_s"], k["th"], k["ur"]
        n_ref, tr, wmax, zero = k["n_ref"], k["tr"], k["wmax"], f32(0.0)
        ll_spk = np.zeros((n_steps, p.n_ll), bool)
        ll_spk[ev.ll_t, ev.ll_i] = True
        ll_stdp = p.ll_mon_use_stdp and plastic and (p.ll_mon_apre != 0 or p.ll_mon_apost != 0)
        mt_stdp = plastic and (p.mon_ts_apre != 0 or p.mon_ts_apost != 0)
        steps_m = np.repeat(np.arange(n_steps), np.diff(ev.bgm_ptr))
        steps_t = np.repeat(np.arange(n_steps), np.diff(ev.bgt_ptr))
        mon_in = np.zeros((n_steps, p.n_mon), f32)
        mon_in[steps_m, ev.bgm_i] = k["bg_mon_in"]
        if not p.ll_mon_use_stdp:
            # Fixed LL->MON: the chunk's feed-forward drive in one float64 product (exact
            # sums of float32 weights), rounded once to float32.
            wk = (self.ll_w * f32(km)).astype(np.float64)
            mon_in += (ll_spk.astype(np.float64) @ wk).astype(f32)
        ts_in = np.zeros((n_steps, p.n_ts), f32)
        ts_in[steps_t, ev.bgt_i] = k["bg_ts_in"]
        lat = self._lat_km()
        gain = k["gain"]
        ll_wmax = f32(p.ll_mon_wmax_mV)
        a_pre, a_post = p.mon_ts_apre, p.mon_ts_apost
        mon, ts = self.mon, self.ts
        mu, tu, m_g, t_g = mon.u, ts.u, mon.g, ts.g
        mi_u, mi_ge, mi_ref, ti_u, ti_ge, ti_ref = (float(v) for v in self.inh)
        m_drive, t_drive = p.mon_to_global_inh_drive_mV, p.ts_to_global_inh_drive_mV
        th_f, ur_f, decay_f = float(th), float(ur), float(decay_s)
        to_inh_mon, to_inh_ts = self.conn.mon_to_inh, self.conn.ts_to_inh
        w, post = self.mt_w, self.mt_post
        wf = w.reshape(-1)
        in_ptr, in_syn, in_pre = self.in_ptr, self.in_syn, self.in_pre
        # STDP traces are stored scaled by 1/f (f = decay since the last renormalisation)
        # so nothing decays per step; actual trace = stored * f.
        x_pre, x_post = self.x_pre_mon, self.x_post_ts
        f_tr = 1.0
        mon_spikes: list[np.ndarray] = []
        ts_spikes: list[np.ndarray] = []
        n_ts = p.n_ts

        for t in range(n_steps):
            # ---- 1. integrate, clamp refractory cells, thresholds and resets
            mu *= leak
            mu += m_g
            m_g *= decay_s
            tu *= leak
            tu += t_g
            t_g *= decay_s
            if mi_ref > 0:  # refractory: clamped at reset
                mi_ref -= 1
            else:
                mi_u += km * (mi_ge - mi_u)
            mi_ge *= decay_f
            if ti_ref > 0:
                ti_ref -= 1
            else:
                ti_u += km * (ti_ge - ti_u)
            ti_ge *= decay_f
            for st in (mon, ts):
                r = st.ref > 0
                st.u[r] = ur
                st.ref[r] -= 1
            m_idx = (mu > th).nonzero()[0]
            t_idx = (tu > th + self.ts_th_offset).nonzero()[0]
            mu[m_idx] = ur
            tu[t_idx] = ur
            mon.ref[m_idx] = n_ref
            ts.ref[t_idx] = n_ref
            mi_fired = mi_u > th_f
            if mi_fired:
                mi_u, mi_ref = ur_f, n_ref
            ti_fired = ti_u > th_f
            if ti_fired:
                ti_u, ti_ref = ur_f, n_ref
            mon_spikes.append(m_idx)
            ts_spikes.append(t_idx)
            # ---- 2. deliver this step's spikes, then STDP (Brian2 on_pre before on_post)
            m_g += mon_in[t]
            if p.ll_mon_use_stdp:
                ll_idx = np.flatnonzero(ll_spk[t])
                if ll_idx.size:
                    m_g += f32(km) * (self.ll_w[ll_idx] * self.conn.ll_mon_mult[ll_idx]).sum(axis=0)
                if ll_stdp:
                    self.x_pre_ll *= f32(tr)
                    self.x_post_mon *= f32(tr)
                    if ll_idx.size:  # pre: multiplicative depression w += apost * w
                        self.x_pre_ll[ll_idx] += f32(p.ll_mon_apre)
                        rows = self.ll_w[ll_idx]
                        rows += self.x_post_mon[None, :] * rows
                        np.clip(rows, 0, ll_wmax, out=rows)
                        self.ll_w[ll_idx] = rows
                    if m_idx.size:  # post: potentiation towards wmax
                        self.x_post_mon[m_idx] += f32(p.ll_mon_apost)
                        cols = self.ll_w[:, m_idx]
                        cols += self.x_pre_ll[:, None] * (ll_wmax - cols) * self.ll_mask[:, m_idx]
                        np.clip(cols, 0, ll_wmax, out=cols)
                        self.ll_w[:, m_idx] = cols
            if mi_fired:
                m_g -= k["inh_mon"]
            if mt_stdp:
                f_tr *= tr
            if m_idx.size:
                mi_ge += m_drive * np.count_nonzero(to_inh_mon[m_idx])
                rows = w[m_idx]
                targets = post[m_idx]
                drive = np.bincount(targets.ravel(), rows.ravel(), minlength=n_ts)
                np.add(t_g, gain * drive, out=t_g, casting="unsafe")
                if mt_stdp:  # pre spike: w += post trace (LTD for Apost < 0)
                    x_pre[m_idx] += f32(a_pre / f_tr)
                    rows += x_post[targets] * f32(f_tr)
                    np.minimum(rows, wmax, out=rows)  # hard bounds
                    np.maximum(rows, zero, out=rows)
                    w[m_idx] = rows
            t_g += ts_in[t]
            if t_idx.size:
                if mt_stdp:  # post spike: w += pre trace (LTP)
                    x_post[t_idx] += f32(a_post / f_tr)
                    sel = [slice(in_ptr[j], in_ptr[j + 1]) for j in t_idx]
                    syn = np.concatenate([in_syn[s_] for s_ in sel])
                    pre = np.concatenate([in_pre[s_] for s_ in sel])
                    vals = wf[syn] + x_pre[pre] * f32(f_tr)
                    np.minimum(vals, wmax, out=vals)
                    np.maximum(vals, zero, out=vals)
                    wf[syn] = vals
                t_g -= lat[t_idx].sum(axis=0)
                if p.use_ts_feedback_inh:
                    ti_ge += t_drive * np.count_nonzero(to_inh_ts[t_idx])
            if ti_fired and p.use_ts_feedback_inh:
                t_g -= k["inh_ts"]
            if mt_stdp and f_tr < 1e-3:  # renormalise the stored traces
                x_pre *= f32(f_tr)
                x_post *= f32(f_tr)
                f_tr = 1.0

        if mt_stdp:
            x_pre *= f32(f_tr)
            x_post *= f32(f_tr)
        else:  # traces keep decaying while plasticity is frozen
            x_pre *= f32(tr**n_steps)
            x_post *= f32(tr**n_steps)
        self.inh[:] = (mi_u, mi_ge, mi_ref, ti_u, ti_ge, ti_ref)
        m_cnt = np.fromiter((a.size for a in mon_spikes), np.int64, n_steps)
        t_cnt = np.fromiter((a.size for a in ts_spikes), np.int64, n_steps)
        empty = np.empty(0, np.int64)
        return self._record(
            ev,
            np.concatenate(mon_spikes) if mon_spikes else empty,
            m_cnt,
            np.concatenate(ts_spikes) if ts_spikes else empty,
            t_cnt,
        )

    # -- exact save / restore (resume without loss)
    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "mon_u": self.mon.u,
            "mon_g": self.mon.g,
            "mon_ref": self.mon.ref,
            "ts_u": self.ts.u,
            "ts_g": self.ts.g,
            "ts_ref": self.ts.ref,
            "inh": self.inh,
            "x_pre_mon": self.x_pre_mon,
            "x_post_ts": self.x_post_ts,
            "x_pre_ll": self.x_pre_ll,
            "x_post_mon": self.x_post_mon,
            "ts_th_offset": self.ts_th_offset,
            "mt_w": self.mt_w,
            "ll_w": self.ll_w,
            "step_count": np.array(self.step_count),
            "rng_state": np.array(json.dumps(self.rng.bit_generator.state)),
        }

    def load_state_dict(self, s: dict[str, np.ndarray]) -> None:
        if "mon_g" not in s:
            raise ValueError(
                "network state from an older flyenv version (no 'mon_g'); start the run afresh"
            )
        for st, pre in ((self.mon, "mon_"), (self.ts, "ts_")):
            st.u[:] = s[pre + "u"]
            st.g[:] = s[pre + "g"]
            st.ref[:] = s[pre + "ref"]
        for name in ("inh", "x_pre_mon", "x_post_ts", "x_pre_ll", "x_post_mon", "mt_w", "ll_w"):
            getattr(self, name)[...] = s[name]
        # States saved before intrinsic plasticity existed have no offsets: all zero.
        self.ts_th_offset[...] = s["ts_th_offset"] if "ts_th_offset" in s else 0.0
        self._llm_csr = None
        self.step_count = int(s["step_count"])
        self.rng.bit_generator.state = json.loads(str(s["rng_state"]))
