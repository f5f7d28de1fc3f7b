# moved from tests/test_lateral_line_env.py
"""flyenv/LateralLine-v0: checkers, determinism, options, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401  (registers the ids)
from flyenv.envs.offline.lateral_line import LateralLineEnv


def _rollout(env, seed, options=None, policy=None):
    obs, info = env.reset(seed=seed, options=options)
    traj = [(obs.copy(), info["x_cm"])]
    while True:
        a = np.array([2.0], np.float32) if policy is None else policy(obs, info)
        obs, r, term, trunc, info = env.step(a)
        traj.append((obs.copy(), r))
        if term or trunc:
            return traj


def test_registered_and_passes_checkers():
    env = gym.make("flyenv/LateralLine-v0")
    assert isinstance(env.unwrapped, LateralLineEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cm action range is deliberately not [-1, 1]
        check_env(env.unwrapped)
        sb3_check_env(LateralLineEnv())


def test_same_seed_same_trajectory():
    a = _rollout(LateralLineEnv(), 5, {"phase": "test"})
    b = _rollout(LateralLineEnv(), 5, {"phase": "test"})
    assert len(a) == len(b) == 101
    for (oa, ra), (ob, rb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
    c = _rollout(LateralLineEnv(), 6, {"phase": "test"})
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def test_train_and_test_phases_and_info():
    env = LateralLineEnv()
    obs, info = env.reset(seed=0, options={"phase": "train", "trial_index": 0, "distance_cm": 0.8})
    assert obs.shape == (100,) and obs.dtype == np.float32
    assert info["phase"] == "train" and info["distance_cm"] == pytest.approx(0.8)
    assert info["x_cm"] == pytest.approx(0.0)  # first trial starts at the head
    n = 1
    while True:
        obs, r, term, trunc, info = env.step(np.array([info["x_cm"]], np.float32))
        assert r <= 0 and not trunc
        n += 1
        if term:
            break
    assert n - 1 == 120  # 1.2 s trial / 10 ms
    obs, info = env.reset(options={"phase": "test", "direction": -1})
    assert info["x_cm"] > 4.0 and info["direction"] == -1.0


def test_reward_is_minus_abs_error_of_the_answered_window():
    env = LateralLineEnv()
    _, info = env.reset(seed=1, options={"phase": "test"})
    _, r, *_, step_info = env.step(np.array([info["x_cm"] + 0.3], np.float32))
    assert step_info["x_cm"] == pytest.approx(info["x_cm"])
    assert r == pytest.approx(-0.3, abs=1e-5)


def test_afferents_beside_the_sphere_fire_most():
    # The original's dipole sign (docs/research_systems.md, lateral line):
    # the along-line flow right beside the sphere excites afferents.
    env = LateralLineEnv()
    obs_sum = np.zeros(100)
    _, info = env.reset(seed=2, options={"phase": "train", "trial_index": 4, "distance_cm": 0.5})
    for _ in range(5):  # first 50 ms: sphere held at one position
        obs, *_ = env.step(np.array([0.0], np.float32))
        obs_sum += obs
    xi = np.linspace(0, 4, 100)
    under = np.abs(xi - info["x_cm"]) < 0.1
    assert obs_sum[under].mean() > 3 * obs_sum[np.abs(xi - info["x_cm"]) > 2].mean()


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([1.0, 2.0], np.float32), "one number"),
        (np.array([np.nan], np.float32), "finite"),
        (np.zeros((1, 1, 1), np.float32), "one number"),
    ],
)
def test_bad_action_raises(action, match):
    env = LateralLineEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"phase": "eval"}, "phase"),
        ({"direction": 0}, "direction"),
        ({"distance_cm": -1.0}, "distance_cm"),
        ({"trial_index": -2}, "trial_index"),
        ({"speed": 3}, "unknown"),
    ],
)
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        LateralLineEnv().reset(seed=0, options=options)


def test_step_before_reset_and_render_mode():
    with pytest.raises(RuntimeError, match="reset"):
        LateralLineEnv().step(np.array([0.0], np.float32))
    with pytest.raises(ValueError, match="render_mode"):
        LateralLineEnv(render_mode="human")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_env(mode):
    envs = gym.make_vec("flyenv/LateralLine-v0", num_envs=2, vectorization_mode=mode)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 100)
    obs, r, *_ = envs.step(np.full((2, 1), 2.0, np.float32))
    assert r.shape == (2,) and np.all(r <= 0)
    envs.close()
