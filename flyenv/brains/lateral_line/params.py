"""Lateral-line network parameters and the presets ``ll_thesis``, ``ll_learned``, ``ll_fast``."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

MODES = ("ll_thesis", "ll_learned", "ll_selforg", "ll_polarity", "ll_fast")

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

# The thesis preset of the original lateral-line model (docs/research_systems.md), unchanged (sizes
# from the original's README, the rest the original's confirmed baseline; history in
# docs/lateral_line.md).
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


# This project's preset with a weak wired-in map (apply_model_mode explains each change).
_LL_LEARNED: dict[str, Any] = dict(
    **_LL_SHARED,
    n_ll=100,
    n_mon=3200,
    n_ts=300,
    n_training_trials=300,
    trial_duration_s=1.2,
    checkpoint_trials=5,
    # Small STDP steps, a ceiling that never clips (apply_model_mode, point 1).
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

# A map that must be learned (docs/lateral_line.md, "ll_selforg"): no MON->TS topography
# at all (every synapse to a uniformly random TS cell), the ll_learned plasticity (small
# STDP steps, exact dual normalisation every trial: Willshaw & von der Malsburg 1976), and
# TS lateral interactions of a self-organising map (Kohonen 1982): local excitation on
# uniform (global) inhibition, along an open chain of TS cells. Chosen on seeds 1-2 (runs
# listed in docs/lateral_line.md); reported on seeds 1000-1009.
_LL_SELFORG: dict[str, Any] = {
    **_LL_LEARNED,
    "n_training_trials": 900,
    "checkpoint_trials": 10,
    "mon_to_ts_topography_strength": 0.0,  # no wired map at all
    # Near-uniform inhibition: a triangle ten times the chain length (flat to 10 %).
    "ts_lateral_radius": 3000,
    "ts_local_inh_peak_mV": 0.6,
    "ts_lateral_exc_peak_mV": 3.0,
    "ts_lateral_exc_sigma": 8.0,
    "ts_lateral_periodic": False,
}

# ll_selforg's network and plasticity on ll_learned's weak wired polarity (1 of 16 MON->TS
# synapses topographic, sigma 30 TS cells), plus intrinsic plasticity of the TS thresholds
# (a "conscience": DeSieno 1988; Desai et al. 1999), which keeps a few TS places from
# capturing the whole line. Rate chosen on seeds 1-4 (docs/lateral_line.md); reported on
# seeds 1000-1009 (docs/results/lateral_line.md).
_LL_POLARITY: dict[str, Any] = {
    **_LL_SELFORG,
    "mon_to_ts_topography_strength": 0.0625,
    "mon_to_ts_sigma": 30.0,
    "ts_threshold_homeo_mV_per_hz": 0.03,
}

# Overrides that switch plasticity off (the controls): STDP increments, and the homeostatic
# rules (synaptic scaling / normalisation, TS intrinsic plasticity). Together: no weight or
# threshold changes at all.
NO_STDP: dict[str, float] = {
    "ll_mon_apre": 0.0,
    "ll_mon_apost": 0.0,
    "mon_ts_apre": 0.0,
    "mon_ts_apost": 0.0,
}
NO_HOMEOSTASIS: dict[str, float] = {
    "mon_ts_homeo_eta": 0.0,
    "ll_mon_homeo_eta": 0.0,
    "ts_threshold_homeo_mV_per_hz": 0.0,
}
NO_PLASTICITY: dict[str, float] = {**NO_STDP, **NO_HOMEOSTASIS}


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
    # Training positions extend this far beyond both ends of the line (0: the original).
    training_margin_cm: float = 0.0
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
    # causal pairs that each synapse's own EPSP creates (docs/lateral_line.md).
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
    # TS lateral interactions around a ring (the original) or along an open chain of
    # cells (False): the TS sheet that maps the body axis has two ends; the ring exists
    # only in the population-vector decoder (docs/lateral_line.md).
    ts_lateral_periodic: bool = True
    # Shrinking neighbourhood (None = off): the TS-TS excitation starts this wide (sigma
    # in TS cells, same peak) and narrows geometrically to ts_lateral_exc_sigma over the
    # first ts_lateral_anneal_fraction of the training trials (Kohonen 1982: a wide
    # neighbourhood orders the map globally, a narrow one refines it).
    ts_lateral_exc_sigma_start: float | None = None
    ts_lateral_anneal_fraction: float = 0.5
    # Intrinsic plasticity of the TS thresholds (0 = off; mV per Hz of a cell's rate
    # above the TS mean rate, applied after every training trial, clipped to
    # +-ts_threshold_homeo_max_mV): LateralLineNetwork.ts_threshold_homeostasis.
    ts_threshold_homeo_mV_per_hz: float = 0.0
    ts_threshold_homeo_max_mV: float = 6.0
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
        if self.ts_lateral_exc_sigma_start is not None and not self.ts_lateral_exc_sigma_start > 0:
            raise ValueError(
                f"ts_lateral_exc_sigma_start must be > 0 or None, got "
                f"{self.ts_lateral_exc_sigma_start}"
            )
        if not 0.0 < self.ts_lateral_anneal_fraction <= 1.0:
            raise ValueError(
                f"ts_lateral_anneal_fraction must be in (0, 1], got {self.ts_lateral_anneal_fraction}"
            )
        if self.ts_threshold_homeo_mV_per_hz < 0 or self.ts_threshold_homeo_max_mV < 0:
            raise ValueError(
                "ts_threshold_homeo_mV_per_hz and ts_threshold_homeo_max_mV must be >= 0 "
                "(0 switches the intrinsic plasticity off)"
            )
        if (self.eval_x_min_cm is None) != (self.eval_x_max_cm is None):
            raise ValueError("eval_x_min_cm and eval_x_max_cm must be set together")

    def ts_lateral_exc_at(self, trial: int) -> tuple[float, float]:
        """(peak_mV, sigma) of the TS-TS excitation during training trial ``trial``
        (the shrinking-neighbourhood schedule; constant without one)."""
        s0, s1 = self.ts_lateral_exc_sigma_start, self.ts_lateral_exc_sigma
        if s0 is None or self.n_training_trials == 0:
            return self.ts_lateral_exc_peak_mV, s1
        frac = min(1.0, trial / (self.ts_lateral_anneal_fraction * self.n_training_trials))
        return self.ts_lateral_exc_peak_mV, s0 * (s1 / s0) ** frac

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def apply_model_mode(params: NetworkParams, mode: str) -> NetworkParams:
    """Named presets (``ll_thesis``, ``ll_learned``, ``ll_fast``); docs/lateral_line.md.

    ``ll_thesis``: the original's preset unchanged (``_LL_THESIS``: a mostly wired-in MON->TS
    map, the original's STDP steps). ``ll_fast``: the original's smoke test.
    ``ll_learned``: this project's preset, the original's size and confirmed baseline
    changed so that the MON->TS map has to be *learned* (the no-plasticity control runs
    the same preset, seeds, wiring and initial weights):

    1. small STDP steps (0.001 / -0.0003) under a ceiling that never clips (wmax 0.06):
       the original's clipped LTP made STDP degrade the map;
    2. a weak, broad wired-in map (1 of 16 MON->TS synapses topographic, sigma 30);
    3. exact dual synaptic normalisation after every trial (each TS cell's total input
       and each MON cell's total output held at their initial values);
    4. a Mexican-hat TS-TS kernel (excitation 4 mV, sigma 4, on ring inhibition 2.5 mV,
       radius 60);

    and 300 training trials. The experiments behind each choice (seeds 123-128) are in
    docs/lateral_line.md; fresh-seed results in docs/results/lateral_line.md.

    ``ll_selforg``: the map must be learned from nothing (``_LL_SELFORG``): no MON->TS
    topography, the ll_learned plasticity, and self-organising-map lateral interactions
    in TS (local excitation 3 mV, sigma 8 cells, on uniform inhibition 0.6 mV, along an
    open chain), 900 trials. ``--mon-ts-topo`` / ``--mon-ts-sigma`` give it a weak
    wired-in polarity instead.

    ``ll_polarity``: ``ll_selforg`` on ll_learned's weak wired polarity (1 of 16 MON->TS
    synapses topographic, sigma 30), with intrinsic plasticity of the TS thresholds
    (0.03 mV per Hz above the TS mean rate, after every trial; ``_LL_POLARITY``).
    """
    key = str(mode).strip().lower()
    if key == "ll_thesis":
        return replace(params, **_LL_THESIS)
    if key == "ll_learned":
        return replace(params, **_LL_LEARNED)
    if key == "ll_selforg":
        return replace(params, **_LL_SELFORG)
    if key == "ll_polarity":
        return replace(params, **_LL_POLARITY)
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
