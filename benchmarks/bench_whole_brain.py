"""Whole-brain LIF on a FlyWire-scale synthetic connectome: flyenv (torch) vs Brian2.

Both simulate the SAME network: the ``--scale flywire`` synthetic brain (139,255 neurons,
~15M signed connections, 78 neuropils), LIF relative to rest (tau_m 20 ms, tau_syn 5 ms,
threshold 1 mV, reset 0, refractory 5 ms, dt 0.2 ms), a spike adds 0.000825 mV x signed
synapse count to the postsynaptic current after a 1.8 ms delay, and each neuron gets a
20 Hz Poisson input of its own weight w_i (mV, kicked into V, ignored while refractory;
w_i drawn once and shared). Both start every timed run at rest (the model simulates each
data frame from rest; Brian2 restores a stored state, untimed). No learning and no LoRA term (Brian2 has no low-rank
synapse; the model's default rank-20 LoRA costs two thin matmuls more per step).

Reported: simulated seconds per wall second and per CPU second of the simulation only
(network construction and Brian2's code generation/compilation are excluded: a short
warm-up run comes first on both sides), best of ``--repeats`` alternating runs, and mean
rates as a check that both networks do the same work (they differ by the few percent
that the schedule of Brian2's PoissonInput, applied after the state update, implies). The last line's ratio uses CPU
time: on a shared machine wall time mostly measures the other processes' load (the wall
ratio is printed too; on an idle machine the two agree).

    python benchmarks/bench_whole_brain.py [--sim-ms 100] [--repeats 3] [--brian2-target cython|numpy]

Brian2 runs with Cython code generation (its fastest runtime target; ``cpp_standalone``
cannot restore the stored rest state between timed runs inside one script). brian2 is a
benchmark-only dependency: pip install '.[bench]'. Last line:
ratio=<median over repeats of brian2 CPU s / ours CPU s> min=.. max=.. repeats=N load=...
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _repeat import check_repeats, load_average, report

from flyenv.brains.whole_brain.network import WholeBrainConfig, WholeBrainLIF
from flyenv.connectome.synthetic_whole_brain import SCALES, build_connectome


class Ours:
    def __init__(self, conn, w_in: np.ndarray, cfg: WholeBrainConfig, seed: int):
        self.model = WholeBrainLIF(conn.signed_matrix(), conn.readout_counts(), cfg)
        self.w = torch.as_tensor(w_in, dtype=torch.float32)[:, None]
        self.gen = torch.Generator().manual_seed(seed)
        self.dt_ms = cfg.dt_ms

    def reset(self) -> None:
        """Nothing to do: every run starts at rest, as the model does for each data frame."""

    def run(self, ms: float) -> float:
        """Simulate ``ms`` from rest; spike count."""
        with torch.no_grad():
            n = int(round(ms / self.dt_ms))
            return float(self.model._run(self.w, self.gen, n, 0, fast=True).sum())


class Brian2Net:
    def __init__(self, conn, w_in: np.ndarray, cfg: WholeBrainConfig, seed: int, target: str):
        import brian2 as b2

        self.b2 = b2
        b2.prefs.codegen.target = target
        b2.start_scope()
        b2.seed(seed)
        b2.defaultclock.dt = cfg.dt_ms * b2.ms
        eqs = """
        dv/dt = (I - v) / tau_m : volt (unless refractory)
        dI/dt = -I / tau_s : volt
        w_in : volt
        """
        g = b2.NeuronGroup(
            len(w_in), eqs, threshold="v > theta", reset="v = 0*mV",
            refractory=cfg.refractory_ms * b2.ms, method="exact",
            namespace={"tau_m": cfg.tau_m_ms * b2.ms, "tau_s": cfg.tau_syn_ms * b2.ms,
                       "theta": cfg.threshold_mv * b2.mV},
        )  # fmt: skip
        g.w_in = w_in * b2.mV
        s = b2.Synapses(g, g, "w : volt", on_pre="I_post += w", delay=cfg.delay_ms * b2.ms)
        s.connect(i=conn.pre.astype(np.int32), j=conn.post.astype(np.int32))
        s.w = conn.signed_count.astype(np.float64) * cfg.scale_factor_mv * b2.mV
        p = b2.PoissonInput(g, "v", N=1, rate=cfg.poisson_rate_hz * b2.Hz,
                            weight="w_in * int(not_refractory)")  # fmt: skip
        self.mon = b2.SpikeMonitor(g, record=False)
        self.net = b2.Network(g, s, p, self.mon)
        self.net.store("rest")

    def reset(self) -> None:
        """Back to rest (untimed), so both sides simulate the same transient."""
        self.net.restore("rest")

    def run(self, ms: float) -> float:
        before = self.mon.num_spikes
        self.net.run(ms * self.b2.ms)
        return float(self.mon.num_spikes - before)


def timed(side, ms: float) -> tuple[float, float, float]:
    """(wall s, CPU s of this process, spikes) of one run from rest."""
    side.reset()
    w0, c0 = time.perf_counter(), time.process_time()
    spikes = side.run(ms)
    return time.perf_counter() - w0, time.process_time() - c0, spikes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-ms", type=float, default=100.0, help="simulated time per side")
    ap.add_argument("--warm-ms", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scale", choices=sorted(SCALES), default="flywire")
    ap.add_argument("--brian2-target", choices=["cython", "numpy"], default="cython")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    check_repeats(args.repeats)
    torch.set_num_threads(args.threads)
    print(f"load average at start: {load_average()}")
    t0 = time.perf_counter()
    conn = build_connectome(SCALES[args.scale])
    print(f"{args.scale} synthetic brain: {conn.n_neurons} neurons, {conn.pre.size} connections, "
          f"{len(conn.neuropil_names)} neuropils, built in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    rng = np.random.default_rng(args.seed)
    w_in = rng.uniform(0.3, 1.3, conn.n_neurons)
    cfg = WholeBrainConfig(n_rank=0)
    sides = {"flyenv (numba kernel)": Ours(conn, w_in, cfg, args.seed),
             f"brian2 ({args.brian2_target})": Brian2Net(conn, w_in, cfg, args.seed, args.brian2_target)}  # fmt: skip
    for side in sides.values():  # warm-up: code generation / compilation, first touches
        side.run(args.warm_ms)
        side.reset()
    results = {name: [] for name in sides}
    for _ in range(args.repeats):  # alternate, so both see the same machine load
        for name, side in sides.items():
            results[name].append(timed(side, args.sim_ms))
    sim_s = args.sim_ms / 1000.0
    print(f"load average after the runs: {load_average()}")
    print(f"best of {args.repeats} runs of {args.sim_ms:g} ms simulated each "
          f"(CPU = this process's CPU time, robust to other load on the machine)")  # fmt: skip
    print(
        f"{'':28s}{'wall s':>9s}{'CPU s':>9s}{'sim s / wall s':>16s}{'sim s / CPU s':>15s}{'rate Hz':>9s}"
    )
    best = {}
    for name, runs in results.items():
        wall = min(r[0] for r in runs)
        cpu = min(r[1] for r in runs)
        rate = np.mean([r[2] for r in runs]) / conn.n_neurons / sim_s
        best[name] = (wall, cpu)
        print(f"{name:28s}{wall:9.2f}{cpu:9.2f}{sim_s / wall:16.4f}{sim_s / cpu:15.4f}{rate:9.2f}")
    (w_o, c_o), (w_b, c_b) = best.values()
    print(
        f"best-of-runs wall-time ratio brian2/ours = {w_b / w_o:.2f}; CPU-time ratio = {c_b / c_o:.2f}"
    )
    (ours_runs, b2_runs) = results.values()
    print(
        "per-repeat wall-time ratios: "
        + " ".join(f"{b[0] / o[0]:.2f}" for o, b in zip(ours_runs, b2_runs, strict=True))
    )
    report(
        [b[1] / o[1] for o, b in zip(ours_runs, b2_runs, strict=True)],
        f"CPU-time ratio brian2 ({args.brian2_target}) / ours (same network, same equations)",
    )


if __name__ == "__main__":
    main()
