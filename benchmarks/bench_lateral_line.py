"""Lateral-line STDP network: flyenv (numba kernel) vs a Brian2 implementation of the same network.

Both run the chosen preset's network (``--preset``, any name in
``flyenv.brains.lateral_line.params.MODES``) with the SAME connectivity, initial weights and LL
rate stream for ``--trials`` training trials (STDP on, the preset's homeostasis and TS
intrinsic plasticity between trials) and the test sweep (STDP frozen), then decode the
test with the same metric.
The Brian2 model has the equations of the original script (LIF with exponential
excitatory and inhibitory currents, refractory period, pair-based MON->TS STDP with
clipped weights, Poisson background, global MON and TS inhibition).

Brian2 runs with its fastest CPU runtime target, Cython (the default here; numpy is
used only if Cython fails, and the reason is printed). ``cpp_standalone`` is not an
option for this protocol: the homeostatic scaling between trials reads and rewrites the
MON->TS weights from Python and the test freezes STDP by changing its namespace, and
standalone mode builds one C++ program for the whole script with no Python between runs.
Brian2's Cython modules are compiled (or loaded from its on-disk cache) by an untimed
warm-up run of the same protocol; the numba kernel likewise, on a tiny network. Timed
runs include building the network on both sides. Each repeat runs both sides back to back
(order swapped every repeat) and gives one ratio.

    python benchmarks/bench_lateral_line.py [--preset NAME] [--trials 20] [--repeats 3]
        [--brian2-target cython|numpy]

brian2 is a benchmark-only dependency: pip install '.[bench]'. Last line:
ratio=<median brian2 wall s / ours> min=.. max=.. repeats=N load=...
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
from _repeat import check_repeats, load_average, report

from flyenv.brains.lateral_line.connectivity import build_connectivity
from flyenv.brains.lateral_line.network import LateralLineNetwork, threshold_offsets_after_trial
from flyenv.brains.lateral_line.params import MODES, NetworkParams, apply_model_mode
from flyenv.metrics import pv_map_quality
from flyenv.stimuli.dipole import (
    ContinuousSweep,
    ContinuousSweepConfig,
    DipoleStimulusConfig,
    TrainingSweep,
    TrainingSweepConfig,
)


def stimulus(p: NetworkParams, n_trials: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(train rates, test rates, steps per trial) from the shared stimulus code."""
    stim = DipoleStimulusConfig(line_length_cm=p.ll_body_length_cm, n_neuromasts=p.n_ll)
    trial_steps = int(round(p.trial_duration_s / p.dt_s))
    train = TrainingSweep(
        stim,
        TrainingSweepConfig(
            dt_s=p.dt_s,
            hold_s=p.training_position_hold_s,
            speed_cm_s=p.speed_cm_s,
            fixed_distance=p.training_fixed_distance,
            distance_min_cm=p.training_distance_min_cm,
            distance_max_cm=p.training_distance_max_cm,
        ),
        n_trials * trial_steps,
        p.seed,
    ).window(0, n_trials * trial_steps)
    sweep = ContinuousSweep(
        stim,
        ContinuousSweepConfig(
            dt_s=p.dt_s, speed_cm_s=p.speed_cm_s, distance_cm=p.distance_cm, path_cm=p.test_path_cm
        ),
        seed=p.seed + 999,
    )
    test = next(sweep.chunks(sweep.total_steps))
    return train["rates_hz"], test, trial_steps


def warm_up() -> float:
    """Compile (or load the cached) numba kernel on a tiny network; returns seconds."""
    t0 = time.perf_counter()
    tiny = NetworkParams(n_ll=4, n_mon=8, n_ts=4, mon_to_ts_out_degree=2)
    LateralLineNetwork(tiny).run(np.full((5, 4), 100.0), plastic=True)
    return time.perf_counter() - t0


def run_ours(
    p: NetworkParams, train: np.ndarray, test: dict, trial_steps: int, backend: str = "numba"
) -> dict:
    t0 = time.perf_counter()
    net = LateralLineNetwork(p, backend=backend)
    for k in range(train.shape[0] // trial_steps):
        rec = net.run(train[k * trial_steps : (k + 1) * trial_steps], plastic=True)
        net.ts_threshold_homeostasis(np.bincount(rec.ts_i, minlength=p.n_ts), trial_steps * p.dt_s)
        if (k + 1) % p.mon_ts_homeo_every_trials == 0:
            net.homeostasis()
    rec = net.run(test["rates_hz"], plastic=False)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "ts_t": rec.ts_t, "ts_i": rec.ts_i, "w": net.mon_ts_weights()}


