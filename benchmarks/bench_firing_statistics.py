"""One training epoch of the firing-statistics network: ours vs a seed-style implementation
(written like the original firing-statistics fitting, docs/research_systems.md).

Both simulate the same E/I assembly network (same wiring, weights, input spikes and
equations; spikes are checked equal) for one epoch of ``--batch`` trials x ``--epoch-ms``
in truncated-BPTT chunks of ``--chunk-ms``, evaluate the same firing-statistics loss
(``flyenv.metrics.firing_statistics``) per chunk, back-propagate, and take one
Adam step.

- ours: ``EIAssemblyNetwork.run``: sparse edge lists (only the connectome's synapses), the
  input drive of a whole chunk as one sparse product, one fused autograd node per neuron
  step (``flyenv.brains.ei_assembly.conductance``).
- seed-style (written for this benchmark, after the original's simulator): dense
  (post x pre) weight parameter matrices multiplied by fixed masks and the pathway scales
  each chunk, a per-step Python loop with a dense input product and a dense recurrent
  product every step, and the neuron/synapse update op by op (every intermediate saved
  by autograd).

Each implementation runs in its own spawned worker process (alive for the whole script
run), so its peak memory is clean: memory = peak RSS (``ru_maxrss``) during the first
epoch minus the RSS before it. The two sides run one epoch each per repeat, alternately
(who goes first swaps every repeat), each epoch from the same initial parameters.
Last line: ratio=<median seed-style time / ours> min=.. max=.. repeats=N load=...

    python benchmarks/bench_firing_statistics.py [--repeats 3]  # 5,000 neurons (the original size), 200 ms
    python benchmarks/bench_firing_statistics.py --size cpu --epoch-ms 1000  # 500 neurons
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from _repeat import Worker, check_repeats, load_average, report


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _build(size: str):
    from flyenv.brains.ei_assembly.network import EIAssemblyConfig, EIAssemblyNetwork

    cfg = EIAssemblyConfig.seed_size() if size == "seed" else EIAssemblyConfig()
    return EIAssemblyNetwork(cfg)


def _seed_style(net):
    """Dense masked-weight network with the original simulator's structure (see docstring)."""
    import torch
    from torch import nn

    from flyenv.brains.ei_assembly.conductance import cond_step_reference
    from flyenv.brains.ei_assembly.network import Activity, NetState

    class SeedStyleNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            n, n_in = net.n, net.config.n_inputs
            rec = torch.zeros(2 * n, n)
            rec[net.rec.post, net.rec.pre] = net.rec.values().detach()
            ff = torch.zeros(n, n_in)
            ff[net.inp.post, net.inp.pre] = net.inp.values().detach()
            self.weights = nn.Parameter(rec)
            self.weights_ff = nn.Parameter(ff)
            self.register_buffer("mask", rec != 0)
            self.register_buffer("mask_ff", ff != 0)
            path = torch.zeros(2 * n, n, dtype=torch.long)
            path[net.rec.post, net.rec.pre] = net.rec_pathway
            self.register_buffer("path", path)
            path_ff = torch.zeros(n, n_in, dtype=torch.long)
            path_ff[net.inp.post, net.inp.pre] = net.inp_pathway
            self.register_buffer("path_ff", path_ff)
            self.log_scales = nn.Parameter(net.log_pathway_scale.detach().clone())
            self.n, self.consts, self.cfg = n, net.consts, net.config

        def run(self, inputs, state):
            s_ = self.log_scales.exp()
            w = self.weights * self.mask * s_[self.path]
            w_ff = self.weights_ff * self.mask_ff * s_[self.path_ff]
            cond, s = state
            spikes, vs, vps = [], [], []
            sur, slope = self.cfg.neuron.surrogate, self.cfg.neuron.slope_per_mv
            for t in range(inputs.shape[0]):
                x = w @ s.detach()
                s, cond, vt = cond_step_reference(
                    w_ff @ inputs[t].float() + x[: self.n],
                    x[self.n :],
                    cond,
                    self.consts,
                    sur,
                    slope,
                )
                spikes.append(s)
                vs.append(cond.v)
                vps.append(vt)
            act = Activity(torch.stack(spikes), torch.stack(vs), torch.stack(vps))
            return act, NetState(cond, s)

    return SeedStyleNetwork()


