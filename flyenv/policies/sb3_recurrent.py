"""A recurrent stable-baselines3 model (sb3-contrib's ``RecurrentPPO``: LSTM policies or
``flyenv.rl.recurrent_spiking_policy.RecurrentSpikingPolicy``) as a stateful
``policy(obs) -> action``.

The model's hidden state is carried from one call to the next (``model.predict(obs,
state, episode_start)``) and ``reset()`` starts a new episode: the next call passes
``episode_start=True``, which sets the state to rest (``flyenv.recording.run_episode``
calls ``reset()`` before every episode). ``obs`` is one observation (D,) or a batch
(B, D) of envs that start together (``flyenv.rl.evaluation.evaluate_twin``, which counts
each env's first episode only).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def is_recurrent_zip(path: str | Path) -> bool:
    """Whether an SB3 zip's policy class is an sb3-contrib recurrent policy."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
    from stable_baselines3.common.save_util import json_to_data

    with zipfile.ZipFile(path) as zf:
        data = json.loads(zf.read("data"))
    if "policy_class" not in data:
        return False
    try:
        cls = json_to_data(json.dumps({"policy_class": data["policy_class"]}))["policy_class"]
    except Exception:  # a class that no longer imports: not ours to run anyway
        return False
    return isinstance(cls, type) and issubclass(cls, RecurrentActorCriticPolicy)


def is_recurrent_model(model) -> bool:
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    return isinstance(getattr(model, "policy", None), RecurrentActorCriticPolicy)


class RecurrentSB3Policy:
    """``policy(obs) -> action`` around a recurrent SB3 model (module docstring)."""

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic
        self.reset()

    def reset(self) -> None:
        self.state = None
        self._start = True

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        n = 1 if obs.ndim == 1 else obs.shape[0]
        starts = np.full(n, self._start, dtype=bool)
        action, self.state = self.model.predict(
            obs, state=self.state, episode_start=starts, deterministic=self.deterministic
        )
        self._start = False
        return action


def recurrent_batch_policy(model) -> Callable[[int], Callable[[np.ndarray], np.ndarray]]:
    """A recurrent SB3 model as a twin batch-policy factory (``evaluate_twin``)."""
    return lambda n: RecurrentSB3Policy(model)


def recurrent_policy(model) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
    """A recurrent SB3 model as a MuJoCo policy factory (``evaluate_mujoco``)."""
    return lambda: RecurrentSB3Policy(model)