def homeostasis(
    w: np.ndarray,
    post: np.ndarray,
    p: NetworkParams,
    init_total: np.ndarray,
    init_out: np.ndarray,
) -> np.ndarray:
    """MON->TS homeostatic scaling, the same rule as the flyenv network: towards the
    current population mean (the original), the initial mean, or each cell's initial
    total, with the relative step clipped to mon_ts_homeo_max_step."""
    inc = np.bincount(post, w, minlength=p.n_ts)
    nz = inc > 1e-12
    if p.mon_ts_homeo_fixed_target and p.mon_ts_homeo_per_cell:
        target = init_total[nz]
    elif p.mon_ts_homeo_fixed_target:
        target = init_total.mean()
    else:
        target = inc[nz].mean()
    step = max(0.0, p.mon_ts_homeo_max_step)
    scale = np.ones(p.n_ts)
    scale[nz] = np.clip(1 + p.mon_ts_homeo_eta * (target / inc[nz] - 1), 1 - step, 1 + step)
    w = np.clip(w * scale[post], 0, p.mon_ts_wmax)
    if p.mon_ts_norm_presynaptic:  # each MON cell's outgoing total back to its initial one
        rows = w.reshape(p.n_mon, p.mon_to_ts_out_degree)
        out = rows.sum(axis=1)
        sc = np.ones(p.n_mon)
        sc[out > 1e-12] = init_out[out > 1e-12] / out[out > 1e-12]
        w = np.clip(rows * sc[:, None], 0, p.mon_ts_wmax).ravel()
    return w


