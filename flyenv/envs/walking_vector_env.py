"""All flies of a walking task on the kinematic twin, stepped in one tensor op.

``gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=4096)`` builds this class:
no per-env Python loop anywhere on the step path. Autoreset follows gymnasium's
``AutoresetMode.SAME_STEP``: a finished env's returned observation is already its next
episode's first one; its last observation and info are in ``info["final_obs"]`` and
``info["final_info"]`` (rows valid where ``info["_final_obs"]`` / ``info["_final_info"]``
is True).

Performance note: the twin's tensors are small (B x a few columns), so on a CPU
shared with other busy processes torch's intra-op threads oversubscribe the cores
(measured: 50x slower at B = 4096 on 2 busy cores); ``torch.set_num_threads(1)`` in
your script avoids that. The library does not change torch's global settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from flyenv.envs.walking_env import env_name, resolve_task, split_twin_kwargs
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.tasks.base import ACTION_SPACE, WalkingTask, make_config


class WalkingVectorEnv(VectorEnv):
    """``num_envs`` twin flies doing ``task``; see the module docstring."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int,
        task: str | type[WalkingTask] = "flyenv.tasks.odor_taxis:OdorTaxisTask",
        body: str = "twin",
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        task_cls = resolve_task(task)
        if body != "twin":
            raise ValueError(
                f"body={body!r}: the native vector env runs the twin only; vectorise the "
                "MuJoCo env with gymnasium's AsyncVectorEnv or SB3's SubprocVecEnv"
            )
        self.env_name = env_name(task_cls, body)
        if render_mode is not None:
            raise ValueError("the vector twin does not render; use the single env for videos")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        kwargs, twin = split_twin_kwargs(kwargs)
        self.config = make_config(task_cls.config_cls, kwargs, self.env_name)
        self.num_envs = num_envs
        self.episodes = WalkingEpisodes.twin(task_cls, num_envs, self.config, **twin)
        self.task, self.body = self.episodes.task, self.episodes.body
        self.single_observation_space = self.task.observation_space()
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
            self.body.seed(seed)
        with torch.no_grad():
            obs, extras = self.episodes.reset(self._rng, options=options)
        self._needs_reset = False
        return obs.cpu().numpy(), self.episodes.info_arrays(extras)

    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError(f"{self.env_name}: call reset() before step()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions have shape {actions.shape}, expected ({self.num_envs}, 2): one "
                "(left, right) row per env"
            )
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf; check the policy's output")
        with torch.no_grad():
            a = torch.as_tensor(actions, device=self.episodes.device)
            obs, reward, terminated, truncated, extras = self.episodes.step(a)
            info = self.episodes.info_arrays(extras)
            done = terminated | truncated
            if bool(done.any()):
                # gymnasium's SAME_STEP convention: the rows of finished envs report their
                # new episode; the ended one is in final_obs / final_info.
                done_np = done.cpu().numpy()
                final_info = info
                fresh, fresh_extras = self.episodes.reset(self._rng, mask=done)
                obs_np = obs.cpu().numpy()
                obs = torch.where(done[:, None], fresh, obs)
                fresh_info = self.episodes.info_arrays(fresh_extras)
                info = {
                    k: np.where(done_np.reshape((-1,) + (1,) * (v.ndim - 1)), fresh_info[k], v)
                    for k, v in final_info.items()
                }
                info["final_obs"] = obs_np
                info["_final_obs"] = done_np
                info["final_info"] = final_info
                info["_final_info"] = done_np
        return (
            obs.cpu().numpy(),
            reward.cpu().numpy(),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info,
        )
