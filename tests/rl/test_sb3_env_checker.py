# moved from tests/test_sb3_env_checker.py
"""SB3's env checker passes on every registered flyenv environment (cheap configs)."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import pytest
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401
from flyenv.registration import ENVS

CHEAP = {
    "flyenv/OdorTaxis-v0": {"time_limit_s": 0.05},
    "flyenv/OdorTaxis-kinematic-v0": {"time_limit_s": 0.05},
    "flyenv/PlumeTracking-v0": {"time_limit_s": 0.05},
    "flyenv/PlumeTracking-kinematic-v0": {"time_limit_s": 0.05},
    "flyenv/OdorChoice-v0": {"time_limit_s": 0.05},
    "flyenv/OdorChoice-kinematic-v0": {"time_limit_s": 0.05},
    "flyenv/FiringStatistics-v0": {"chunk_ms": 50.0, "warmup_ms": 10.0, "max_steps": 2},
}


@pytest.fixture(scope="module")
def whole_brain_dir(tmp_path_factory):
    from flyenv.connectome.synthetic_whole_brain import SCALES, generate

    tiny = replace(SCALES["tiny"], n_neurons=120, n_neuropils=5, n_frames=40, frame_ms=10.0)
    return str(generate(tmp_path_factory.mktemp("wb"), tiny, progress=False))


@pytest.mark.parametrize("env_id", [e.id for e in ENVS])
def test_sb3_check_env_on_every_registered_env(env_id, request):
    kwargs = dict(CHEAP.get(env_id, {}))
    if env_id == "flyenv/WholeBrainActivity-v0":
        kwargs.update(data_dir=request.getfixturevalue("whole_brain_dir"), warmup_frames=3)
    env = gym.make(env_id, **kwargs)
    try:
        sb3_check_env(env.unwrapped, warn=True)
    finally:
        env.close()


def test_the_orn_observation_passes_too():
    for env_id in ("flyenv/OdorTaxis-v0", "flyenv/OdorTaxis-kinematic-v0"):
        env = gym.make(env_id, observation="orn", odor_names=("ethyl acetate",), time_limit_s=0.05)
        sb3_check_env(env.unwrapped, warn=True)
        env.close()