def run_brian2(
    p: NetworkParams, train: np.ndarray, test: dict, trial_steps: int, target: str
) -> dict:
    import brian2 as b2

    t0 = time.perf_counter()
    b2.prefs.codegen.target = target
    b2.start_scope()
    b2.defaultclock.dt = p.dt_s * b2.second
    conn = build_connectivity(p)
    ref = LateralLineNetwork(p)  # only for identical initial weights
    n_train = train.shape[0]
    all_rates_hz = np.vstack([train, test["rates_hz"]])
    ta = b2.TimedArray(all_rates_hz * b2.Hz, dt=p.dt_s * b2.second)
    ll = b2.PoissonGroup(p.n_ll, rates="ta(t, i)", namespace={"ta": ta})
    eqs = """
    dv/dt = (El - v + ge - gi) / tau_m : volt (unless refractory)
    dge/dt = -ge / tau_s : volt
    dgi/dt = -gi / tau_s : volt
    th_off : volt (constant)
    """
    ns = {
        "Vth": p.vth_mV * b2.mV,
        "Vreset": p.vreset_mV * b2.mV,
        "El": p.el_mV * b2.mV,
        "tau_m": p.tau_m_ms * b2.ms,
        "tau_s": p.tau_s_ms * b2.ms,
    }
    kw = {
        "threshold": "v > Vth + th_off",  # th_off: TS intrinsic plasticity (0 elsewhere)
        "reset": "v = Vreset",
        "refractory": p.tau_ref_ms * b2.ms,
        "method": "euler",
        "namespace": ns,
    }
    mon = b2.NeuronGroup(p.n_mon, eqs, **kw)
    ts = b2.NeuronGroup(p.n_ts, eqs, **kw)
    mon_inh = b2.NeuronGroup(1, eqs, **kw)
    ts_inh = b2.NeuronGroup(1, eqs, **kw)
    mon.v = p.el_mV * b2.mV + ref.mon.u * b2.mV
    ts.v = p.el_mV * b2.mV + ref.ts.u * b2.mV
    mon_inh.v = ts_inh.v = p.el_mV * b2.mV

    s_ll = b2.Synapses(ll, mon, "w : volt", on_pre="ge_post += w")
    s_ll.connect(i=conn.ll_mon_i, j=conn.ll_mon_j)
    s_ll.w = ref.ll_mon_weights_mV() * b2.mV
    s_mt = b2.Synapses(
        mon,
        ts,
        model="""w : 1
        dapre/dt = -apre/taupre : 1 (event-driven)
        dapost/dt = -apost/taupost : 1 (event-driven)""",
        on_pre="""ge_post += gain*w*mV
        apre += Apre
        w = clip(w + apost, 0, wmax)""",
        on_post="""apost += Apost
        w = clip(w + apre, 0, wmax)""",
        namespace={
            "taupre": p.mon_ts_stdp_tau_ms * b2.ms,
            "taupost": p.mon_ts_stdp_tau_ms * b2.ms,
            "Apre": p.mon_ts_apre,
            "Apost": p.mon_ts_apost,
            "wmax": p.mon_ts_wmax,
            "gain": p.mon_ts_gain_mV,
        },
    )
    s_mt.connect(i=conn.mon_ts_i, j=conn.mon_ts_j)
    s_mt.w = ref.mon_ts_weights()
    init_total = np.bincount(conn.mon_ts_j, ref.mon_ts_weights(), minlength=p.n_ts)
    init_out = ref.mon_ts_weights().reshape(p.n_mon, p.mon_to_ts_out_degree).sum(axis=1)
    bg_mon = b2.PoissonGroup(p.n_mon, rates=p.bg_rate_mon_hz * b2.Hz)
    bg_ts = b2.PoissonGroup(p.n_ts, rates=p.bg_rate_ts_hz * b2.Hz)
    s_bgm = b2.Synapses(bg_mon, mon, on_pre=f"ge_post += {p.bg_w_mon_mV}*mV")
    s_bgm.connect(j="i")
    s_bgt = b2.Synapses(bg_ts, ts, on_pre=f"ge_post += {p.bg_w_ts_mV}*mV")
    s_bgt.connect(j="i")
    s_m2i = b2.Synapses(mon, mon_inh, on_pre=f"ge_post += {p.mon_to_global_inh_drive_mV}*mV")
    s_m2i.connect(i=np.flatnonzero(conn.mon_to_inh), j=0)
    s_i2m = b2.Synapses(mon_inh, mon, on_pre=f"gi_post += {p.global_inh_to_mon_mV}*mV")
    s_i2m.connect()
    src, dst = np.nonzero(conn.ts_lateral_mV)
    s_lat = b2.Synapses(ts, ts, "w : volt", on_pre="gi_post += w")
    s_lat.connect(i=src, j=dst)
    s_lat.w = conn.ts_lateral_mV[src, dst] * b2.mV
    extra = []
    if p.use_ts_feedback_inh:
        s_t2i = b2.Synapses(ts, ts_inh, on_pre=f"ge_post += {p.ts_to_global_inh_drive_mV}*mV")
        s_t2i.connect(i=np.flatnonzero(conn.ts_to_inh), j=0)
        s_i2t = b2.Synapses(ts_inh, ts, on_pre=f"gi_post += {p.global_inh_to_ts_mV}*mV")
        s_i2t.connect()
        extra = [s_t2i, s_i2t]
    sp_ts = b2.SpikeMonitor(ts)
    sp_mon = b2.SpikeMonitor(mon)
    sp_ll = b2.SpikeMonitor(ll)
    net = b2.Network(
        ll, mon, ts, mon_inh, ts_inh, s_ll, s_mt, bg_mon, bg_ts, s_bgm, s_bgt, s_m2i, s_i2m, s_lat,
        sp_ts, sp_mon, sp_ll, *extra,
    )  # fmt: skip
    counts_before = np.zeros(p.n_ts)
    for k in range(n_train // trial_steps):  # trial by trial, as the original
        net.run(p.trial_duration_s * b2.second)
        if p.ts_threshold_homeo_mV_per_hz > 0:  # the flyenv rule, between trials
            counts = np.asarray(sp_ts.count[:], dtype=float)
            rate = (counts - counts_before) / p.trial_duration_s
            counts_before = counts
            off = threshold_offsets_after_trial(
                np.asarray(ts.th_off[:] / b2.mV), rate, p.ts_threshold_homeo_mV_per_hz,
                p.ts_threshold_homeo_max_mV,
            )  # fmt: skip
            ts.th_off = off.astype(float) * b2.mV
        if p.mon_ts_homeo_eta > 0 and (k + 1) % p.mon_ts_homeo_every_trials == 0:
            s_mt.w = homeostasis(np.asarray(s_mt.w[:]), conn.mon_ts_j, p, init_total, init_out)
    s_mt.namespace["Apre"] = 0.0
    s_mt.namespace["Apost"] = 0.0
    net.run(test["x_cm"].size * p.dt_s * b2.second)
    wall = time.perf_counter() - t0
    t_steps = np.round(np.asarray(sp_ts.t / b2.second) / p.dt_s).astype(int) - n_train
    keep = t_steps >= 0
    return {
        "wall_s": wall,
        "ts_t": t_steps[keep],
        "ts_i": np.asarray(sp_ts.i)[keep],
        "w": np.asarray(s_mt.w[:]),
    }


def summarize(name: str, r: dict, p: NetworkParams, test: dict) -> None:
    n = test["x_cm"].size
    counts = np.zeros((n, p.n_ts))
    np.add.at(counts, (r["ts_t"], r["ts_i"]), 1.0)
    q = pv_map_quality(counts, test["x_cm"], p.dt_s, n_pos_bins=min(100, p.n_ts))
    print(
        f"{name:>7}: wall {r['wall_s']:8.2f} s | TS test spikes {r['ts_t'].size:6d} | mean MON->TS w "
        f"{r['w'].mean():.5f} | sigma_theta {q.sigma_theta:.3f} valid {q.valid_fraction:.3f}"
    )


def brian2_target(requested: str, p: NetworkParams, train, test, trial_steps) -> str:
    """Warm up (compile or load Brian2's cached code) with ``requested``; fall back to
    numpy only if that fails, printing why. Returns the target that works."""
    # the full-size inputs: Brian2 compiles the TimedArray for its exact shape, so a
    # shorter warm-up would leave a compilation inside the first timed run
    t0 = time.perf_counter()
    try:
        run_brian2(p, train, test, trial_steps, requested)
    except Exception as exc:  # noqa: BLE001 - any codegen failure means: fall back
        if requested == "numpy":
            raise
        print(f"brian2 {requested} failed ({type(exc).__name__}: {exc}); falling back to numpy")
        requested = "numpy"
        run_brian2(p, train, test, trial_steps, requested)
    print(f"brian2 {requested} warm-up (codegen/compile or cache load, not counted): "
          f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
    return requested


def main() -> None:
    default_preset = "ll_learned" if "ll_learned" in MODES else "ll_thesis"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=default_preset, choices=MODES)
    ap.add_argument("--trials", type=int, default=20, help="training trials")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of both sides")
    ap.add_argument("--brian2-target", default="cython", choices=["cython", "numpy"])
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument(
        "--with-numpy", action="store_true", help="also time flyenv's step-by-step numpy path"
    )
    args = ap.parse_args()
    check_repeats(args.repeats)
    print(f"load average at start: {load_average()}")
    p = replace(apply_model_mode(NetworkParams(), args.preset), seed=args.seed)
    train, test, trial_steps = stimulus(p, args.trials)
    print(
        f"{args.preset} network: n_ll={p.n_ll} n_mon={p.n_mon} n_ts={p.n_ts}; "
        f"{args.trials} trials of {p.trial_duration_s:g} s + test sweep of "
        f"{test['x_cm'].size * p.dt_s:g} s; homeostasis eta {p.mon_ts_homeo_eta:g}"
    )
    print(f"numba warm-up (compile or cache load, not counted): {warm_up():.2f} s")
    target = brian2_target(args.brian2_target, p, train, test, trial_steps)
    ours_runs, b2_runs = [], []
    for k in range(args.repeats):
        if k % 2 == 0:
            ours_runs.append(run_ours(p, train, test, trial_steps))
            b2_runs.append(run_brian2(p, train, test, trial_steps, target))
        else:
            b2_runs.append(run_brian2(p, train, test, trial_steps, target))
            ours_runs.append(run_ours(p, train, test, trial_steps))
        summarize("flyenv", ours_runs[-1], p, test)
        summarize("brian2", b2_runs[-1], p, test)
    if args.with_numpy:
        summarize("numpy", run_ours(p, train, test, trial_steps, backend="numpy"), p, test)
    walls = {n: [r["wall_s"] for r in rs] for n, rs in (("flyenv", ours_runs), ("brian2", b2_runs))}
    for n, w in walls.items():
        print(f"{n}: median wall {statistics.median(w):.2f} s (min {min(w):.2f}, max {max(w):.2f})")
    print(f"brian2 target: {target}")
    report(
        [b / o for o, b in zip(walls["flyenv"], walls["brian2"], strict=True)],
        f"wall ratio brian2 ({target}) / flyenv (numba), {args.preset}, same network",
    )


if __name__ == "__main__":
    main()
