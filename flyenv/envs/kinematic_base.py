"""Gymnasium wrappers shared by every task on the kinematic twin.

A task provides a batched torch core (``TwinTaskBatch`` subclass) that steps B
flies at once. ``KinematicTaskEnv`` exposes one fly as a ``gym.Env`` (numpy in and
out); ``KinematicTaskVectorEnv`` exposes all B as a native ``VectorEnv`` with
same-step autoreset: no per-env Python loop anywhere on the step path.

Performance note: the twin's tensors are small (B x a few columns), so on a CPU
shared with other busy processes torch's intra-op threads oversubscribe the cores
(measured: 50x slower at B = 4096 on 2 busy cores); ``torch.set_num_threads(1)`` in
your script avoids that. The library does not change torch's global settings.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from flyenv.bodies.kinematic_fly import KinematicFly, KinematicFlyConfig
from flyenv.envs.odor_task import ACTION_SPACE, SELF_MOTION_OBS_MAX, make_config
from flyenv.envs.validation import validate_box_action

TWIN_KEYS = ("device", "noise", "calibration_path")


def split_twin_kwargs(kwargs: dict[str, Any]) -> tuple[dict, dict]:
    """Separate the twin's own keywords from the task config keywords."""
    kwargs = dict(kwargs)
    twin = {k: kwargs.pop(k) for k in TWIN_KEYS if k in kwargs}
    return kwargs, twin


