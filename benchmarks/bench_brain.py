"""Olfactory brain: ours (flyenv.brains) vs the same circuit written with snntorch.

Workload: forward + backward of the bilateral ``OlfactoryBrain`` over ``--steps`` brain
steps (default 1,000 = 100 agent steps x 10 substeps of 1 ms) at batch ``--batch``
(default 32 flies, i.e. 64 hemispheres), loss = mean squared action.

Ours: ``OlfactoryBrain`` as shipped (CPU: each population runs a whole 10-step agent step
as one numba autograd node; the KC <-> APL loop with the KC->MBON kicks is
``flyenv.brains.olfactory.kc_apl_block``, PN, MBON and DN are ``flyenv.brains.olfactory.lif_chunk``).
``--reference`` times our op-by-op torch path instead (``fused_kernels=False``, what runs
on a GPU).

Peer: the usual snntorch way. ``snn.Synaptic(reset_mechanism="zero")`` neurons
(learnable alpha, beta, threshold; fast-sigmoid surrogate with the same slope) and
dense weight matrices masked by the connectome (``magnitude * signed_mask``, formed
once per forward), sides stacked in the batch like ours. Every parameter is copied
from our brain, and the input of each snntorch layer is scaled by our exact
propagator's ``c`` so that both integrate the same discrete dynamics (our one-step
refractory period equals snntorch's zero reset, see flyenv/brains/core/neurons.py).

Each implementation runs in its own spawned worker process (kept alive for the whole
script run), so its peak memory is clean: memory = peak RSS (``ru_maxrss``) during the
first timed forward+backward minus the RSS before it, which counts torch's CPU
allocations (tracemalloc does not see them). After one short untimed warm-up per side,
the two sides are timed alternately (who goes first swaps every repeat), one
forward+backward each per repeat; each repeat gives a ratio. Outputs are compared:
actions and per-population spike counts.

Usage: python benchmarks/bench_brain.py [--steps 1000] [--batch 32] [--threads 1]
       [--repeats 5] [--reference]
Last line: ratio=<median snntorch time / ours> min=.. max=.. repeats=N load=1/5/15 min.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

import torch
from _repeat import Worker, check_repeats, load_average, report
from torch import nn

POPS = ("PN", "KC", "APL", "MBON", "DN")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    return 0.0


def make_inputs(steps_agent: int, batch: int, seed: int = 0) -> torch.Tensor:
    """Per-glomerulus ORN rates in [0, 1] with a small left/right difference."""
    g = torch.Generator().manual_seed(seed)
    base = 0.04 + 0.4 * torch.rand(batch, 1, 55, generator=g)
    side = 1.0 + 0.03 * torch.tensor([1.0, -1.0])[None, :, None]
    drift = 1.0 + 0.5 * torch.sin(torch.linspace(0, 6.28, steps_agent))[:, None, None, None]
    return (base * side)[None] * drift


class SnnTorchBrain(nn.Module):
    """The OlfactoryBrain circuit with snntorch neurons and dense masked weights."""

    def __init__(self, brain) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        self.dt = brain.config.dt_ms
        self.substeps = brain.config.substeps
        self.layers = {}
        for name in ("pn_kc", "kc_apl", "apl_kc", "kc_mbon"):
            lay = getattr(brain, name)
            mask_sign = torch.zeros(lay.n_pre, lay.n_post)
            mask_sign[lay.pre, lay.post] = lay.sign
            mag = torch.zeros(lay.n_pre, lay.n_post)
            mag[lay.pre, lay.post] = lay.log_magnitude.detach().exp()
            self.register_buffer(f"{name}_mask", mask_sign)
            if lay.learnable:
                setattr(self, f"{name}_mag", nn.Parameter(mag))
            else:
                self.register_buffer(f"{name}_mag", mag)
        self.lifs = nn.ModuleDict()
        for pop in ("pn", "kc", "apl", "mbon", "dn"):
            lif = getattr(brain, pop)
            k = lif.coefficients()
            self.lifs[pop] = snn.Synaptic(
                alpha=k.beta.detach().flatten()[0].clone(),
                beta=k.alpha.detach().flatten()[0].clone(),
                threshold=k.theta.detach().flatten().clone(),
                spike_grad=surrogate.fast_sigmoid(slope=lif.config.slope_per_mv),
                reset_mechanism="zero",
                learn_alpha=True,
                learn_beta=True,
                learn_threshold=True,
            )
            self.register_buffer(f"c_{pop}", k.c.detach().flatten()[0].clone())
        self.register_buffer("glom_to_pn", brain.glom_to_pn.t().clone())  # (n_glom, n_PN)
        self.orn_gain = nn.Parameter(brain.log_orn_gain.detach().exp().flatten().clone())
        for name in ("w_mbon_dn_ipsi", "w_mbon_dn_contra", "w_pn_dn_ipsi", "w_pn_dn_contra"):
            setattr(self, name, nn.Parameter(getattr(brain, name).detach().t().clone()))
        self.dn_tonic = nn.Parameter(brain.dn_tonic.detach().flatten().clone())
        self.readout = nn.Linear(2 * brain.n_dn, 2)
        self.readout.load_state_dict(brain.readout.state_dict())
        self.readout_tau = nn.Parameter(brain.log_readout_tau.detach().exp().clone())
        self.n_dn = brain.n_dn

    @staticmethod
    def _swap(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0] // 2
        return torch.cat([x[b:], x[:b]], dim=0)

    def forward(self, obs: torch.Tensor, record: bool = False):
        T, B = obs.shape[:2]
        w = {n: getattr(self, f"{n}_mag") * getattr(self, f"{n}_mask") for n in self.layers_names}
        lifs = self.lifs
        st = {p: lifs[p].init_synaptic() for p in lifs}
        s_apl = torch.zeros(2 * B, 1)
        rate = torch.zeros(2 * B, self.n_dn)
        decay = torch.exp(-self.dt / self.readout_tau)
        counts = {p: 0.0 for p in POPS}
        actions = []
        for t in range(T):
            rates = torch.cat([obs[t, :, 0], obs[t, :, 1]], dim=0)  # (2B, n_glom)
            x_pn = (rates * self.orn_gain) @ self.glom_to_pn * self.dt
            for _ in range(self.substeps):
                s_pn, *st["pn"] = lifs["pn"](self.c_pn * x_pn, *st["pn"])
                x_kc = s_pn @ w["pn_kc"] + s_apl @ w["apl_kc"]
                s_kc, *st["kc"] = lifs["kc"](self.c_kc * x_kc, *st["kc"])
                s_apl, *st["apl"] = lifs["apl"](self.c_apl * (s_kc @ w["kc_apl"]), *st["apl"])
                s_mbon, *st["mbon"] = lifs["mbon"](self.c_mbon * (s_kc @ w["kc_mbon"]), *st["mbon"])
                x_dn = s_mbon @ self.w_mbon_dn_ipsi + self._swap(s_mbon) @ self.w_mbon_dn_contra
                x_dn = x_dn + s_pn @ self.w_pn_dn_ipsi + self._swap(s_pn) @ self.w_pn_dn_contra
                x_dn = x_dn + self.dn_tonic * self.dt
                s_dn, *st["dn"] = lifs["dn"](self.c_dn * x_dn, *st["dn"])
                rate = decay * rate + (1.0 - decay) * s_dn * (10.0 / self.dt)
                if record:
                    for p, s in zip(POPS, (s_pn, s_kc, s_apl, s_mbon, s_dn), strict=True):
                        counts[p] = counts[p] + s.detach().sum()
            feats = torch.cat([rate[:B], rate[B:]], dim=1)
            actions.append(torch.tanh(self.readout(feats)))
        return torch.stack(actions), counts

    layers_names = ("pn_kc", "kc_apl", "apl_kc", "kc_mbon")


def _ours_counts(brain, obs):
    with torch.no_grad():
        a, _, rec = brain(obs, record=True)
    return a, {p: float(rec[p].sum()) for p in POPS}


def _factory(cfg_args):
    """Build one side (``impl``) in this worker; returns the per-command runner."""
    impl, steps, batch, threads, reference = cfg_args
    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    from flyenv.brains.olfactory.brain import OlfactoryBrain, OlfactoryBrainConfig

    cfg = OlfactoryBrainConfig(fused_kernels=not reference)
    for pop in ("pn", "kc", "apl", "mbon", "dn"):
        # snntorch's surrogates have no dampening factor: compare like with like
        getattr(cfg, pop).surrogate_scale = 1.0
    brain = OlfactoryBrain(cfg)
    obs = make_inputs(steps // brain.config.substeps, batch)
    model = brain if impl == "ours" else SnnTorchBrain(brain)
    state = {"peak": None}

    def run_once(cmd: str):
        if cmd == "outputs":  # no grad, after the timed runs: the agreement check
            if impl == "ours":
                actions, counts = _ours_counts(brain, obs)
            else:
                with torch.no_grad():
                    actions, counts = model(obs, record=True)
                counts = {p: float(v) for p, v in counts.items()}
            used = sum(
                1 for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0
            )
            n_par = sum(1 for p in model.parameters() if p.requires_grad)
            return dict(
                impl=impl,
                mem=state["peak"],
                actions=actions.detach().numpy(),
                counts=counts,
                grads=f"{used}/{n_par}",
            )
        x = obs[:2] if cmd == "warm" else obs  # warm-up: numba cache load, first touches
        model.zero_grad(set_to_none=True)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        a = model(x)[0]
        a.square().mean().backward()
        elapsed = time.perf_counter() - t0
        if cmd == "time" and state["peak"] is None:  # ru_maxrss is a high-water mark
            state["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - rss0
        return elapsed

    return run_once


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="brain steps (1 ms each)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="alternating timed runs per side")
    ap.add_argument(
        "--reference", action="store_true", help="time our torch reference path (no numba)"
    )
    args = ap.parse_args()
    check_repeats(args.repeats)
    print(f"load average at start: {load_average()}")
    sides = {
        impl: Worker(_factory, (impl, args.steps, args.batch, args.threads, args.reference))
        for impl in ("ours", "snntorch")
    }
    for w in sides.values():
        w("warm")
    times = {impl: [] for impl in sides}
    ratios = []
    for k in range(args.repeats):  # alternate, and swap who goes first every repeat
        order = ("ours", "snntorch") if k % 2 == 0 else ("snntorch", "ours")
        for impl in order:
            times[impl].append(sides[impl]("time"))
        ratios.append(times["snntorch"][-1] / times["ours"][-1])
    ours, peer = (sides[i]("outputs") for i in ("ours", "snntorch"))
    for w in sides.values():
        w.close()
    dmax = float(abs(ours["actions"] - peer["actions"]).max())
    print(
        f"olfactory brain, {args.steps} brain steps x batch {args.batch} "
        f"(x2 hemispheres), forward+backward, {args.threads} thread(s); "
        f"ours = flyenv OlfactoryBrain ({'torch reference' if args.reference else 'numba'}), "
        "peer = the same circuit and parameters in snntorch"
    )
    print(
        f"{'impl':10s} {'median_s':>8s} {'min_s':>7s} {'peak_MB':>9s} {'grads':>7s}  spike counts"
    )
    for r in (ours, peer):
        c = " ".join(f"{p}={int(r['counts'][p])}" for p in POPS)
        t = times[r["impl"]]
        print(
            f"{r['impl']:10s} {statistics.median(t):8.2f} {min(t):7.2f} {r['mem']:9.0f} "
            f"{r['grads']:>7s}  {c}"
        )
    print(f"max |action difference| = {dmax:.2e}")
    rel = {
        p: abs(ours["counts"][p] - peer["counts"][p]) / max(peer["counts"][p], 1.0) for p in POPS
    }
    print("relative spike-count difference: " + " ".join(f"{p}={v:.1e}" for p, v in rel.items()))
    print(f"memory ratio (snntorch / ours) = {peer['mem'] / max(ours['mem'], 1e-9):.2f}")
    report(ratios, "time ratio snntorch / ours (same forward+backward)")


if __name__ == "__main__":
    main()
