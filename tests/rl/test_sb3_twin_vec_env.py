# moved from tests/test_sb3_twin_vec_env.py
"""SB3 trains on the native batched twin through TwinVecEnv."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

import flyenv  # noqa: F401
from flyenv.rl.sb3_vec_env import TwinVecEnv


def test_ppo_runs_on_the_batched_twin_and_reports_episodes():
    venv = VecMonitor(
        TwinVecEnv(
            gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=64, time_limit_s=0.2), seed=0
        )
    )
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=256, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64 * 32 * 2)
    assert model.num_timesteps >= 64 * 32 * 2
    # 0.2 s episodes end every 20 steps: the monitor must have seen finished episodes.
    assert len(model.ep_info_buffer) > 0


def test_autoreset_infos():
    venv = TwinVecEnv(
        gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=8, time_limit_s=0.05), seed=1
    )
    obs = venv.reset()
    assert obs.shape == (8, 7)
    for _ in range(5):
        obs, rewards, dones, infos = venv.step(np.zeros((8, 2), np.float32))
    assert dones.all()
    assert all(i["TimeLimit.truncated"] for i in infos)
    assert all(i["terminal_observation"].shape == (7,) for i in infos)
    assert np.all(obs[:, 4:] == 0)  # new episodes start at rest


def test_rejects_non_twin_envs():
    with pytest.raises(ValueError, match="SubprocVecEnv"):
        TwinVecEnv(gym.make("flyenv/OdorTaxis-kinematic-v0"))
