"""Offline fish lateral-line decoding environment (no body): ``flyenv/LateralLine-v0``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flyenv.stimuli.dipole import (
    ContinuousSweep,
    ContinuousSweepConfig,
    DipoleStimulusConfig,
    TrainingSweep,
    TrainingSweepConfig,
)

_OPTION_KEYS = {"phase", "distance_cm", "direction", "trial_index"}


@dataclass(frozen=True)
class LateralLineEnvConfig:
    """Stimulus and timing of the environment (defaults follow the ``ll_thesis`` task)."""

    n_ll: int = 100
    line_length_cm: float = 4.0
    dt_ms: float = 1.0
    agent_step_ms: float = 10.0
    trial_duration_s: float = 1.2
    hold_s: float = 0.05
    speed_cm_s: float = 5.0
    train_distance_min_cm: float = 0.8
    train_distance_max_cm: float = 1.8
    test_distance_cm: float = 0.8
    test_path_cm: float = 5.0
    test_start_margin_cm: float = 0.5

    def __post_init__(self) -> None:
        if self.n_ll < 1:
            raise ValueError(f"n_ll must be >= 1, got {self.n_ll}")
        if not self.dt_ms > 0 or not self.agent_step_ms >= self.dt_ms:
            raise ValueError("need dt_ms > 0 and agent_step_ms >= dt_ms")
        if abs(self.agent_step_ms / self.dt_ms - round(self.agent_step_ms / self.dt_ms)) > 1e-9:
            raise ValueError("agent_step_ms must be a whole multiple of dt_ms")
        if not 0 < self.train_distance_min_cm <= self.train_distance_max_cm:
            raise ValueError("need 0 < train_distance_min_cm <= train_distance_max_cm")
        if not self.test_distance_cm > 0:
            raise ValueError(f"test_distance_cm must be > 0, got {self.test_distance_cm}")


class LateralLineEnv(gym.Env):
    """
    ## Description
    A sphere (radius 0.5 cm) moves past a fish's lateral line: ``n_ll`` neuromasts on a
    line of ``line_length_cm``. Each neuromast's afferent fires as a Poisson process
    whose rate follows the potential-flow dipole velocity it senses
    (docs/research_systems.md, lateral line: ``r = clip(40 + 300 v + eta, 0, 200)`` Hz,
    eta = spatially correlated OU noise in the
    test sweep). Every agent step the agent sees the afferent spike counts of the last
    ``agent_step_ms`` and reports where the sphere is along the line.

    Two phases, chosen at reset:
    - ``"train"``: one training trial of ``trial_duration_s`` from the held-position
      stream (the sphere is held 50 ms at each neuromast position, sweeping forward then
      back); distance drawn uniformly in [train_distance_min_cm, train_distance_max_cm]
      per snapshot.
    - ``"test"``: the continuous sweep, from 0.5 cm before the line to 0.5 cm past it at
      ``speed_cm_s``, at ``test_distance_cm``, with OU noise.

    ## Action Space
    `Box(-1 - m, L + 1 + m, (1,), float32)`, m = test_start_margin_cm, L = line_length_cm.

    | Num | Action                                              | Min      | Max       | Unit |
    | --- | --------------------------------------------------- | -------- | --------- | ---- |
    | 0   | decoded sphere position along the line (x, 0 = head) | -1.5     | 5.5       | cm   |

    ## Observation Space
    `Box(0, k, (n_ll,), float32)` with k = agent_step_ms / dt_ms (one Bernoulli draw per ms).

    | Num        | Observation                                                | Min | Max | Unit   |
    | ---------- | ---------------------------------------------------------- | --- | --- | ------ |
    | 0..n_ll-1  | spike count of afferent i over the last agent step (x_i = i L/(n_ll-1)) | 0 | k | spikes |

    ## Rewards
    ``reward = -|action - x_true|`` (cm), x_true = mean sphere position over the window
    that produced the observation the action answers.

    ## Starting State
    ``reset`` returns the spike counts of the first window. ``options``:
    ``phase`` ("train" | "test", default "train"), ``distance_cm`` (> 0; overrides the
    drawn or test distance), ``direction`` (+1 head-to-tail, -1 tail-to-head; default +1),
    ``trial_index`` (train only: which 1.2 s trial of the stream; default random).

    ## Episode End
    - Termination: the stimulus ends (a training trial lasts ``trial_duration_s`` = 120
      steps; the test sweep ``test_path_cm / speed_cm_s`` = 100 steps).
    - Truncation: never (no time limit beyond the stimulus).

    ## Info
    ``x_cm`` (true position of the answered window), ``distance_cm``, ``speed_cm_s``,
    ``direction``, ``phase``, ``abs_error_cm`` (step only), ``t_s`` (window end time).
    """

    metadata = {"render_modes": [], "render_fps": 100}

    def __init__(
        self,
        config: LateralLineEnvConfig | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        if render_mode is not None:
            raise ValueError(
                f"LateralLineEnv has no rendering; render_mode must be None, got {render_mode!r}"
            )
        if config is not None and kwargs:
            raise ValueError("pass either config or keyword overrides, not both")
        self.config = cfg = config or LateralLineEnvConfig(**kwargs)
        self.render_mode = None
        self.stim = DipoleStimulusConfig(line_length_cm=cfg.line_length_cm, n_neuromasts=cfg.n_ll)
        self.k = int(round(cfg.agent_step_ms / cfg.dt_ms))
        self.dt_s = cfg.dt_ms * 1e-3
        lo = -1.0 - cfg.test_start_margin_cm
        hi = cfg.line_length_cm + 1.0 + cfg.test_start_margin_cm
        self.action_space = spaces.Box(lo, hi, (1,), np.float32)
        self.observation_space = spaces.Box(0.0, float(self.k), (cfg.n_ll,), np.float32)
        self._episode: dict[str, Any] | None = None
        self._w = 0

    # ------------------------------------------------------------------ stimulus
    def _make_episode(self, options: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; allowed: {sorted(_OPTION_KEYS)}"
            )
        phase = options.get("phase", "train")
        if phase not in ("train", "test"):
            raise ValueError(f"options['phase'] must be 'train' or 'test', got {phase!r}")
        direction = float(options.get("direction", 1.0))
        if direction not in (1.0, -1.0):
            raise ValueError(f"options['direction'] must be +1 or -1, got {direction}")
        distance = options.get("distance_cm")
        if distance is not None and not (np.isfinite(distance) and distance > 0):
            raise ValueError(f"options['distance_cm'] must be a finite number > 0, got {distance}")
        stream_seed = int(self.np_random.integers(2**31))
        if phase == "train":
            trial_steps = int(round(cfg.trial_duration_s / self.dt_s))
            # The stream repeats every forward+back pass; any of its trials can be asked for.
            cycle = int(np.ceil(2 * cfg.n_ll * cfg.hold_s / cfg.trial_duration_s))
            trial = options.get("trial_index")
            if trial is None:
                trial = int(self.np_random.integers(cycle))
            if int(trial) != trial or trial < 0:
                raise ValueError(f"options['trial_index'] must be an int >= 0, got {trial}")
            trial = int(trial)
            dmin, dmax = (
                (distance, distance)
                if distance is not None
                else (
                    cfg.train_distance_min_cm,
                    cfg.train_distance_max_cm,
                )
            )
            sweep = TrainingSweep(
                self.stim,
                TrainingSweepConfig(
                    dt_s=self.dt_s,
                    hold_s=cfg.hold_s,
                    speed_cm_s=cfg.speed_cm_s,
                    direction=direction,
                    fixed_distance=False,
                    distance_min_cm=float(dmin),
                    distance_max_cm=float(dmax),
                ),
                total_steps=(trial + 1) * trial_steps,
                seed=stream_seed,
            )
            data = sweep.window(trial * trial_steps, trial_steps)
        else:
            sweep = ContinuousSweep(
                self.stim,
                ContinuousSweepConfig(
                    dt_s=self.dt_s,
                    speed_cm_s=cfg.speed_cm_s,
                    distance_cm=float(distance) if distance is not None else cfg.test_distance_cm,
                    direction=direction,
                    path_cm=cfg.test_path_cm,
                    start_margin_cm=cfg.test_start_margin_cm,
                ),
                seed=stream_seed,
            )
            data = next(sweep.chunks(sweep.total_steps))
        n_win = data["x_cm"].size // self.k
        if n_win < 1:
            raise ValueError("the stimulus is shorter than one agent step; lower agent_step_ms")
        n = n_win * self.k
        data = {key: val[:n] for key, val in data.items()}
        data["phase"] = phase
        data["n_windows"] = n_win
        return data

    def _window_obs(self, w: int) -> np.ndarray:
        ep = self._episode
        rates = ep["rates_hz"][w * self.k : (w + 1) * self.k]
        spikes = self.np_random.random(rates.shape) < rates * self.dt_s
        return spikes.sum(axis=0).astype(np.float32)

    def _window_info(self, w: int) -> dict[str, Any]:
        ep = self._episode
        sl = slice(w * self.k, (w + 1) * self.k)
        return {
            "x_cm": float(ep["x_cm"][sl].mean()),
            "distance_cm": float(ep["distance_cm"][sl].mean()),
            "speed_cm_s": float(ep["speed_cm_s"][sl].mean()),
            "direction": float(ep["direction"][sl][0]),
            "phase": ep["phase"],
            "t_s": (w + 1) * self.k * self.dt_s,
        }

    # ---------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._episode = self._make_episode(dict(options or {}))
        self._w = 0
        return self._window_obs(0), self._window_info(0)

    def step(self, action):
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        if self._w >= self._episode["n_windows"]:
            raise RuntimeError("episode has ended; call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.size != 1 or a.ndim > 1:
            raise ValueError(
                f"action must hold one number (decoded position in cm, shape (1,)), got shape {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {action!r}")
        x_hat = float(
            np.clip(a.reshape(-1)[0], self.action_space.low[0], self.action_space.high[0])
        )
        info = self._window_info(self._w)
        err = abs(x_hat - info["x_cm"])
        info["abs_error_cm"] = err
        self._w += 1
        terminated = self._w >= self._episode["n_windows"]
        obs = (
            np.zeros(self.observation_space.shape, np.float32)
            if terminated
            else self._window_obs(self._w)
        )
        return obs, -err, terminated, False, info
