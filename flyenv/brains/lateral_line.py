"""LL -> MON -> TS spiking network with STDP for the fish lateral line (SPEC section 9).

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
  (flyenv/brains/lateral_line_kernels.py) on preallocated arrays: no per-step Python.
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
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

MODES = ("ll_thesis", "ll_learned", "ll_fast")

# Values both full-size presets share: the original's confirmed baseline for the input
# stages, the inhibition, the background and the training/test stimulus.
_LL_SHARED: dict[str, Any] = dict(
    mon_ts_w_init=0.020,
    mon_ts_w_jitter=0.005,
    ll_mon_w_mean_mV=11.5,
    ll_to_mon_in_degree=10,
    ll_to_mon_topography_strength=0.8,
    mon_to_ts_out_degree=16,
    mon_ts_gain_mV=100.0,
    mon_to_global_inh_p=0.03,
    global_inh_to_mon_mV=1.15,
    use_ts_feedback_inh=True,
    ts_to_global_inh_p=0.08,
    ts_to_global_inh_drive_mV=0.25,
    global_inh_to_ts_mV=0.2,
    bg_rate_mon_hz=22.0,
    bg_rate_ts_hz=20.0,
    bg_w_ts_mV=0.85,
    training_noise_scale_early=0.0,
    training_noise_scale_late=0.0,
    training_bidirectional=False,
    training_fixed_distance=False,
    training_distance_min_cm=0.8,
    training_distance_max_cm=0.8,
    speed_cm_s=5.0,
    test_path_cm=5.0,
    distance_cm=0.8,
)

# The seed's thesis preset: sizes and trial count from the seed's README (n_ll 100, n_mon
# 3200, n_ts 300, 1000 training trials); the other values are the original's confirmed
# baseline (its BASELINE.md: LL->MON topography 0.8, MON->TS topography 0.2 with sigma 10,
# gain 100 mV, MON->TS homeostasis 0.02; its params.py had lost them: 0.08 / 0.08 / 72 mV
# leaves TS silent). Unchanged by this project: the MON->TS map is mostly wired in.
_LL_THESIS: dict[str, Any] = dict(
    **_LL_SHARED,
    n_ll=100,
    n_mon=3200,
    n_ts=300,
    n_training_trials=1000,
    trial_duration_s=1.2,
    checkpoint_trials=5,
    mon_ts_apre=0.01,
    mon_ts_apost=-0.006,
    mon_ts_wmax=0.028,
    mon_to_ts_topography_strength=0.2,
    mon_to_ts_sigma=10.0,
    mon_ts_homeo_eta=0.02,
    ts_lateral_radius=18,
    ts_local_inh_peak_mV=0.9,
)


@dataclass(frozen=True)
class NetworkParams:
    """Every knob of the original ``NetworkParams`` (same names, so params.json matches)."""

    # Architecture
    n_ll: int = 100
    n_mon: int = 3200
    n_ts: int = 300
    # Time step and trial structure
    dt_s: float = 0.001
    trial_duration_s: float = 1.2
    n_training_trials: int = 200
    checkpoint_trials: int = 10
    pv_eval_every_checkpoints: int = 2
    checkpoint_save_every_n_checkpoints: int = 10
    training_position_hold_s: float = 0.05
    training_noise_scale_early: float = 0.0
    training_noise_scale_late: float = 0.0
    test_ll_noise_hz: float = 0.0
    training_noise_switch_fraction: float = 0.5
    training_ordered_sweeps: bool = True
    training_fixed_distance: bool = True
    training_bidirectional: bool = False
    training_distance_min_cm: float = 0.8
    training_distance_max_cm: float = 1.8
    # Stimulus and test path
    speed_cm_s: float = 5.0
    distance_cm: float = 1.5
    direction: float = 1.0
    ll_rate_mode: str = "raw"
    ll_rate_baseline_subtract_hz: float = 0.0
    ll_rate_gain: float = 1.0
    ll_body_length_cm: float = 4.0
    test_path_cm: float = 4.0
    eval_x_min_cm: float | None = None
    eval_x_max_cm: float | None = None
    seed: int = 123
    # LIF constants (MON and TS)
    vth_mV: float = -54.0
    vreset_mV: float = -60.0
    el_mV: float = -74.0
    tau_ref_ms: float = 2.0
    tau_m_ms: float = 10.0
    tau_s_ms: float = 2.0
    # LL -> MON connectivity
    p_ll_to_mon: float = 0.03
    ll_to_mon_in_degree: int = 3
    ll_to_mon_sigma: float = 15.0
    ll_to_mon_topography_strength: float = 0.01
    ll_mon_w_mean_mV: float = 7.0
    ll_mon_w_jitter_mV: float = 3.0
    # LL -> MON STDP (optional)
    ll_mon_use_stdp: bool = False
    ll_mon_apre: float = 0.01
    ll_mon_apost: float = -0.0105
    ll_mon_wmax_mV: float = 20.0
    ll_mon_w_init_mV: float = 10.0
    ll_mon_w_jitter_stdp_mV: float = 2.0
    ll_mon_homeo_eta: float = 0.0
    ll_mon_homeo_every_trials: int = 10
    # MON -> TS connectivity
    mon_to_ts_out_degree: int = 16
    mon_to_ts_sigma: float = 120.0
    mon_to_ts_topography_strength: float = 0.05
    # MON -> TS STDP
    mon_ts_apre: float = 0.02
    mon_ts_apost: float = -0.021
    mon_ts_wmax: float = 0.045
    mon_ts_w_init: float = 0.020
    mon_ts_w_jitter: float = 0.010
    mon_ts_homeo_eta: float = 0.0
    mon_ts_homeo_every_trials: int = 10
    # False: scale towards the current population mean of incoming totals (the
    # original); True: towards the initial population mean, a fixed target (synaptic
    # normalisation: synapses compete instead of all growing; it also equalises the TS
    # cells' totals, see mon_ts_homeo_per_cell).
    mon_ts_homeo_fixed_target: bool = False
    # With a fixed target: each TS cell towards its own initial total (True) instead of
    # the initial population mean (False), so homeostasis alone changes no weight.
    mon_ts_homeo_per_cell: bool = False
    # Also hold each MON cell's total outgoing MON->TS weight at its initial value (after
    # the TS-side scaling): the dual pre/post normalisation of Willshaw & von der
    # Malsburg's map models, so MON cells too must choose which TS cells to drive.
    mon_ts_norm_presynaptic: bool = False
    # Largest relative change of one homeostatic scaling step (the original clips the
    # scale to [0.9, 1.1]); a large value with eta 1 and a fixed target makes the
    # scaling an exact normalisation of each TS cell's total incoming weight.
    mon_ts_homeo_max_step: float = 0.1
    # Time constant of both MON->TS STDP traces (the original: 20 ms). Longer traces
    # weigh the stimulus-driven co-activation (50 ms holds) more against the few-ms
    # causal pairs that each synapse's own EPSP creates (see apply_model_mode).
    mon_ts_stdp_tau_ms: float = 20.0
    mon_ts_gain_mV: float = 30.0
    keep_mon_ts_stdp_during_test: bool = False
    test_using_held_snapshots: bool = False
    # Test sweeps after training (each with its own LL noise; plasticity frozen): the
    # across-sweep spread per position bin is delta_trial. The seed ran one.
    n_test_sweeps: int = 10
    # Inhibition and background
    mon_to_global_inh_p: float = 0.06
    mon_to_global_inh_drive_mV: float = 0.5
    global_inh_to_mon_mV: float = 1.4
    ts_lateral_radius: int = 14
    ts_local_inh_peak_mV: float = 1.0
    # Short-range TS-TS excitation (not in the original; 0 = off): with the ring
    # inhibition it makes a Mexican-hat lateral kernel, so TS responds with a local bump
    # and STDP can refine / self-organise a map (see ts_lateral_kernel_mV).
    ts_lateral_exc_peak_mV: float = 0.0
    ts_lateral_exc_sigma: float = 3.0
    use_ts_feedback_inh: bool = False
    ts_to_global_inh_p: float = 0.12
    ts_to_global_inh_drive_mV: float = 0.35
    global_inh_to_ts_mV: float = 0.8
    bg_rate_mon_hz: float = 22.0
    bg_rate_ts_hz: float = 12.0
    bg_w_mon_mV: float = 1.5
    bg_w_ts_mV: float = 0.60

    def __post_init__(self) -> None:
        for name in (
            "n_ll",
            "n_mon",
            "n_ts",
            "ll_to_mon_in_degree",
            "mon_to_ts_out_degree",
            "n_test_sweeps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "dt_s",
            "trial_duration_s",
            "tau_m_ms",
            "tau_s_ms",
            "speed_cm_s",
            "mon_ts_stdp_tau_ms",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.n_training_trials < 0:
            raise ValueError(f"n_training_trials must be >= 0, got {self.n_training_trials}")
        if not self.distance_cm > 0:
            raise ValueError(f"distance_cm must be > 0, got {self.distance_cm}")
        if self.ll_rate_mode not in ("raw", "modulation"):
            raise ValueError(
                f"ll_rate_mode must be 'raw' or 'modulation', got {self.ll_rate_mode!r}"
            )
        if not self.vreset_mV < self.vth_mV:
            raise ValueError("vreset_mV must be below vth_mV")
        if (self.eval_x_min_cm is None) != (self.eval_x_max_cm is None):
            raise ValueError("eval_x_min_cm and eval_x_max_cm must be set together")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def apply_model_mode(params: NetworkParams, mode: str) -> NetworkParams:
    """Named presets (``ll_thesis``, ``ll_learned``, ``ll_fast``).

    ``ll_thesis`` is the seed's preset unchanged (``_LL_THESIS``: a mostly wired-in
    MON->TS map, the original's STDP steps). ``ll_fast`` is the original's smoke test.
    ``ll_learned`` (this project's preset; it was called ``ll_thesis`` before) keeps the
    original's network size and its confirmed baseline (its BASELINE.md: LL->MON
    topography 0.8, gain 100 mV, the STDP trace time constant 20 ms) but is changed so
    that the MON->TS map has to be *learned*; the control (``--disable-all-stdp`` / ``--with-control``) runs the
    same preset, seeds, wiring and initial weights. Changes relative to the original and
    why (measured with this code, seeds 123-125, learned vs no-plasticity control):

    1. Why STDP degraded the original baseline (MON->TS topography 0.2, sigma 10, STDP
       0.01 / -0.006, wmax 0.028, w_init 0.020-0.025; control 0.28-0.35 rad, STDP
       0.56-0.61 after 1000 trials): the hard upper bound. Each LTP event adds up to
       0.01, but the weights start only 0.003-0.008 below wmax, so LTP is clipped while
       LTD is not; the synapses with the most pre/post pairings (the topographic ones)
       drift down most. Seed 123, 100 trials: mean weight of topographic synapses (target
       within 15 TS cells of the MON cell's place) / far ones (> 60) = 0.73, 15 % of all
       weights at 0, TS 30 -> 5.6 Hz, sigma_theta 0.55 (control 0.32). With wmax 0.2 the
       ratio stays 1.00 (but TS runs away to 295 Hz); with 10x smaller steps
       (0.001 / -0.0006) it is 1.01 and sigma_theta 0.28 (control 0.32): no damage, but
       no learning either, since the wired map is already about as good as this decoder
       gets. Unclipped, the rule is net LTP for co-active pairs (pair-probe LTP/LTD
       1.22 topographic, 1.27 random: the causal pairs made by each synapse's own 2 mV
       EPSP potentiate random synapses as much as the map ones).
    2. So the preset has a weak wired-in map the control cannot decode well: 1 of the 16
       MON->TS synapses of each MON cell topographic (strength 0.0625) with a broad
       spread (sigma 30 TS cells), the rest random. Tried (LTD -0.0006, 300 trials,
       learned vs control, seeds 123 / 124 / 125): sigma 60: 0.74 / 0.57 / 0.62 vs
       1.07 / 0.84 / 0.68; sigma 45: 0.92 / 0.54 / 0.51 vs 0.79 / 0.73 / 0.54; sigma 30:
       0.52 / 0.47 / 0.49 vs 0.69 / 0.59 / 0.43. These choices were made on seeds 123-125
       (the test metric); seeds 126-128 were kept aside as a check (README).
    3. Learning: small STDP steps (0.001 / -0.0003, wmax 0.06, so the ceiling never
       clips; LTD -0.0006 learned less), and exact dual synaptic normalisation after
       every trial (``mon_ts_homeo_eta`` 1, ``mon_ts_homeo_fixed_target``,
       ``mon_ts_homeo_per_cell``, ``mon_ts_homeo_max_step`` 10,
       ``mon_ts_norm_presynaptic``): each TS cell keeps its own initial total input and
       each MON cell its own initial total output, so synapses compete on both sides and
       only the relative profile is learned (as in Willshaw & von der Malsburg's map
       models). With STDP off both scalings are no-ops, so the homeostasis-only control
       equals the no-plasticity one. Normalising only the TS side to the initial
       population *mean* looked better than the control (seeds 123-128: 0.52 / 0.45 /
       0.39 / 0.50 / 0.41 / 0.56 vs 0.69 / 0.59 / 0.43 / 0.58 / 0.48 / 0.53) but that gain
       came from equalising the TS totals (homeostasis-only control: 0.68 / 0.42 / 0.45 /
       0.51 / 0.43 / 0.40); to each cell's own total, TS side only: 0.59 / 0.43 / 0.59 /
       0.49 / 0.51 / 0.69 (no gain); dual: 0.43 / 0.52 / 0.35 / 0.38 / 0.46 / 0.46, better
       than the control on all six seeds (this variant was run once, on all six).
    4. A Mexican-hat TS-TS kernel (the seed has only the inhibitory part): short-range
       excitation 4 mV (Gaussian sigma 4 TS cells) on stronger, wider ring inhibition
       (2.5 mV, radius 60), so a stimulus evokes a local TS bump and neighbouring TS cells
       learn neighbouring places (a self-organising map). Without the excitation, or with
       stronger inhibition only, STDP did not beat the control (seed 123, sigma 60,
       LTD -0.0006, 300 trials: inhibition 2.5 / r 60 with excitation 2 mV (net inhibitory
       everywhere) 1.02 vs control 1.05; inhibition 4.0 with excitation 2 mV 1.37 vs
       1.21; excitation 4 mV 0.74 vs 1.07). Longer STDP traces (80 ms) did not help.

    Trials: 300 (with TS-side normalisation only, 1000 gave no further gain: seed 123,
    0.52 at 300, 0.55 at 1000). Measured on fresh seeds 1000-1009 (STDP vs no plasticity:
    no reliable sigma_theta gain): docs/results/lateral_line.md.
    """
    key = str(mode).strip().lower()
    if key == "ll_thesis":
        return replace(params, **_LL_THESIS)
    if key == "ll_learned":
        return replace(
            params,
            **_LL_SHARED,
            n_ll=100,
            n_mon=3200,
            n_ts=300,
            n_training_trials=300,
            trial_duration_s=1.2,
            checkpoint_trials=5,
            # Small STDP steps, a ceiling that never clips (see 1. and 3. above).
            mon_ts_apre=0.001,
            mon_ts_apost=-0.0003,
            mon_ts_wmax=0.06,
            # LL->MON topography 0.8 and gain 100 mV as in _LL_SHARED; MON->TS: a weak,
            # broad wired-in map instead of the thesis's 0.2 / sigma 10.
            mon_to_ts_topography_strength=0.0625,
            mon_to_ts_sigma=30.0,
            # Exact normalisation of each TS cell's total input after every trial.
            mon_ts_homeo_eta=1.0,
            mon_ts_homeo_every_trials=1,
            mon_ts_homeo_fixed_target=True,
            mon_ts_homeo_max_step=10.0,
            mon_ts_homeo_per_cell=True,  # homeostasis alone changes no weight
            mon_ts_norm_presynaptic=True,  # and each MON cell's outgoing total too
            # Mexican-hat TS-TS kernel: local excitation on wider ring inhibition.
            ts_lateral_radius=60,
            ts_local_inh_peak_mV=2.5,
            ts_lateral_exc_peak_mV=4.0,
            ts_lateral_exc_sigma=4.0,
        )
    if key == "ll_fast":
        return replace(
            params,
            n_mon=800,
            n_ts=80,
            n_training_trials=40,
            trial_duration_s=0.8,
            checkpoint_trials=10,
        )
    raise ValueError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}")


# ---------------------------------------------------------------- connectivity
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


def ring_inhibition_kernel_mV(n: int, radius: int, peak_mV: float) -> np.ndarray:
    """Dense (src, dst) triangular lateral inhibition on a ring, no self-connection."""
    idx = np.arange(n)
    d = np.abs(idx[:, None] - idx[None, :])
    d = np.minimum(d, n - d)
    r = max(int(radius), 1)
    k = peak_mV * (1.0 - d / r)
    k[(d > r) | (d == 0)] = 0.0
    return k.astype(np.float32)


def ts_lateral_kernel_mV(
    n: int, radius: int, inh_peak_mV: float, exc_peak_mV: float, exc_sigma: float
) -> np.ndarray:
    """Signed (src, dst) TS-TS kernel in mV of inhibition: the triangular ring
    inhibition minus a Gaussian short-range excitation exc_peak * exp(-d^2 / 2 sigma^2)
    (ring distance d >= 1, no self-connection). Negative entries are excitatory; with
    exc_peak 0 this is exactly :func:`ring_inhibition_kernel_mV`."""
    k = ring_inhibition_kernel_mV(n, radius, inh_peak_mV).astype(np.float64)
    if exc_peak_mV != 0.0:
        if not exc_sigma > 0:
            raise ValueError(f"ts_lateral_exc_sigma must be > 0, got {exc_sigma}")
        idx = np.arange(n)
        d = np.abs(idx[:, None] - idx[None, :])
        d = np.minimum(d, n - d)
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
        ),
    )


def _pair_mean(i: np.ndarray, j: np.ndarray, w: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """Dense pair matrix holding the mean of the per-synapse values of each pair."""
    out = np.zeros(mult.shape, np.float64)
    np.add.at(out, (i, j), w)
    return (out / np.maximum(mult, 1.0)).astype(np.float32)


# ------------------------------------------------------------------- dynamics
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


class LateralLineNetwork:
    """The LL->MON->TS network; call :meth:`run` on chunks of LL rates.

    MON->TS synapses are stored per synapse as an (n_mon, out_degree) matrix (pre
    spikes touch only their own row of 16 weights), with a CSR index by target for
    post spikes, so duplicates of a (pre, post) pair stay separate synapses as in Brian2.

    ``backend="numba"`` (default) runs each chunk in one compiled kernel
    (:mod:`flyenv.brains.lateral_line_kernels`); ``"numpy"`` is the step-by-step
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
        self.rng = np.random.default_rng([p.seed, 71])
        self.ll_homeo_target = self._ll_incoming().mean() if p.ll_mon_use_stdp else 0.0
        self.mt_out_target = self.mt_w.sum(axis=1, dtype=np.float64)
        self.mt_homeo_target_cell = self._mt_incoming()
        self.mt_homeo_target = float(self.mt_homeo_target_cell.mean())
        self.step_count = 0
        self._llm_csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

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
        from flyenv.brains.lateral_line_kernels import simulate_chunk

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
            t_idx = (tu > th).nonzero()[0]
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
        self._llm_csr = None
        self.step_count = int(s["step_count"])
        self.rng.bit_generator.state = json.loads(str(s["rng_state"]))
