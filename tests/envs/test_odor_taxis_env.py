# moved from tests/test_odor_taxis_env.py
"""OdorTaxis-v0 as a user meets it: registration, API contracts, errors, determinism."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401
from flyenv.bodies.hybrid_turning import action_to_drive
from flyenv.bodies.mujoco_fly import MujocoFly, PhysicsUnstableError
from flyenv.envs.walking_env import WalkingEnv
from flyenv.tasks.odor_taxis import OdorTaxisTask


def test_registered_after_import(odor_env):
    assert "flyenv/OdorTaxis-v0" in gym.registry
    assert isinstance(odor_env.unwrapped, WalkingEnv)
    assert isinstance(odor_env.unwrapped.task, OdorTaxisTask)


def test_make_with_module_prefix_without_import():
    code = (
        "import gymnasium as gym, sys; "
        "assert 'flyenv' not in sys.modules; "
        "env = gym.make('flyenv:flyenv/OdorTaxis-v0'); "
        "print(env.observation_space.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(7,)" in out.stdout


def test_gymnasium_check_env(odor_env):
    gym_check_env(odor_env.unwrapped, skip_render_check=True)


def test_sb3_check_env(odor_env):
    sb3_check_env(odor_env.unwrapped, warn=True)


def test_spaces_and_info(odor_env):
    assert odor_env.action_space.shape == (2,)
    assert odor_env.observation_space.shape == (4 + 3,)
    obs, info = odor_env.reset(seed=3)
    assert odor_env.observation_space.contains(obs)
    for key in ("distance_mm", "position_mm", "is_success", "termination_reason", "time_s"):
        assert key in info
    # Source position is never in the observation: obs is odor (>= 0) + self-motion.
    assert np.all(obs[:4] > 0)
    obs, reward, terminated, truncated, info = odor_env.step(np.zeros(2, np.float32))
    assert odor_env.observation_space.contains(obs)
    assert np.isfinite(reward) and not terminated and not truncated
    assert info["time_s"] == pytest.approx(0.01)


def test_action_mapping_covers_flygym_range():
    np.testing.assert_allclose(action_to_drive(np.array([-1.0, 1.0])), [-0.5, 1.5])
    np.testing.assert_allclose(action_to_drive(np.array([0.0, 0.5])), [0.5, 1.0])


def test_same_seed_same_trajectory():
    a = gym.make("flyenv/OdorTaxis-v0")
    b = gym.make("flyenv/OdorTaxis-v0")
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (20, 2)).astype(np.float32)
    oa, ia = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    np.testing.assert_array_equal(oa, ob)
    for act in actions:
        oa, ra, *_, ia = a.step(act)
        ob, rb, *_, ib = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ia["position_mm"], ib["position_mm"])
        assert ra == rb
    # A different seed gives a different start.
    oc, ic = a.reset(seed=12)
    assert ic["source_position_mm"][0] != ib["source_position_mm"][0]


# Async workers start by spawn: a forked MuJoCo/torch process occasionally deadlocked here.
SPAWN = {"sync": {}, "async": {"vector_kwargs": {"context": "spawn"}}}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec(mode):
    envs = gym.make_vec("flyenv/OdorTaxis-v0", num_envs=2, vectorization_mode=mode, **SPAWN[mode])
    obs, info = envs.reset(seed=[0, 1])
    assert obs.shape == (2, 7)
    for _ in range(3):
        obs, rew, term, trunc, info = envs.step(np.zeros((2, 2), np.float32))
    assert obs.shape == (2, 7) and rew.shape == (2,)
    assert not np.array_equal(obs[0], obs[1])
    envs.close()


def test_bad_actions_raise_clear_errors(odor_env):
    odor_env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        odor_env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\).*expected \(2,\)"):
        odor_env.step(np.zeros(3))
    with pytest.raises(ValueError, match="numeric"):
        odor_env.step("left")


def test_bad_config_raises_clear_errors():
    with pytest.raises(TypeError, match="unknown option.*time_limit"):
        gym.make("flyenv/OdorTaxis-v0", time_limit=5)
    with pytest.raises(ValueError, match="success_radius_mm"):
        gym.make("flyenv/OdorTaxis-v0", source_distance_mm=(1.0, 3.0))
    with pytest.raises(ValueError, match="second channel"):
        gym.make("flyenv/OdorTaxis-v0", n_aversive_sources=1, odor_channels=1)


def test_step_before_reset_raises():
    env = gym.make("flyenv/OdorTaxis-v0", time_limit_s=0.02)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.zeros(2))


def test_truncates_at_time_limit():
    env = gym.make("flyenv/OdorTaxis-v0", time_limit_s=0.05)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[2:4] for _ in range(5)]
    assert flags[-1] == (False, True)
    assert all(f == (False, False) for f in flags[:-1])


def test_aversive_channel_reports_side(monkeypatch):
    env = gym.make("flyenv/OdorTaxis-v0", n_aversive_sources=1)
    assert env.observation_space.shape == (11,)
    # Fly faces +x; an aversive source 4 mm ahead and 3 mm to its left (+y).
    obs, info = env.reset(
        seed=0, options={"start_heading_rad": 0.0, "aversive_positions_mm": [[4.0, 3.0]]}
    )
    left_antenna, right_antenna = obs[4 + 2], obs[4 + 3]
    assert left_antenna > right_antenna
    # Mirror it to the right.
    obs, _ = env.reset(
        seed=0, options={"start_heading_rad": 0.0, "aversive_positions_mm": [[4.0, -3.0]]}
    )
    assert obs[4 + 2] < obs[4 + 3]


def test_flip_terminates_with_reason(monkeypatch):
    env = gym.make("flyenv/OdorTaxis-v0")
    env.reset(seed=0)
    monkeypatch.setattr(MujocoFly, "is_flipped", property(lambda self: True))
    _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert terminated and not truncated
    assert info["termination_reason"] == "flipped" and not info["is_success"]
    assert reward < -5


def test_unstable_physics_terminates_with_reason(monkeypatch):
    env = gym.make("flyenv/OdorTaxis-v0")
    env.reset(seed=0)

    def explode(self, drive, n_steps):
        raise PhysicsUnstableError("test")

    monkeypatch.setattr(MujocoFly, "step_drive", explode)
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert terminated and info["termination_reason"] == "physics_unstable"
    assert env.observation_space.contains(obs)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))
