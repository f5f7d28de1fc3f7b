"""Whole-brain LIF network on the signed FlyWire connectome, driven by neuropil rates.

The model of the original whole-brain activity fitting
(docs/research_systems.md, whole-brain activity fitting).
Every neuron is a
current-based LIF (:class:`flyenv.brains.core.neurons.LIFPopulation`, exact exponential
integration; tau_m 20 ms, tau_syn 5 ms, threshold 1 mV, reset 0, refractory 5 ms,
dt 0.2 ms). Input to neuron i each step::

    kick into I_i = scale_factor_mv * sum_j W_ji s_j(t - delay) + LoRA(s(t - delay))_i
    kick into V_i = w_i(r_t) * Poisson(poisson_rate_hz * dt)       (0 while refractory)
    w(r_t) = ReLU(Linear(r_t / input_scale_hz))                       (mV per input spike)

W = signed synapse counts (fixed: ACh/DA/5-HT/OA positive, GABA/Glu negative), the LoRA
term of rank ``n_rank`` (scaled 1/rank) is learnable, delay 1.8 ms (a spike ring buffer).
As in the original, the delayed recurrent spikes carry no gradient (stop-gradient): learning
reaches the LoRA factors and the input Linear, and gradients flow through time only
inside each neuron's own V and I. The sparse term is event-driven
(:meth:`ConnectomeLinear.forward_t_events`): its cost follows the spike count.
Gradient-free frames (:meth:`simulate_frame`) run on a numba kernel on the CPU
(:mod:`flyenv.brains.whole_brain.kernels`) or on the in-place LIF step elsewhere; all
paths draw the same Poisson kicks and give the same spikes as the autograd path.

Input weights (``encoder``, a model choice for the student; issue 16): ``"free"`` (the
original's) gives every neuron its own row of the Linear (N x P weights, N biases).
``"home_tied"`` (:class:`HomeTiedEncoder`) shares one row and one bias among all neurons
with the same home neuropil (the neuropil where a neuron makes most of its synapses,
read from the connectome's per-neuropil synapse counts): P x P weights and P biases. With
neuropil-level data the free encoder (and the LoRA term) can absorb whatever the wiring
contributes; the tied one leaves the per-neuron differences to the connectome.

One data frame: simulate ``frame_ms`` with the input fixed at the frame's rates, discard
the first ``warmup_fraction`` (unrecorded warm-up, the original's ``sim_before_train``), and
read neuropil rates r_P = sum_i r_i c_iP / sum_i c_iP with c_iP the synapses neuron i
makes in neuropil P. :meth:`simulate_frame` starts every frame at rest (the original's
memoryless frame map; batch elements are independent frames); :meth:`step_frame` and
``train_frame(..., state=...)`` carry the state (:class:`FrameState`: V, I, refractory
countdown and the spikes still in flight) from one frame into the next, as the stateful
teacher of :mod:`flyenv.connectome.synthetic_whole_brain` and the stateful student do.

Training memory does not grow with the number of simulation steps: :meth:`train_frame`
does truncated BPTT over windows of ``window_steps``. Pass 1 (no graph) runs the whole
frame and gives the exact dLoss/d(rates); pass 2 replays the frame with the same Poisson
draws, window by window, back-propagating that gradient through each window's share of
the spike count and detaching V and I at window edges. The gradient is exact except for
the dependence carried across a window edge by V and I (decaying with tau_m and tau_syn).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.core.neurons import LIFConfig, LIFPopulation, LIFState


class FrameState(NamedTuple):
    """The network between two frames: (N, B) membrane V, synaptic current I, refractory
    countdown, the spikes of the last ``delay_steps`` steps still in flight
    ((delay, N, B) ring) and the ring slot the next step reads (``phase``)."""

    v: torch.Tensor
    i: torch.Tensor
    ref: torch.Tensor
    ring: torch.Tensor
    phase: int

    def detach(self) -> FrameState:
        return FrameState(
            self.v.detach(), self.i.detach(), self.ref.detach(), self.ring.detach(), self.phase
        )


@dataclass
class WholeBrainConfig:
    """Neuron, synapse and frame parameters (the original's defaults, docs/research_systems.md)."""

    dt_ms: float = 0.2
    tau_m_ms: float = 20.0
    tau_syn_ms: float = 5.0
    threshold_mv: float = 1.0
    refractory_ms: float = 5.0
    delay_ms: float = 1.8
    scale_factor_mv: float = 0.000825
    n_rank: int = 20
    poisson_rate_hz: float = 20.0
    frame_ms: float = 1000.0 / 1.2
    """Simulated time per data frame (the recordings' 1.2 Hz frame; CPU configs shorten it)."""
    warmup_fraction: float = 0.1
    input_scale_hz: float = 10.0
    """Rates are divided by this before the input Linear (keeps its init scale sensible)."""
    encoder: str = "free"
    """Input weights: "free" (a row per neuron) or "home_tied" (a row per home neuropil;
    module docstring)."""
    backend: str = "auto"
    """Gradient-free frames: "numba" (compiled kernel, CPU), "torch" (in-place tensor
    ops, any device) or "auto" (numba on the CPU when installed). Training always runs
    the autograd torch path."""

    def validate(self) -> None:
        for name in ("dt_ms", "tau_m_ms", "tau_syn_ms", "threshold_mv", "frame_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"WholeBrainConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.delay_ms < self.dt_ms:
            raise ValueError(f"delay_ms ({self.delay_ms}) must be >= dt_ms ({self.dt_ms})")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.n_rank < 0:
            raise ValueError(f"n_rank must be >= 0, got {self.n_rank}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.backend not in ("auto", "numba", "torch"):
            raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {self.backend!r}")
        if self.n_steps - self.n_warmup_steps < 1:
            raise ValueError("frame_ms is too short for dt_ms: no recorded step is left")

    @property
    def n_steps(self) -> int:
        return int(round(self.frame_ms / self.dt_ms))

    @property
    def n_warmup_steps(self) -> int:
        return int(self.warmup_fraction * self.n_steps)

    @property
    def delay_steps(self) -> int:
        return max(1, int(round(self.delay_ms / self.dt_ms)))


ENCODERS = ("free", "home_tied")


def home_neuropils(readout_counts: np.ndarray) -> np.ndarray:
    """(N,) index of the neuropil where each neuron makes most of its synapses (ties: the
    first; a neuron without synapses: neuropil 0)."""
    return np.asarray(np.argmax(np.asarray(readout_counts), axis=0), dtype=np.int64)


class HomeTiedEncoder(nn.Module):
    """Input Linear (P -> N) whose rows and biases are shared by the neurons of one home
    neuropil: ``weight = coupling[home]``, ``bias = bias_home[home]``. ``weight`` and
    ``bias`` read like an ``nn.Linear``'s, so recovery scoring sees per-neuron weights."""

    def __init__(self, home: np.ndarray, n_inputs: int) -> None:
        super().__init__()
        home_t = torch.as_tensor(home, dtype=torch.long)
        n_home = int(home_t.max()) + 1 if home_t.numel() else 1
        self.register_buffer("home", home_t)
        ref = nn.Linear(n_inputs, n_home)  # nn.Linear's initialisation, one row per home
        self.coupling = nn.Parameter(ref.weight.detach().clone())
        self.bias_home = nn.Parameter(ref.bias.detach().clone())

    @property
    def weight(self) -> torch.Tensor:
        return self.coupling[self.home]

    @property
    def bias(self) -> torch.Tensor:
        return self.bias_home[self.home]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.coupling.t() + self.bias_home)[..., self.home]


def readout_matrix(readout_counts: np.ndarray) -> torch.Tensor:
    """(P, N) synapse counts c_iP -> row-normalised weights (rate average per neuropil)."""
    c = np.asarray(readout_counts, dtype=np.float64)
    totals = c.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        empty = np.flatnonzero(totals[:, 0] <= 0).tolist()
        raise ValueError(f"neuropil rows {empty} have no presynaptic synapses to read out")
    return torch.as_tensor(c / totals, dtype=torch.float32)


class WholeBrainLIF(nn.Module):
    """The original's whole-brain spiking model (module docstring).

    Args:
        signed_counts: (N, N) scipy sparse, row = presynaptic, signed synapse counts.
        readout_counts: (P, N) synapses each neuron makes in each neuropil.
    """

    def __init__(
        self,
        signed_counts: sp.spmatrix,
        readout_counts: np.ndarray,
        config: WholeBrainConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = cfg = config or WholeBrainConfig()
        cfg.validate()
        n = signed_counts.shape[0]
        if signed_counts.shape != (n, n):
            raise ValueError(f"signed_counts must be square (N, N), got {signed_counts.shape}")
        if readout_counts.shape[1] != n:
            raise ValueError(
                f"readout_counts must be (P, N={n}), got {tuple(readout_counts.shape)}"
            )
        self.n_neurons, self.n_neuropils = n, readout_counts.shape[0]
        self.conn = ConnectomeLinear(
            signed_counts, learnable=False, init_gain=cfg.scale_factor_mv, lora_rank=cfg.n_rank
        )
        lif_cfg = LIFConfig(
            tau_m_ms=cfg.tau_m_ms,
            tau_syn_ms=cfg.tau_syn_ms,
            threshold_mv=cfg.threshold_mv,
            refractory_ms=cfg.refractory_ms,
            dt_ms=cfg.dt_ms,
            learn_tau=False,
            learn_threshold=False,
            per_neuron_threshold=False,
        )
        self.lif = LIFPopulation(n, lif_cfg, feature_major=True)
        self.encoder = (
            nn.Linear(self.n_neuropils, n)
            if cfg.encoder == "free"
            else HomeTiedEncoder(home_neuropils(readout_counts), self.n_neuropils)
        )
        self.register_buffer("readout", readout_matrix(readout_counts))

    # ------------------------------------------------------------------ pieces
    def poisson_weights(self, rates_hz: torch.Tensor) -> torch.Tensor:
        """(B, P) input rates -> (N, B) mV per Poisson input spike."""
        if rates_hz.dim() != 2 or rates_hz.shape[1] != self.n_neuropils:
            raise ValueError(
                f"rates must be (batch, n_neuropils={self.n_neuropils}), got {tuple(rates_hz.shape)}"
            )
        return torch.relu(self.encoder(rates_hz / self.config.input_scale_hz)).t()

    def neuropil_rates(self, counts: torch.Tensor, duration_ms: float) -> torch.Tensor:
        """(N, B) spike counts over ``duration_ms`` -> (B, P) neuropil rates in Hz."""
        return (self.readout @ counts).t() * (1000.0 / duration_ms)

    def init_frame_state(self, batch: int) -> FrameState:
        """The network at rest (no spike in flight): where every sequence starts."""
        dev = self.readout.device
        z = torch.zeros(self.n_neurons, batch, device=dev)
        ring = torch.zeros(self.config.delay_steps, self.n_neurons, batch, device=dev)
        return FrameState(z, z.clone(), z.clone(), ring, 0)

    def _run(
        self,
        w: torch.Tensor,
        generator: torch.Generator | None,
        n_steps: int,
        n_warmup: int,
        window_steps: int | None = None,
        on_window: Callable[[torch.Tensor], None] | None = None,
        fast: bool = False,
    ) -> torch.Tensor:
        """Simulate ``n_steps`` from rest; the spike counts over the recorded steps
        (:meth:`_run_from`)."""
        total, _ = self._run_from(
            w, generator, n_steps, n_warmup, None, window_steps, on_window, fast
        )
        return total

    def _run_from(
        self,
        w: torch.Tensor,
        generator: torch.Generator | None,
        n_steps: int,
        n_warmup: int,
        start: FrameState | None = None,
        window_steps: int | None = None,
        on_window: Callable[[torch.Tensor], None] | None = None,
        fast: bool = False,
    ) -> tuple[torch.Tensor, FrameState]:
        """Simulate ``n_steps`` with kick weights ``w`` (N, B) from ``start`` (None: rest);
        return spike counts over the recorded steps and the state after the last step
        (detached). With ``on_window``, the recorded steps are cut into windows of
        ``window_steps``; each window's count (with graph) goes to ``on_window`` and V, I
        are detached after it. ``fast`` (no gradient) uses the in-place LIF step or the
        numba kernel; all paths give the same spikes for the same generator state."""
        cfg, lif = self.config, self.lif
        n, batch = w.shape
        k = lif.coefficients()
        keep = 1.0 - k.alpha  # (1 - alpha) e = w: the current e that kicks V by w
        p_spike = cfg.poisson_rate_hz * cfg.dt_ms / 1000.0
        values = self.conn.pre_major_values()
        nb = n * batch
        if start is None:
            start = self.init_frame_state(batch)
        if start.v.shape != (n, batch):
            raise ValueError(f"state is {tuple(start.v.shape)}, kicks are {(n, batch)}")
        # the Poisson kicks of the whole frame at once (flat positions step * nb + idx)
        kicks = bernoulli_positions(n_steps * nb, p_spike, generator, w.device)
        if fast and self.backend() == "numba":
            return self._run_numba(w, kicks, n_steps, n_warmup, k, values, start)
        bounds = torch.searchsorted(
            kicks, torch.arange(n_steps + 1, device=w.device, dtype=kicks.dtype) * nb
        ).tolist()
        state = LIFState(start.v.clone(), start.i.clone(), start.ref.clone())
        w_flat = w.reshape(-1)
        d = cfg.delay_steps
        ring = [start.ring[q].clone() for q in range(d)]
        total = torch.zeros(n, batch, device=w.device)
        window = torch.zeros(n, batch, device=w.device)
        in_window = 0
        for step in range(n_steps):
            slot = (start.phase + step) % d
            syn = self.conn.forward_t_events(ring[slot], values)
            idx = kicks[bounds[step] : bounds[step + 1]] - step * nb
            e_vals = w_flat[idx] / keep.reshape(-1)
            if fast:
                s = lif.step_inplace(syn, state, k, idx, (keep.reshape(-1) * e_vals))
                ring[slot] = s
                if step >= n_warmup:
                    total += ring[slot]
                continue
            current = torch.zeros(n * batch, dtype=w.dtype, device=w.device).index_put(
                (idx,), e_vals
            )
            s, state = lif.step(syn, state, current=current.view(n, batch), coeffs=k)
            ring[slot] = s.detach()
            if step < n_warmup:
                if step == n_warmup - 1:  # the warm-up never enters a gradient window
                    state = LIFState(state.v.detach(), state.i.detach(), state.ref)
                continue
            if on_window is None:
                total += s.detach()
                continue
            window = window + s
            in_window += 1
            if in_window == window_steps or step == n_steps - 1:
                on_window(window)
                total += window.detach()
                window = torch.zeros(n, batch, device=w.device)
                in_window = 0
                state = LIFState(state.v.detach(), state.i.detach(), state.ref)
        end = FrameState(
            state.v.detach(),
            state.i.detach(),
            state.ref.detach(),
            torch.stack([r.detach() for r in ring]),
            (start.phase + n_steps) % d,
        )
        return total, end

    def backend(self) -> str:
        """ "numba" (compiled CPU kernel for gradient-free frames) or "torch"."""
        choice = self.config.backend
        if choice == "auto":
            on_cpu = self.readout.device.type == "cpu"
            return "numba" if on_cpu and _numba_available() else "torch"
        return choice

    def _run_numba(self, w, kicks, n_steps, n_warmup, k, values, start: FrameState):
        from flyenv.brains.whole_brain.kernels import simulate_frame_kernel

        cfg = self.config
        n, batch = w.shape
        keep = (1.0 - k.alpha).reshape(-1)
        kick_w = (keep * (w.reshape(-1) / keep)).detach().numpy().astype(np.float32)
        if self.conn.lora_rank > 0:
            lora_a = self.conn.lora_a.detach().numpy().astype(np.float32)
            lora_b = (self.conn.lora_b.detach() / self.conn.lora_rank).numpy().astype(np.float32)
        else:
            lora_a, lora_b = np.zeros((n, 0), np.float32), np.zeros((0, n), np.float32)

        def flat(x: torch.Tensor) -> np.ndarray:  # a private float32 copy for the kernel
            return np.array(x.detach().reshape(-1).numpy(), dtype=np.float32, copy=True)

        v, cur, ref = flat(start.v), flat(start.i), flat(start.ref)
        ring = np.array(start.ring.detach().reshape(cfg.delay_steps, n * batch).numpy(), np.float32)
        counts = simulate_frame_kernel(
            n_steps,
            n_warmup,
            cfg.delay_steps,
            batch,
            v,
            cur,
            ref,
            kicks.numpy(),
            kick_w,
            self.conn._crow.numpy(),
            self.conn._col.numpy(),
            values.numpy(),
            np.ascontiguousarray(lora_a),
            np.ascontiguousarray(lora_b),
            np.float32(k.alpha.item()),
            np.float32(k.beta.item()),
            np.float32(k.c.item()),
            np.float32(k.theta.item()),
            np.float32(self.lif.config.refractory_steps),
            np.zeros(n * batch, np.float32),
            ring,
            int(start.phase),
        )
        end = FrameState(
            torch.from_numpy(v).view(n, batch),
            torch.from_numpy(cur).view(n, batch),
            torch.from_numpy(ref).view(n, batch),
            torch.from_numpy(ring).view(cfg.delay_steps, n, batch),
            (start.phase + n_steps) % cfg.delay_steps,
        )
        return torch.from_numpy(counts).view(n, batch), end

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def simulate_frame(
        self, rates_hz: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, P) rates of frame t -> (B, P) simulated neuropil rates of frame t+1, from
        rest (the memoryless map; :meth:`step_frame` carries the state)."""
        return self.step_frame(rates_hz, None, generator)[0]

    @torch.no_grad()
    def step_frame(
        self,
        rates_hz: torch.Tensor,
        state: FrameState | None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, FrameState]:
        """Stateful frame: (B, P) rates of frame t and the network's state at the end of
        frame t (None: rest) -> (B, P) rates of frame t+1 and the state at its end."""
        cfg = self.config
        w = self.poisson_weights(rates_hz)
        counts, end = self._run_from(
            w, generator, cfg.n_steps, cfg.n_warmup_steps, state, fast=True
        )
        return self.neuropil_rates(counts, (cfg.n_steps - cfg.n_warmup_steps) * cfg.dt_ms), end

    def train_frame(
        self,
        rates_hz: torch.Tensor,
        loss_of_rates: Callable[[torch.Tensor], torch.Tensor],
        window_steps: int,
        seed: int,
        state: FrameState | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, FrameState]:
        """Accumulate parameter gradients of ``loss_of_rates(simulated rates)`` by the
        two-pass truncated BPTT of the module docstring. Returns (loss, rates), detached.

        With ``state`` (a :class:`FrameState`, the end of the previous frame) the frame
        continues from it and (loss, rates, state at the frame's end) is returned. The
        gradient stops at the frame's start (truncated BPTT across frames): memory
        follows ``window_steps``, never the sequence length."""
        if window_steps < 1:
            raise ValueError(f"window_steps must be >= 1, got {window_steps}")
        cfg = self.config
        duration = (cfg.n_steps - cfg.n_warmup_steps) * cfg.dt_ms
        gen = torch.Generator(device=rates_hz.device)
        gen.manual_seed(seed)
        with torch.no_grad():
            w0 = self.poisson_weights(rates_hz)
            counts, end = self._run_from(w0, gen, cfg.n_steps, cfg.n_warmup_steps, state)
            rates = self.neuropil_rates(counts, duration)
        r = rates.clone().requires_grad_(True)
        loss = loss_of_rates(r)
        (g_rates,) = torch.autograd.grad(loss, r)
        w = self.poisson_weights(rates_hz)
        w_leaf = w.detach().requires_grad_(True)
        scale = 1000.0 / duration

        def backward_window(count: torch.Tensor) -> None:
            part = (self.readout @ count).t() * scale  # this window's share of the rates
            if part.requires_grad:
                (part * g_rates).sum().backward()

        gen.manual_seed(seed)  # replay the same Poisson draws from the same state
        self._run_from(
            w_leaf, gen, cfg.n_steps, cfg.n_warmup_steps, state, window_steps, backward_window
        )
        if w_leaf.grad is not None:
            w.backward(w_leaf.grad)
        if state is None:
            return loss.detach(), rates
        return loss.detach(), rates, end

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"n_neurons={self.n_neurons}, n_neuropils={self.n_neuropils}, dt_ms={c.dt_ms}, "
            f"frame_ms={c.frame_ms:.1f}, n_rank={c.n_rank}, encoder={c.encoder}"
        )


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def bernoulli_positions(
    n: int, p: float, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Flat indices of the successes of ``n`` Bernoulli(p) trials, drawn exactly through
    geometric gaps: O(n p) work instead of n uniform draws (0.03 vs 0.6 ms per step for
    the 139k neurons of a whole brain at 20 Hz x 0.2 ms)."""
    if p <= 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    if p >= 1:
        return torch.arange(n, device=device)
    mean = n * p
    m = int(mean + 6.0 * math.sqrt(mean) + 16)
    chunks, end = [], -1.0
    while end < n - 1:  # rarely needs a second round
        gaps = torch.empty(m, dtype=torch.float64, device=device).geometric_(p, generator=generator)
        pos = torch.cumsum(gaps, 0) + end  # first success of a run of trials after ``end``
        chunks.append(pos)
        end = float(pos[-1])
    pos = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
    return pos[: int(torch.searchsorted(pos, float(n)))].long()  # pos is increasing


def window_from_etrace_decay(etrace_decay: float) -> int:
    """The original's eligibility-trace decay -> a truncation window of the same memory
    length: 1 / (1 - decay) steps (0.99 -> 100 steps = 20 ms at dt 0.2 ms); decay 0
    (the original's "non-temporal" setting) -> 1 step."""
    if not 0 <= etrace_decay < 1:
        raise ValueError(f"etrace_decay must be in [0, 1), got {etrace_decay}")
    return max(1, int(math.ceil(1.0 / (1.0 - etrace_decay) - 1e-9)))
