"""The native batched twin as a stable-baselines3 ``VecEnv``.

SB3's own ``DummyVecEnv`` steps one env at a time in Python; this adapter hands
SB3 the whole batch from one tensor step of a ``WalkingVectorEnv`` (e.g.
``gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=1024)``). Episodes that
end are reset in the same step (the twin's same-step autoreset, which is SB3's
convention too): their last observation is in ``infos[i]["terminal_observation"]``
and time-limit ends are flagged with ``infos[i]["TimeLimit.truncated"]``.
With ``reseed_every_reset=True`` every ``reset()`` draws the same starts from
``seed`` (an evaluation env: each evaluation sees the same flies).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from flyenv.envs.walking_vector_env import WalkingVectorEnv


class TwinVecEnv(VecEnv):
    def __init__(
        self,
        vector_env: WalkingVectorEnv,
        seed: int | None = None,
        reseed_every_reset: bool = False,
    ) -> None:
        if not isinstance(vector_env, WalkingVectorEnv):
            raise ValueError(
                "TwinVecEnv wraps the twin's native vector env: pass "
                'gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=N) (or the plume twin); '
                "for MuJoCo envs use stable_baselines3's SubprocVecEnv"
            )
        self.venv = vector_env
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )
        self._seed = seed
        self._reseed = reseed_every_reset
        if reseed_every_reset and seed is None:
            raise ValueError("reseed_every_reset=True needs a seed (the starts to repeat)")
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self._seed)
        if not self._reseed:
            self._seed = None  # later resets continue the same random stream
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = info["final_obs"]
            for i in np.flatnonzero(dones):  # only the envs that ended this step
                infos[i]["terminal_observation"] = final[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i]["is_success"] = bool(info["final_info"]["is_success"][i])
        return obs, reward.astype(np.float32), dones, infos

    def seed(self, seed: int | None = None):
        self._seed = seed
        return [seed] * self.num_envs

    def close(self) -> None:
        self.venv.close()

    # SB3 forwards attribute queries to sub-envs; the batch has one shared config.
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices=None, **method_kwargs
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