class TwinTaskBatch:
    """Base of a batched task core (see ``OdorTaxisBatch`` for an example).

    ``step(actions)`` returns (obs, reward, terminated, truncated, extras) as tensors,
    differentiable unless run under ``torch.no_grad()``; ``extras`` holds per-fly
    tensors such as ``distance_mm`` and ``is_success``. Subclasses provide
    ``distance()``, ``reset``, ``step``, ``describe`` and ``render``.
    """

    num_envs: int
    device: torch.device
    generator: torch.Generator

    def _init_twin(
        self,
        num_envs: int,
        config,
        device: str | torch.device,
        noise: bool,
        calibration_path: str | None,
    ) -> None:
        """The body and the per-fly bookkeeping every task needs."""
        self.config = config
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.fly = KinematicFly(
            num_envs,
            KinematicFlyConfig(noise=noise, calibration_path=calibration_path),
            device=self.device,
        )
        f32 = dict(device=self.device, dtype=torch.float32)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.prev_distance = torch.zeros(num_envs, **f32)
        self.prev_xy = torch.zeros(num_envs, 2, **f32)
        self.prev_heading = torch.zeros(num_envs, **f32)
        self.generator = torch.Generator(device=self.device)

    def _begin_episodes(self, started: torch.Tensor, partial: bool) -> None:
        """After ``fly.reset``: zero the step counters and reference states of the flies
        in ``started``. A full reset starts new autograd graphs; a partial one keeps
        the graphs of the flies that carry on."""
        self.steps = torch.where(started, torch.zeros_like(self.steps), self.steps)
        self.prev_xy = torch.where(started[:, None], self.fly.xy, self.prev_xy if partial else 0.0)
        self.prev_heading = torch.where(
            started, self.fly.heading, self.prev_heading if partial else 0.0
        )
        self.prev_distance = torch.where(
            started, self.distance(), self.prev_distance if partial else 0.0
        )

    def self_motion(self) -> torch.Tensor:
        """(B, 3): forward / 10 mm/s, leftward / 10 mm/s, yaw rad/s over the last step."""
        dt = self.config.control_period_s
        d = (self.fly.xy - self.prev_xy) / dt
        c, s = torch.cos(self.prev_heading), torch.sin(self.prev_heading)
        dh = self.fly.heading - self.prev_heading
        yaw = torch.atan2(torch.sin(dh), torch.cos(dh)) / dt
        motion = torch.stack(
            [(c * d[:, 0] + s * d[:, 1]) / 10.0, (-s * d[:, 0] + c * d[:, 1]) / 10.0, yaw], dim=1
        )
        return motion.clamp(-SELF_MOTION_OBS_MAX, SELF_MOTION_OBS_MAX)

    def distance(self) -> torch.Tensor:
        raise NotImplementedError

    def observation_space(self) -> spaces.Box:
        raise NotImplementedError

    def reset(
        self,
        rng: np.random.Generator,
        mask: torch.Tensor | None = None,
        options: dict | None = None,
    ):
        raise NotImplementedError

    def step(self, actions: torch.Tensor):
        raise NotImplementedError

    def describe(self, index: int, extras: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Info dict of one fly, as the MuJoCo version of the task reports it."""
        raise NotImplementedError

    def info_arrays(self, extras: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Per-env info arrays for the vector env."""
        info = {k: v.detach().cpu().numpy() for k, v in extras.items()}
        info["position_mm"] = self.fly.xy.detach().cpu().numpy()
        info["heading_rad"] = self.fly.heading.detach().cpu().numpy()
        return info

    def render(self, index: int, trail_xy: np.ndarray, width: int, height: int) -> np.ndarray:
        raise NotImplementedError


class KinematicTaskEnv(gym.Env):
    """One fly of a twin task; subclasses set ``config_cls``, ``batch_cls``, ``env_name``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}
    config_cls: type
    batch_cls: type
    env_name: str

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        kwargs, twin = split_twin_kwargs(kwargs)
        self.config = make_config(self.config_cls, kwargs, self.env_name)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode={render_mode!r}; {self.env_name} supports None or 'rgb_array'"
            )
        self.render_mode = render_mode
        self.metadata = {
            **self.metadata,
            "render_fps": int(round(1.0 / self.config.control_period_s)),
        }
        self.batch = self.batch_cls(1, self.config, **twin)
        self.observation_space = self.batch.observation_space()
        self.action_space = ACTION_SPACE
        self._needs_reset = True
        self._trail: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.batch.generator.manual_seed(int(seed))
        with torch.no_grad():
            obs, extras = self.batch.reset(self.np_random, options=options)
        self._needs_reset = False
        self._trail = [self.batch.fly.xy[0].cpu().numpy().copy()]
        return obs[0].cpu().numpy(), self.batch.describe(0, extras)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError(
                f"{self.env_name}: call reset() before step() (and after an episode ends)"
            )
        action = validate_box_action(action, self.action_space, self.env_name)
        with torch.no_grad():
            a = torch.as_tensor(action, dtype=torch.float32, device=self.batch.device)[None]
            obs, reward, terminated, truncated, extras = self.batch.step(a)
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._needs_reset = term or trunc
        self._trail.append(self.batch.fly.xy[0].cpu().numpy().copy())
        return obs[0].cpu().numpy(), float(reward[0]), term, trunc, self.batch.describe(0, extras)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.batch.render(
            0, np.array(self._trail), self.config.render_width, self.config.render_height
        )


class KinematicTaskVectorEnv(VectorEnv):
    """All flies of a twin task stepped at once; same-step autoreset.

    A finished env's returned observation is already its next episode's first one;
    the last observation is in ``info["final_obs"]`` (rows valid where
    ``info["_final_obs"]`` is True).
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}
    config_cls: type
    batch_cls: type
    env_name: str

    def __init__(self, num_envs: int, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError("the vector twin does not render; use the single env for videos")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        kwargs, twin = split_twin_kwargs(kwargs)
        self.config = make_config(self.config_cls, kwargs, self.env_name)
        self.num_envs = num_envs
        self.batch = self.batch_cls(num_envs, self.config, **twin)
        self.single_observation_space = self.batch.observation_space()
        self.single_action_space = ACTION_SPACE
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rng = np.random.default_rng()
        self._needs_reset = True

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None  # one random stream drives the whole batch
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.batch.generator.manual_seed(int(seed))
        with torch.no_grad():
            obs, extras = self.batch.reset(self._rng, options=options)
        self._needs_reset = False
        return obs.cpu().numpy(), self.batch.info_arrays(extras)

    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError(f"{self.env_name}: call reset() before step()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions have shape {actions.shape}, expected ({self.num_envs}, 2): one (left, right) row per env"
            )
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf; check the policy's output")
        with torch.no_grad():
            a = torch.as_tensor(actions, device=self.batch.device)
            obs, reward, terminated, truncated, extras = self.batch.step(a)
            info = self.batch.info_arrays(extras)
            done = terminated | truncated
            if bool(done.any()):
                info["final_obs"] = obs.cpu().numpy().copy()
                info["_final_obs"] = done.cpu().numpy()
                fresh, _ = self.batch.reset(self._rng, mask=done)
                obs = torch.where(done[:, None], fresh, obs)
        return (
            obs.cpu().numpy(),
            reward.cpu().numpy(),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info,
        )
