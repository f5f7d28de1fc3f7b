# moved from tests/test_firing_statistics_env.py
"""flyenv/FiringStatistics-v0: checkers, determinism, options, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401  (registers the ids)
from flyenv.brains.ei_assembly.network import EIAssemblyConfig
from flyenv.envs.offline.firing_statistics import FiringStatisticsEnv, FiringStatisticsEnvConfig

TINY = FiringStatisticsEnvConfig(
    network=EIAssemblyConfig(n_neurons=60, n_assemblies=3, n_inputs=30, weight_mode="pathway"),
    batch_size=2,
    chunk_ms=200.0,
    warmup_ms=50.0,
    max_steps=4,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _rollout(env, seed, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    traj = [obs.copy()]
    rng = np.random.default_rng(0)
    while True:
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, 6).astype(np.float32))
        traj.append((obs.copy(), r, info["pathway_scales"].copy()))
        if term or trunc:
            return traj


def test_registered_and_passes_checkers():
    env = gym.make("flyenv/FiringStatistics-v0", config=TINY)
    assert isinstance(env.unwrapped, FiringStatisticsEnv)
    assert env.action_space.shape == (6,) and env.observation_space.shape == (22,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checker warnings either
        check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(FiringStatisticsEnv(TINY))


def test_same_seed_same_trajectory_and_truncation():
    a = _rollout(FiringStatisticsEnv(TINY), 3)
    b = _rollout(FiringStatisticsEnv(TINY), 3)
    assert len(a) == 5  # reset + max_steps
    np.testing.assert_array_equal(a[0], b[0])
    for (oa, ra, sa), (ob, rb, sb) in zip(a[1:], b[1:], strict=True):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
        np.testing.assert_array_equal(sa, sb)
    c = _rollout(FiringStatisticsEnv(TINY), 4)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a[1:], c[1:], strict=True))


def test_actions_scale_pathways_and_reward_is_minus_loss():
    env = FiringStatisticsEnv(TINY)
    obs, info = env.reset(seed=0)
    np.testing.assert_allclose(obs[8:16], [0.5, 2.0, 1, 1, 0, 0, 0.8, 0.8])
    a = np.array([1, -1, 0, 0, 0.5, 0], np.float32)
    obs, r, term, trunc, info = env.step(a)
    np.testing.assert_allclose(info["pathway_scales"], 1.5**a, rtol=1e-5)
    np.testing.assert_allclose(obs[16:], np.log(1.5**a), atol=1e-5)
    w = TINY.weights
    terms = info["loss_terms"]
    expected = sum(getattr(w, k) * v for k, v in terms.items())
    assert r == pytest.approx(-expected, rel=1e-5) and not term
    # more inhibition onto E lowers the E rate (same input spikes: reseed)
    env.reset(seed=1)
    _, _, _, _, i0 = env.step(np.zeros(6, np.float32))
    rate0 = env.step(np.zeros(6, np.float32))[0][0]
    env.reset(seed=1)
    env.step(np.zeros(6, np.float32))
    rate1 = env.step(np.array([0, 0, 1, 0, -1, 0], np.float32))[0][0]
    assert rate1 < rate0


def test_teacher_mode_and_options():
    env = FiringStatisticsEnv(TINY)
    ts = [1.2, 0.8, 1.0, 1.0, 1.3, 0.9]
    obs, info = env.reset(seed=0, options={"mode": "teacher", "teacher_scales": ts})
    np.testing.assert_allclose(info["teacher_scales"], ts, rtol=1e-6)
    obs, r, *_, info = env.step(np.zeros(6, np.float32))
    assert set(info["loss_terms"]) == {"van_rossum", "firing_rate"} and r < 0
    assert info["scale_error"][0] == pytest.approx(abs(1 - 1.2) / 1.2, rel=1e-5)
    # a student equal to its teacher sees the same spikes: zero loss
    env.reset(seed=0, options={"mode": "teacher", "teacher_scales": ts, "init_scales": ts})
    _, r, *_ = env.step(np.zeros(6, np.float32))
    assert r == pytest.approx(0.0, abs=1e-6)
    obs, _ = env.reset(seed=0, options={"targets": {"rate_e_hz": 1.0, "cv": 0.7}})
    assert obs[8] == pytest.approx(1.0) and obs[10] == pytest.approx(0.7)


def test_bad_input_raises_clear_errors():
    env = FiringStatisticsEnv(TINY)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(6, np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan] + [0] * 5, np.float32))
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"foo": 1})
    with pytest.raises(ValueError, match="mode"):
        env.reset(options={"mode": "rl"})
    with pytest.raises(ValueError, match="teacher_scales"):
        env.reset(options={"mode": "teacher", "teacher_scales": [1, 2]})
    with pytest.raises(ValueError, match="target key"):
        env.reset(options={"targets": {"rate": 1}})
    with pytest.raises(ValueError, match="render_mode"):
        FiringStatisticsEnv(TINY, render_mode="human")
    env.reset(seed=0)
    for _ in range(TINY.max_steps):
        env.step(np.zeros(6, np.float32))
    with pytest.raises(RuntimeError, match="ended"):
        env.step(np.zeros(6, np.float32))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec(mode):
    envs = gym.make_vec(
        "flyenv/FiringStatistics-v0", num_envs=2, vectorization_mode=mode, config=TINY
    )
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 22)
    obs, r, term, trunc, _ = envs.step(np.zeros((2, 6), np.float32))
    assert r.shape == (2,) and np.all(np.isfinite(r))
    envs.close()
