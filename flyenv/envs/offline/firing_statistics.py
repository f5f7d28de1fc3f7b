"""Offline firing-statistics fitting environment (no body): ``flyenv/FiringStatistics-v0``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from flyenv.brains.ei_assembly.network import PATHWAYS, EIAssemblyConfig, EIAssemblyNetwork
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

_OPTION_KEYS = {"mode", "targets", "teacher_scales", "init_scales"}
_TARGET_KEYS = {"rate_e_hz", "rate_i_hz", "cv", "threshold_ratio"}
STAT_NAMES = (
    "rate_E_hz", "rate_I_hz", "cv_E", "cv_I", "silent_E", "silent_I",
    "membrane_ratio_E", "membrane_ratio_I",
)  # fmt: skip


@dataclass(frozen=True)
class FiringStatisticsEnvConfig:
    """Network and episode settings. The default network is that of the original
    firing-statistics fitting (docs/research_systems.md) at 1/25 scale
    (200 neurons, 5 assemblies, 60 inputs) so an episode step (1 s of activity, 4
    trials) takes ~0.1 s on one core; ``network=EIAssemblyConfig.seed_size()`` gives the
    original's 5,000 neurons."""

    network: EIAssemblyConfig = field(
        default_factory=lambda: EIAssemblyConfig(
            n_neurons=200, n_assemblies=5, n_inputs=60, weight_mode="pathway"
        )
    )
    batch_size: int = 4
    chunk_ms: float = 1000.0
    warmup_ms: float = 200.0
    max_steps: int = 30
    max_factor_per_step: float = 1.5
    """An action of +-1 multiplies / divides a pathway scale by this."""
    scale_bounds: tuple[float, float] = (0.05, 20.0)
    targets: Targets = field(default_factory=Targets)
    weights: LossWeights = field(default_factory=LossWeights)
    van_rossum_tau_ms: float = 20.0
    teacher_scale_range: tuple[float, float] = (0.6, 1.6)
    """Teacher mode without ``teacher_scales``: each drawn log-uniformly in this range."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1:
            raise ValueError("batch_size and max_steps must be >= 1")
        if not self.max_factor_per_step > 1:
            raise ValueError(f"max_factor_per_step must be > 1, got {self.max_factor_per_step}")
        dt = self.network.neuron.dt_ms
        if not self.chunk_ms >= dt:
            raise ValueError(f"chunk_ms must be >= dt_ms ({dt})")
        lo, hi = self.scale_bounds
        if not 0 < lo < 1 < hi:
            raise ValueError(f"scale_bounds must satisfy 0 < lo < 1 < hi, got {self.scale_bounds}")
        self.network.validate()


class FiringStatisticsEnv(gym.Env):
    """
    ## Description
    A connectome-constrained conductance-based LIF network (E/I assemblies driven by
    Poisson mitral-cell inputs; docs/research_systems.md, firing-statistics fitting;
    ``flyenv.brains.ei_assembly.network``)
    must be tuned until its activity has target statistics (mode ``"statistics"``: mean
    rate E 0.5 Hz, I 2 Hz, CV of inter-spike intervals 1, no silent neurons, membrane
    fluctuations reaching ``threshold_ratio`` of the way to threshold) or reproduces a
    teacher network's spike trains (mode ``"teacher"``: same wiring, unknown pathway
    scales, same input spikes; the student's recurrent synapses are driven by the
    teacher's spikes, teacher forcing, so spike trains can be compared one to one). The
    agent controls six per-pathway weight scales
    multiplicatively; each step the env simulates ``chunk_ms`` of activity of
    ``batch_size`` independent trials (state carried over) and reports per-population
    statistics of that chunk. Black-box/RL agents here solve the task the gradient agent
    ``agents/firing_statistics.py`` solves by BPTT.

    ## Action Space
    `Box(-1, 1, (6,), float32)`: scale_p <- scale_p * f^a_p, f = ``max_factor_per_step``
    (1.5), then clipped to ``scale_bounds`` (0.05 to 20).

    | Num | Action                                   | Min | Max | Unit            |
    | --- | ---------------------------------------- | --- | --- | --------------- |
    | 0   | change of the E->E weight scale          | -1  | 1   | log_f (factor)  |
    | 1   | change of the E->I weight scale          | -1  | 1   | log_f (factor)  |
    | 2   | change of the I->E weight scale          | -1  | 1   | log_f (factor)  |
    | 3   | change of the I->I weight scale          | -1  | 1   | log_f (factor)  |
    | 4   | change of the input->E weight scale      | -1  | 1   | log_f (factor)  |
    | 5   | change of the input->I weight scale      | -1  | 1   | log_f (factor)  |

    ## Observation Space
    `Box(lo, hi, (22,), float32)`: the network's statistics over the last chunk, the
    same statistics of the target, and the current log pathway scales (clipped to the
    bounds in the table).

    | Num   | Observation                                                   | Min   | Max   | Unit |
    | ----- | ------------------------------------------------------------- | ----- | ----- | ---- |
    | 0, 1  | mean firing rate of E, I cells                                | 0     | 1000  | Hz   |
    | 2, 3  | mean CV of ISIs of E, I cells with >= 2 intervals (0 if none) | 0     | 100   | -    |
    | 4, 5  | fraction of silent E, I cells (no spike in the chunk)         | 0     | 1     | -    |
    | 6, 7  | membrane ratio (mean V + std V - E_L) / (theta - E_L), E, I   | -10   | 10    | -    |
    | 8-15  | the same 8 numbers for the target (statistics mode: the       | as    | as    |      |
    |       | targets, silent 0; teacher mode: the teacher's measured chunk) | above | above |      |
    | 16-21 | log of the six pathway scales (order of the actions)          | -3.0  | 3.0   | -    |

    ## Rewards
    ``reward = -loss``. Statistics mode: the original's weighted sum (``LossWeights``: 1 x
    rate + 0.5 x CV + 1 x silent + 10 x membrane variance; terms as in
    ``flyenv.metrics.firing_statistics``, the rate term per neuron plus per
    population mean). Teacher mode: van Rossum distance
    (tau 20 ms) to the teacher's spikes + rate loss to the teacher's per-neuron rates.

    ## Starting State
    The wiring is fixed by ``network.seed``; every reset restarts the activity from rest
    (``warmup_ms`` simulated, not scored) with scales ``init_scales`` (default the
    config's ``init_pathway_scales``). ``options``: ``mode`` ("statistics" | "teacher"),
    ``targets`` (dict with any of rate_e_hz, rate_i_hz, cv, threshold_ratio),
    ``teacher_scales`` (6 positive numbers; default drawn log-uniformly in
    ``teacher_scale_range``), ``init_scales`` (6 positive numbers).

    ## Episode End
    - Termination: never (a fitting problem has no terminal state).
    - Truncation: after ``max_steps`` (30) steps.

    ## Info
    ``loss_terms`` (dict), ``pathway_scales`` (6), ``mode``, ``cv_defined_fraction``,
    ``silent_fraction``, and in teacher mode ``teacher_scales`` and ``scale_error`` (6
    relative errors).
    """

    metadata = {"render_modes": [], "render_fps": 1}

    def __init__(
        self,
        config: FiringStatisticsEnvConfig | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        if render_mode is not None:
            raise ValueError(
                f"FiringStatisticsEnv has no rendering; got render_mode={render_mode!r}"
            )
        if config is not None and kwargs:
            raise ValueError("pass either config or keyword overrides, not both")
        self.config = cfg = config or FiringStatisticsEnvConfig(**kwargs)
        self.render_mode = None
        self.action_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
        lo_s, hi_s = np.log(cfg.scale_bounds)
        stat_lo = np.array([0, 0, 0, 0, 0, 0, -10, -10], np.float32)
        stat_hi = np.array([1000, 1000, 100, 100, 1, 1, 10, 10], np.float32)
        self._obs_lo = np.concatenate([stat_lo, stat_lo, np.full(6, lo_s)]).astype(np.float32)
        self._obs_hi = np.concatenate([stat_hi, stat_hi, np.full(6, hi_s)]).astype(np.float32)
        self.observation_space = spaces.Box(self._obs_lo, self._obs_hi, (22,), np.float32)
        self.net = EIAssemblyNetwork(replace(cfg.network, weight_mode="pathway"))
        self.net.requires_grad_(False)
        self.teacher: EIAssemblyNetwork | None = None
        self._steps = int(round(cfg.chunk_ms / self.net.dt_ms))
        k = self.net.consts
        self._e_leak, self._theta = k.e_leak[:, 0], k.theta[:, 0]
        self._t = None

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _scales(value, name: str) -> torch.Tensor:
        a = np.asarray(value, dtype=np.float64)
        if a.shape != (6,) or not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(
                f"options['{name}'] must be 6 positive numbers (order {PATHWAYS}), got {value!r}"
            )
        return torch.tensor(a, dtype=torch.float32)

    def _chunk(self):
        """Simulate one chunk of student (and teacher) on the same input spikes."""
        b = self.config.batch_size
        inputs = self.net.sample_inputs(self._steps, b, self._gen)
        none = torch.full((self.net.n, b), NO_SPIKE)

        def run(net, state, presyn=None):
            v0 = state.cond.v
            act, state = net.run(inputs, state, presyn=presyn)
            stats = RunningStats(net.n, b, net.dt_ms)
            stats.add(act.spikes, act.v, none, 0, act.v_pre, v0, self._theta)
            return act, state, stats

        t_act = t_stats = presyn = None
        if self.teacher is not None:
            t_prev = self._t_state.spikes
            t_act, self._t_state, t_stats = run(self.teacher, self._t_state)
            # teacher forcing: the student's recurrent synapses see the teacher's spikes
            presyn = torch.cat([t_prev[None], t_act.spikes[:-1]])
        act, self._state, stats = run(self.net, self._state, presyn)
        return act, stats, t_act, t_stats

    def _summary_vec(self, stats) -> tuple[np.ndarray, dict]:
        s = summarize(stats, self.net.is_exc, self._e_leak, self._theta, self._targets.min_isis)
        vec = np.array([0.0 if math.isnan(s[k]) else s[k] for k in STAT_NAMES], np.float32)
        return vec, s

    def _observe(self, stats, t_stats) -> tuple[np.ndarray, dict]:
        vec, s = self._summary_vec(stats)
        if t_stats is not None:
            target, _ = self._summary_vec(t_stats)
        else:
            t = self._targets
            tr = t.threshold_ratio
            target = np.array([t.rate_e_hz, t.rate_i_hz, t.cv, t.cv, 0, 0, tr, tr], np.float32)
        logs = self.net.log_pathway_scale.numpy().astype(np.float32)
        obs = np.concatenate([vec, target, logs]).astype(np.float32)
        return np.clip(obs, self._obs_lo, self._obs_hi), s

    def _loss(self, act, stats, t_act, t_stats) -> tuple[float, dict[str, float]]:
        cfg = self.config
        if self.teacher is None:
            target = torch.where(self.net.is_exc, self._targets.rate_e_hz, self._targets.rate_i_hz)
            loss, terms = statistics_loss(
                stats,
                target.float(),
                self._e_leak,
                self._theta,
                self._targets,
                cfg.weights,
                self.net.is_exc,
            )
            return float(loss), terms
        vr = van_rossum_distance(act.spikes, t_act.spikes, cfg.van_rossum_tau_ms, self.net.dt_ms)
        fr = teacher_rate_loss(stats.rates_hz(), t_stats.rates_hz(), self.net.is_exc)
        return float(vr + fr), {"van_rossum": float(vr), "firing_rate": float(fr)}

    def _info(self, s: dict, terms: dict | None) -> dict[str, Any]:
        info = {
            "mode": self._mode,
            "pathway_scales": self.net.pathway_scales.numpy().copy(),
            "cv_defined_fraction": s["cv_defined_fraction"],
            "silent_fraction": s["silent_fraction"],
        }
        if terms is not None:
            info["loss_terms"] = terms
        if self.teacher is not None:
            ts = self.teacher.pathway_scales.numpy()
            info["teacher_scales"] = ts.copy()
            info["scale_error"] = np.abs(info["pathway_scales"] - ts) / ts
        return info

    # ---------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        cfg = self.config
        options = dict(options or {})
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; allowed: {sorted(_OPTION_KEYS)}"
            )
        mode = options.get("mode", "statistics")
        if mode not in ("statistics", "teacher"):
            raise ValueError(f"options['mode'] must be 'statistics' or 'teacher', got {mode!r}")
        tg = dict(options.get("targets") or {})
        if set(tg) - _TARGET_KEYS:
            raise ValueError(
                f"unknown target key(s) {sorted(set(tg) - _TARGET_KEYS)}; allowed: {sorted(_TARGET_KEYS)}"
            )
        if any(not (np.isfinite(v) and v > 0) for v in tg.values()):
            raise ValueError(f"options['targets'] values must be finite and > 0, got {tg}")
        self._targets = replace(cfg.targets, **{k: float(v) for k, v in tg.items()})
        self._mode = mode
        init = options.get("init_scales", cfg.network.init_pathway_scales)
        self.net.set_pathway_scales(self._scales(init, "init_scales"))
        self._gen = torch.Generator().manual_seed(int(self.np_random.integers(2**62)))
        b = cfg.batch_size
        if mode == "teacher":
            if "teacher_scales" in options:
                ts = self._scales(options["teacher_scales"], "teacher_scales")
            else:
                lo, hi = np.log(cfg.teacher_scale_range)
                ts = torch.tensor(np.exp(self.np_random.uniform(lo, hi, 6)), dtype=torch.float32)
            if self.teacher is None:
                self.teacher = EIAssemblyNetwork(replace(cfg.network, weight_mode="pathway"))
                self.teacher.requires_grad_(False)
            self.teacher.set_pathway_scales(ts)
        else:
            self.teacher = None
        with torch.no_grad():
            self._state = self.net.init_state(b)
            self._t_state = self.teacher.init_state(b) if self.teacher else None
            warm = int(round(cfg.warmup_ms / self.net.dt_ms))
            if warm > 0:
                inputs = self.net.sample_inputs(warm, b, self._gen)
                _, self._state = self.net.run(inputs, self._state, record_v=False)
                if self.teacher is not None:
                    _, self._t_state = self.teacher.run(inputs, self._t_state, record_v=False)
            act, stats, t_act, t_stats = self._chunk()
            obs, s = self._observe(stats, t_stats)
        self._t = 0
        return obs, self._info(s, None)

    def step(self, action):
        if self._t is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.config.max_steps:
            raise RuntimeError("episode has ended (truncated); call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (6,):
            raise ValueError(
                f"action must have shape (6,) (one change per pathway {PATHWAYS}), got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        cfg = self.config
        lo, hi = np.log(cfg.scale_bounds)
        logs = self.net.log_pathway_scale.numpy().astype(np.float64)
        new = np.clip(logs + a * np.log(cfg.max_factor_per_step), lo, hi)
        self.net.set_pathway_scales(torch.tensor(np.exp(new), dtype=torch.float32))
        with torch.no_grad():
            act, stats, t_act, t_stats = self._chunk()
            loss, terms = self._loss(act, stats, t_act, t_stats)
            obs, s = self._observe(stats, t_stats)
        self._t += 1
        truncated = self._t >= cfg.max_steps
        return obs, -loss, False, truncated, self._info(s, terms)
