"""Whole-brain LIF on a FlyWire-scale synthetic connectome: flyenv (torch) vs Brian2.

Both simulate the SAME network: the ``--scale flywire`` synthetic brain (139,255 neurons,
~15M signed connections, 78 neuropils), LIF relative to rest (tau_m 20 ms, tau_syn 5 ms,
threshold 1 mV, reset 0, refractory 5 ms, dt 0.2 ms), a spike adds 0.000825 mV x signed
synapse count to the postsynaptic current after a 1.8 ms delay, and each neuron gets a
20 Hz Poisson input of its own weight w_i (mV, kicked into V, ignored while refractory;
w_i drawn once and shared). No learning and no LoRA term (Brian2 has no low-rank
synapse; the model's default rank-20 LoRA costs two thin matmuls more per step).

Reported: simulated seconds per wall second of ``run`` only (network construction and
Brian2's code generation/compilation are excluded: a short warm-up run comes first on
both sides), and mean rates as a sanity check that both networks do the same work.

    python benchmarks/bench_whole_brain.py [--sim-ms 100] [--brian2-target cython|numpy]

brian2 is a benchmark-only dependency: pip install '.[bench]'. Last line: ratio=<brian2/ours>.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flyenv.brains.whole_brain import WholeBrainConfig, WholeBrainLIF  # noqa: E402
from flyenv.connectome.synthetic_whole_brain import SCALES, build_connectome  # noqa: E402


def ours(conn, w_in: np.ndarray, cfg: WholeBrainConfig, sim_ms: float, warm_ms: float, seed: int):
    model = WholeBrainLIF(conn.signed_matrix(), conn.readout_counts(), cfg)
    w = torch.as_tensor(w_in, dtype=torch.float32)[:, None]
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model._run(w, gen, int(round(warm_ms / cfg.dt_ms)), 0)
        n_steps = int(round(sim_ms / cfg.dt_ms))
        t0 = time.perf_counter()
        counts = model._run(w, gen, n_steps, 0)
        wall = time.perf_counter() - t0
    rate = float(counts.sum()) / len(w_in) / (sim_ms / 1000.0)
    return wall, rate


def brian2_run(conn, w_in: np.ndarray, cfg: WholeBrainConfig, sim_ms: float, warm_ms: float,
               seed: int, target: str):  # fmt: skip
    import brian2 as b2

    b2.prefs.codegen.target = target
    b2.start_scope()
    b2.seed(seed)
    b2.defaultclock.dt = cfg.dt_ms * b2.ms
    eqs = """
    dv/dt = (I - v) / tau_m : volt (unless refractory)
    dI/dt = -I / tau_s : volt
    w_in : volt
    """
    n = len(w_in)
    g = b2.NeuronGroup(
        n, eqs, threshold="v > theta", reset="v = 0*mV", refractory=cfg.refractory_ms * b2.ms,
        method="exact",
        namespace={"tau_m": cfg.tau_m_ms * b2.ms, "tau_s": cfg.tau_syn_ms * b2.ms,
                   "theta": cfg.threshold_mv * b2.mV},
    )  # fmt: skip
    g.w_in = w_in * b2.mV
    s = b2.Synapses(g, g, "w : volt", on_pre="I_post += w", delay=cfg.delay_ms * b2.ms)
    s.connect(i=conn.pre.astype(np.int32), j=conn.post.astype(np.int32))
    s.w = conn.signed_count.astype(np.float64) * cfg.scale_factor_mv * b2.mV
    p = b2.PoissonInput(g, "v", N=1, rate=cfg.poisson_rate_hz * b2.Hz,
                        weight="w_in * int(not_refractory)")  # fmt: skip
    mon = b2.SpikeMonitor(g, record=False)
    net = b2.Network(g, s, p, mon)
    net.run(warm_ms * b2.ms)
    before = mon.num_spikes
    t0 = time.perf_counter()
    net.run(sim_ms * b2.ms)
    wall = time.perf_counter() - t0
    rate = (mon.num_spikes - before) / n / (sim_ms / 1000.0)
    return wall, rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-ms", type=float, default=100.0, help="simulated time per side")
    ap.add_argument("--warm-ms", type=float, default=5.0)
    ap.add_argument("--scale", choices=sorted(SCALES), default="flywire")
    ap.add_argument("--brian2-target", choices=["cython", "numpy"], default="cython")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    conn = build_connectome(SCALES[args.scale])
    print(f"{args.scale} synthetic brain: {conn.n_neurons} neurons, {conn.pre.size} connections, "
          f"{len(conn.neuropil_names)} neuropils, built in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    rng = np.random.default_rng(args.seed)
    w_in = rng.uniform(0.3, 1.3, conn.n_neurons)
    cfg = WholeBrainConfig(n_rank=0)
    t_ours, r_ours = ours(conn, w_in, cfg, args.sim_ms, args.warm_ms, args.seed)
    t_b2, r_b2 = brian2_run(
        conn, w_in, cfg, args.sim_ms, args.warm_ms, args.seed, args.brian2_target
    )
    sim_s = args.sim_ms / 1000.0
    print(f"{'':28s}{'wall s':>10s}{'sim s / wall s':>16s}{'mean rate Hz':>14s}")
    print(f"{'flyenv (torch, 1 thread)':28s}{t_ours:10.2f}{sim_s / t_ours:16.4f}{r_ours:14.2f}")
    print(
        f"{'brian2 (' + args.brian2_target + ')':28s}{t_b2:10.2f}{sim_s / t_b2:16.4f}{r_b2:14.2f}"
    )
    print(f"ratio={t_b2 / t_ours:.2f}")


if __name__ == "__main__":
    main()
