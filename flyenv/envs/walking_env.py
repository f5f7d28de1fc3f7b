"""One fly doing one walking task on one body, as a ``gym.Env`` (numpy in and out).

Every walking id in ``flyenv.registration`` is this class with a (task, body) pair:
``gym.make("flyenv/OdorTaxis-v0")`` is
``WalkingEnv(task="flyenv.tasks.odor_taxis:OdorTaxisTask", body="mujoco")``.
The spaces, reward, start state and episode end are the task's: see its module
docstring (``help(flyenv.tasks.odor_taxis)``).

Several MuJoCo flies in parallel: ``gym.make_vec(id, num_envs=n, vectorization_mode=
"async", vector_kwargs={"context": "spawn"})``. Start the workers by spawn: a forked
worker of a process that has already run MuJoCo and torch can deadlock.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from flyenv.envs.validation import validate_box_action
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.tasks.base import ACTION_SPACE, WalkingTask, make_config

BODIES = ("mujoco", "twin")
TWIN_KEYS = ("device", "noise", "calibration_path")


def resolve_task(task: str | type[WalkingTask]) -> type[WalkingTask]:
    """A task class from its "module:Class" path (or the class itself)."""
    if isinstance(task, type):
        return task
    if ":" not in task:
        raise ValueError(
            f"task={task!r}; name a WalkingTask subclass as 'module:Class', e.g. "
            "'flyenv.tasks.odor_taxis:OdorTaxisTask'"
        )
    module, name = task.split(":")
    return getattr(importlib.import_module(module), name)


def env_name(task_cls: type[WalkingTask], body: str) -> str:
    return f"{task_cls.name}-v0" if body == "mujoco" else f"{task_cls.name}-kinematic-v0"


def split_twin_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the twin's own keywords (device, noise, calibration_path) from the task's."""
    kwargs = dict(kwargs)
    return kwargs, {k: kwargs.pop(k) for k in TWIN_KEYS if k in kwargs}


class WalkingEnv(gym.Env):
    """A walking task on the MuJoCo fly (``body="mujoco"``) or on one twin fly (``"twin"``).

    Attributes: ``task`` and ``body`` (the composed parts), ``episodes``
    (``WalkingEpisodes``, the tensor core), ``config`` (the task config).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(
        self,
        task: str | type[WalkingTask] = "flyenv.tasks.odor_taxis:OdorTaxisTask",
        body: str = "mujoco",
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        task_cls = resolve_task(task)
        if body not in BODIES:
            raise ValueError(f"body={body!r}; use one of {BODIES}")
        self.env_name = env_name(task_cls, body)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode={render_mode!r}; {self.env_name} supports None or 'rgb_array'"
            )
        twin_kwargs: dict[str, Any] = {}
        if body == "twin":
            kwargs, twin_kwargs = split_twin_kwargs(kwargs)
        self.config = cfg = make_config(task_cls.config_cls, kwargs, self.env_name)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / cfg.control_period_s))}
        self.scene = None
        if body == "mujoco":
            from flyenv.envs.mujoco_scene import MujocoScene

            task_obj = task_cls(cfg, 1, "cpu", torch.float64)
            self.scene = MujocoScene(task_obj, cfg.physics_timestep_s, cfg.spawn_height_mm)
            self.episodes = WalkingEpisodes(task_obj, self.scene.body)
        else:
            self.episodes = WalkingEpisodes.twin(task_cls, 1, cfg, **twin_kwargs)
        self.task, self.body = self.episodes.task, self.episodes.body
        self.observation_space = self.task.observation_space()
        self.action_space = ACTION_SPACE
        self._needs_reset = True
        self._trail: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.body.seed(seed)
        with torch.no_grad():
            obs, extras = self.episodes.reset(self.np_random, options=options)
        self._needs_reset = False
        self._trail = [self.episodes.start_xy[0].copy()]
        if self.scene is not None:
            self.scene.reset_view(self.episodes.start_xy[0])
        return self._obs(obs), self.episodes.describe(0, extras)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError(
                f"{self.env_name}: call reset() before step() (and after an episode ends)"
            )
        action = validate_box_action(action, self.action_space, self.env_name)
        with torch.no_grad():
            a = torch.as_tensor(action, dtype=self.episodes.dtype, device=self.episodes.device)
            obs, reward, terminated, truncated, extras = self.episodes.step(a[None])
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._needs_reset = term or trunc
        self._trail.append(self.body.xy[0].detach().cpu().numpy().copy())
        if self.scene is not None:
            self.scene.add_trail_point()
        info = self.episodes.describe(0, extras)
        return self._obs(obs), float(reward[0]), term, trunc, info

    def _obs(self, obs: torch.Tensor) -> np.ndarray:
        return obs[0].cpu().numpy().astype(np.float32)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        cfg = self.config
        time_s = float(self.episodes.time_s()[0])
        if self.scene is not None:
            return self.scene.render(
                cfg.render_width, cfg.render_height, cfg.camera, self._trail[0], time_s
            )
        return self.task.render_topdown(
            0,
            np.array(self._trail),
            float(self.body.heading[0]),
            time_s,
            cfg.render_width,
            cfg.render_height,
        )

    def close(self) -> None:
        if self.scene is not None:
            self.scene.close()
