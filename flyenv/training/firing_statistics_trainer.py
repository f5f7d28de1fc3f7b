"""Gradient training of the E/I assembly network to target firing statistics or to a
teacher's spike trains (docs/research_systems.md, firing-statistics fitting),
by truncated BPTT, with exact resume.

One epoch simulates ``batch_size`` independent trials for ``epoch_ms``, in chunks of
``chunk_ms``; the network state carries over between chunks and epochs (it is detached
at chunk borders: truncated BPTT). Each chunk's loss is evaluated on the statistics of the
whole accumulation window so far (``RunningStats``) and back-propagated; gradients add up
over ``accumulation_interval`` epochs, then Adam steps once. Weights exist only on the
connectome's edges, so every gradient and update is masked to it.

Statistics mode: the original's four terms (rate, CV, silent, membrane variance). Teacher
mode: a teacher network with the same wiring and connection weights but its own pathway
scales sees the same input spikes; the student (started from perturbed pathway scales)
minimises the van Rossum distance to the teacher's spikes plus the rate loss to the
teacher's per-neuron rates.

Exact resume: the checkpoint holds model, optimizer, epoch, loss history, torch / numpy /
python RNG states (the input spikes come from torch's global RNG), the neuron state
(V, synaptic traces, refractory counters, last spikes, last spike times) and the
teacher's state, written at the end of an accumulation window (so no partial gradients
need saving).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from flyenv.brains.ei_assembly.conductance import CondState
from flyenv.brains.ei_assembly.network import (
    EIAssemblyConfig,
    EIAssemblyNetwork,
    NetState,
)
from flyenv.metrics.firing_statistics import (
    NO_SPIKE,
    LossWeights,
    RunningStats,
    Targets,
    statistics_loss,
    summarize,
    teacher_rate_loss,
    van_rossum_distance,
)
from flyenv.training.checkpoint import rng_state, set_rng_state


@dataclass
class TrainConfig:
    epochs: int = 40
    accumulation_interval: int = 2
    checkpoint_interval: int = 10
    plot_interval: int = 0
    """Plots every this many epochs; 0 = every accumulation interval (the original)."""
    batch_size: int = 8
    epoch_ms: float = 2000.0
    chunk_ms: float = 500.0
    warmup_ms: float = 300.0
    """Simulated once before the first epoch, without learning (leaves the rest state)."""
    learning_rate: float = 0.03
    lr_decay: float = 1.0
    """Learning rate x this after every weight update (1 = constant); a function of the
    epoch only, so resuming needs no scheduler state."""
    seed: int = 0
    mode: str = "statistics"
    targets: Targets = field(default_factory=Targets)
    weights: LossWeights = field(default_factory=LossWeights)
    network: EIAssemblyConfig = field(default_factory=EIAssemblyConfig)
    teacher_scales: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    van_rossum_tau_ms: float = 20.0
    teacher_rate_weight: float = 1.0
    teacher_forcing: bool = True
    """Teacher mode: drive the student's recurrent synapses with the teacher's spikes
    (``EIAssemblyNetwork.run(presyn=...)``), so each student neuron sees the teacher's
    presynaptic trains and the same inputs: spike-for-spike comparison is well posed
    (free-running, the chaotic nets decorrelate within tens of ms)."""

    def validate(self) -> None:
        for name in ("epochs", "accumulation_interval", "checkpoint_interval", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"[simulation] {name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_interval % self.accumulation_interval:
            raise ValueError(
                "checkpoint_interval must be a multiple of accumulation_interval (checkpoints "
                f"are written between weight updates), got {self.checkpoint_interval} and "
                f"{self.accumulation_interval}"
            )
        if self.mode not in ("statistics", "teacher"):
            raise ValueError(f"mode must be 'statistics' or 'teacher', got {self.mode!r}")
        dt = self.network.neuron.dt_ms
        for name in ("epoch_ms", "chunk_ms"):
            v = getattr(self, name)
            if not v > 0 or abs(v / dt - round(v / dt)) > 1e-9:
                raise ValueError(f"{name} must be a positive multiple of dt_ms={dt}, got {v}")
        if abs(self.epoch_ms / self.chunk_ms - round(self.epoch_ms / self.chunk_ms)) > 1e-9:
            raise ValueError("epoch_ms must be a whole number of chunk_ms")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if len(self.teacher_scales) != 6 or min(self.teacher_scales) <= 0:
            raise ValueError("teacher_scales needs 6 positive numbers (order: PATHWAYS)")
        self.network.validate()

    @property
    def steps_per_chunk(self) -> int:
        return int(round(self.chunk_ms / self.network.neuron.dt_ms))

    @property
    def chunks_per_epoch(self) -> int:
        return int(round(self.epoch_ms / self.chunk_ms))


@dataclass
class EpochRecord:
    """What the last epoch produced, for logs and plots (detached, batch element 0)."""

    summary: dict[str, float]
    terms: dict[str, float]
    loss: float
    input_spikes: np.ndarray  # (T, n_in) last chunk
    spikes: np.ndarray  # (T, n) last chunk
    v: np.ndarray  # (T, n) last chunk
    counts: np.ndarray  # (n, B) spike counts over the epoch
    rates_hz: np.ndarray
    cv: np.ndarray
    n_isi: np.ndarray
    teacher_spikes: np.ndarray | None = None


class FiringStatisticsTrainer:
    """Holds the network, optimizer and simulation state; ``run_epoch`` trains one epoch."""

    def __init__(self, config: TrainConfig):
        config.validate()
        self.cfg = cfg = config
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)  # noqa: NPY002 (global state is what the checkpoint saves)
        net_cfg = cfg.network
        if cfg.mode == "teacher":
            if net_cfg.weight_mode == "connection":
                raise ValueError(
                    "teacher mode recovers pathway scales: weight_mode must not be 'connection'"
                )
            self.teacher = EIAssemblyNetwork(
                replace(
                    net_cfg, init_pathway_scales=tuple(cfg.teacher_scales), weight_mode="pathway"
                )
            )
            self.teacher.requires_grad_(False)
        else:
            self.teacher = None
        self.net = EIAssemblyNetwork(net_cfg)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.learning_rate)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_loss = math.inf
        b, n = cfg.batch_size, self.net.n
        self.state = self.net.init_state(b)
        self.teacher_state = self.teacher.init_state(b) if self.teacher else None
        self.last_spike = torch.full((n, b), NO_SPIKE)
        self.teacher_last = torch.full((n, b), NO_SPIKE)
        self.t_abs = 0
        k = self.net.consts
        self.e_leak, self.theta = k.e_leak[:, 0], k.theta[:, 0]
        self.rate_target = torch.where(
            self.net.is_exc, cfg.targets.rate_e_hz, cfg.targets.rate_i_hz
        ).float()
        self._warm_up()

    # ------------------------------------------------------------------ simulation
    def _warm_up(self) -> None:
        steps = int(round(self.cfg.warmup_ms / self.net.dt_ms))
        if steps <= 0:
            return
        inputs = self.net.sample_inputs(steps, self.cfg.batch_size)
        with torch.no_grad():
            _, self.state = self.net.run(inputs, self.state, record_v=False)
            if self.teacher is not None:
                _, self.teacher_state = self.teacher.run(inputs, self.teacher_state, False)

    def run_epoch(self) -> EpochRecord:
        """Simulate and back-propagate one epoch; step the optimizer at the end of an
        accumulation window."""
        cfg = self.cfg
        acc = cfg.accumulation_interval
        if self.epoch % acc == 0:
            self.optimizer.zero_grad(set_to_none=True)
            self.window = RunningStats(self.net.n, cfg.batch_size, self.net.dt_ms)
            self.teacher_window = RunningStats(self.net.n, cfg.batch_size, self.net.dt_ms)
        counts = torch.zeros(self.net.n, cfg.batch_size)
        n_chunks = cfg.chunks_per_epoch
        for _ in range(n_chunks):
            inputs = self.net.sample_inputs(cfg.steps_per_chunk, cfg.batch_size)
            t0 = self.t_abs
            teacher_spikes = presyn = None
            if self.teacher is not None:
                with torch.no_grad():
                    t_prev = self.teacher_state.spikes
                    tact, self.teacher_state = self.teacher.run(
                        inputs, self.teacher_state, record_v=False
                    )
                teacher_spikes = tact.spikes
                self.teacher_last = self.teacher_window.add(
                    tact.spikes, None, self.teacher_last, t0
                )
                if cfg.teacher_forcing:
                    presyn = torch.cat([t_prev[None], teacher_spikes[:-1]])
            v_before = self.state.cond.v.detach()
            act, state = self.net.run(inputs, self.state.detach(), presyn=presyn)
            last = self.window.add(
                act.spikes, act.v, self.last_spike, t0, act.v_pre, v_before, self.theta
            )
            if self.teacher is not None:
                loss, terms = self._teacher_loss(act.spikes, teacher_spikes)
            else:
                loss, terms = self._statistics_loss(self.window)
            (loss / (n_chunks * acc)).backward()
            self.window.detach()
            self.state, self.last_spike = state.detach(), last
            self.t_abs += cfg.steps_per_chunk
            counts += act.spikes.detach().sum(0)
        self.epoch += 1
        if self.epoch % acc == 0:
            self.optimizer.step()
            self._set_lr()
        cv, n_isi = self.window.cv()
        record = EpochRecord(
            summary=summarize(
                self.window, self.net.is_exc, self.e_leak, self.theta, cfg.targets.min_isis
            ),
            terms=terms,
            loss=float(loss.detach()),
            input_spikes=inputs[:, :, 0].numpy(),
            spikes=act.spikes.detach()[:, :, 0].numpy(),
            v=act.v.detach()[:, :, 0].numpy(),
            counts=counts.numpy(),
            rates_hz=self.window.rates_hz().detach().numpy(),
            cv=cv.detach().numpy(),
            n_isi=n_isi.numpy(),
            teacher_spikes=None if teacher_spikes is None else teacher_spikes[:, :, 0].numpy(),
        )
        row = {"epoch": self.epoch, "loss": record.loss, **record.terms, **record.summary}
        row["pathway_scales"] = self.net.pathway_scales.detach().tolist()
        if self.teacher is not None:
            row["scale_error"] = self.scale_errors()
        self.history.append(row)
        return record

    def _statistics_loss(self, stats: RunningStats):
        """The statistics loss of ``stats`` against this trainer's targets and weights."""
        cfg = self.cfg
        return statistics_loss(
            stats,
            self.rate_target,
            self.e_leak,
            self.theta,
            cfg.targets,
            cfg.weights,
            self.net.is_exc,
        )

    def _teacher_loss(self, spikes, teacher_spikes):
        cfg = self.cfg
        vr = van_rossum_distance(spikes, teacher_spikes, cfg.van_rossum_tau_ms, self.net.dt_ms)
        target = self.teacher_window.rates_hz()
        fr = teacher_rate_loss(self.window.rates_hz(), target, self.net.is_exc)
        loss = cfg.weights.van_rossum * vr + cfg.teacher_rate_weight * fr
        return loss, {"van_rossum": float(vr.detach()), "firing_rate": float(fr.detach())}

    def evaluate(self, duration_ms: float, seed: int = 12345) -> dict[str, float]:
        """Statistics of the current network over ``duration_ms`` x ``batch_size`` trials
        from rest (after the warm-up), without learning, on its own random stream (the
        training state and RNG are untouched). Longer than a training window: the window
        statistics of this net fluctuate by ~20 % between consecutive 2 s windows."""
        cfg = self.cfg
        gen = torch.Generator().manual_seed(seed)
        b, steps = cfg.batch_size, cfg.steps_per_chunk
        with torch.no_grad():
            state = self.net.init_state(b)
            warm = int(round(cfg.warmup_ms / self.net.dt_ms))
            if warm > 0:
                _, state = self.net.run(self.net.sample_inputs(warm, b, gen), state, False)
            stats = RunningStats(self.net.n, b, self.net.dt_ms)
            last = torch.full((self.net.n, b), NO_SPIKE)
            for c in range(max(1, int(round(duration_ms / cfg.chunk_ms)))):
                v0 = state.cond.v
                act, state = self.net.run(self.net.sample_inputs(steps, b, gen), state)
                last = stats.add(act.spikes, act.v, last, c * steps, act.v_pre, v0, self.theta)
            _, terms = self._statistics_loss(stats)
            out = summarize(stats, self.net.is_exc, self.e_leak, self.theta, cfg.targets.min_isis)
        out["duration_ms"] = float(duration_ms)
        out["loss_terms"] = terms
        out["pathway_scales"] = self.net.pathway_scales.detach().tolist()
        if self.teacher is not None:
            out["scale_error"] = self.scale_errors()
        return out

    def _set_lr(self) -> None:
        n_updates = self.epoch // self.cfg.accumulation_interval
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.learning_rate * self.cfg.lr_decay**n_updates

    def scale_errors(self) -> list[float]:
        """Relative error of each learned pathway scale vs the teacher's."""
        t = torch.tensor(self.cfg.teacher_scales)
        return ((self.net.pathway_scales.detach() - t).abs() / t).tolist()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_payload(self) -> dict[str, Any]:
        def cond(s: NetState | None):
            if s is None:
                return None
            return {"v": s.cond.v, "q": s.cond.q, "ref": s.cond.ref, "spikes": s.spikes}

        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "losses": self.history,
            "best_loss": self.best_loss,
            "rng": rng_state(),
            "neuron_state": cond(self.state),
            "teacher_state": cond(self.teacher_state),
            "last_spike_step": self.last_spike,
            "teacher_last_spike_step": self.teacher_last,
            "t_abs": self.t_abs,
            "config": asdict(self.cfg),
        }

    def load_payload(self, ckpt: dict[str, Any]) -> None:
        def cond(d):
            return None if d is None else NetState(CondState(d["v"], d["q"], d["ref"]), d["spikes"])

        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["losses"])
        self.best_loss = float(ckpt["best_loss"])
        self.state = cond(ckpt["neuron_state"])
        self.teacher_state = cond(ckpt["teacher_state"])
        self.last_spike = ckpt["last_spike_step"]
        self.teacher_last = ckpt["teacher_last_spike_step"]
        self.t_abs = int(ckpt["t_abs"])
        set_rng_state(ckpt["rng"])
        if self.state.cond.v.shape[1] != self.cfg.batch_size:
            raise ValueError(
                "checkpoint batch_size differs from the config's; use the run's config"
            )