def _epoch(model, net, chunks, batch):
    import torch

    from flyenv.metrics.firing_statistics import (
        NO_SPIKE,
        LossWeights,
        RunningStats,
        Targets,
        statistics_loss,
    )

    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    k = net.consts
    e_leak, theta = k.e_leak[:, 0], k.theta[:, 0]
    target = torch.where(net.is_exc, 0.5, 2.0).float()
    stats = RunningStats(net.n, batch, net.dt_ms)
    state = net.init_state(batch)
    last = torch.full((net.n, batch), NO_SPIKE)
    t0, total, n_spikes = 0, 0.0, 0.0
    for inputs in chunks:
        v0 = state.cond.v.detach()
        act, state = model.run(inputs, state.detach())
        last = stats.add(act.spikes, act.v, last, t0, act.v_pre, v0, theta)
        loss, _ = statistics_loss(
            stats, target, e_leak, theta, Targets(), LossWeights(), net.is_exc
        )
        (loss / len(chunks)).backward()
        stats.detach()
        t0 += inputs.shape[0]
        total = float(loss.detach())
        n_spikes += float(act.spikes.detach().sum())
    opt.step()
    return total, n_spikes


def _factory(cfg_args):
    """Build one side in this worker; each command times one epoch."""
    impl, args = cfg_args
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = _build(args.size)
    steps = int(round(args.chunk_ms / net.dt_ms))
    n_chunks = int(round(args.epoch_ms / args.chunk_ms))
    gen = torch.Generator().manual_seed(1)
    chunks = [net.sample_inputs(steps, args.batch, gen) for _ in range(n_chunks)]
    model = net if impl == "ours" else _seed_style(net)
    # first optimizer step imports torch's lazy modules (seconds): not part of an epoch
    warm = torch.nn.Parameter(torch.zeros(1))
    warm.grad = torch.zeros(1)
    torch.optim.Adam([warm]).step()
    # restore the initial parameters before every epoch, so every repeat is the same work
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    first = {"peak": None}

    def run_once(cmd: str) -> dict:
        model.load_state_dict(init)
        model.zero_grad(set_to_none=True)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        loss, n_spikes = _epoch(model, net, chunks, args.batch)
        elapsed = time.perf_counter() - t0
        if first["peak"] is None:  # ru_maxrss is a high-water mark: first epoch only
            first["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - rss0
        return dict(impl=impl, time=elapsed, mem=first["peak"], loss=loss, spikes=n_spikes, n=net.n)

    return run_once


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("cpu", "seed"), default="seed")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epoch-ms", type=float, default=200.0)
    ap.add_argument("--chunk-ms", type=float, default=100.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="alternating epochs per side")
    args = ap.parse_args()
    check_repeats(args.repeats)
    print(f"load average at start: {load_average()}")
    sides = {impl: Worker(_factory, (impl, args)) for impl in ("ours", "seed-style")}
    runs = {impl: [] for impl in sides}
    ratios = []
    for k in range(args.repeats):  # alternate, and swap who goes first every repeat
        order = ("ours", "seed-style") if k % 2 == 0 else ("seed-style", "ours")
        for impl in order:
            runs[impl].append(sides[impl]("epoch"))
        ratios.append(runs["seed-style"][-1]["time"] / runs["ours"][-1]["time"])
    for w in sides.values():
        w.close()
    ours, ref = runs["ours"][0], runs["seed-style"][0]
    print(
        f"firing-statistics network, {ours['n']} neurons, one epoch: {args.batch} trials x "
        f"{args.epoch_ms:.0f} ms in {args.chunk_ms:.0f} ms chunks, forward + loss + backward "
        f"+ Adam, {args.threads} thread(s); ours = flyenv EIAssemblyNetwork (sparse, fused), "
        "peer = the same network written seed-style (dense masked weights, op by op)"
    )
    print(
        f"{'impl':12s} {'median_s':>8s} {'min_s':>7s} {'peak_MB':>9s} {'spikes':>9s} {'loss':>10s}"
    )
    for impl, rs in runs.items():
        t = [r["time"] for r in rs]
        r = rs[0]
        print(
            f"{impl:12s} {statistics.median(t):8.2f} {min(t):7.2f} {r['mem']:9.0f} "
            f"{r['spikes']:9.0f} {r['loss']:10.4f}"
        )
    same = all(
        o["spikes"] == r["spikes"] and abs(o["loss"] - r["loss"]) <= 1e-4 * abs(r["loss"])
        for o, r in zip(runs["ours"], runs["seed-style"], strict=True)
    )
    print(f"same spikes and loss in every repeat: {same}")
    print(f"memory ratio (seed-style / ours) = {ref['mem'] / max(ours['mem'], 1e-9):.2f}")
    report(ratios, "time ratio seed-style / ours (same epoch)")


if __name__ == "__main__":
    main()
