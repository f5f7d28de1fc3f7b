# moved from tests/test_whole_brain_env.py
"""flyenv/WholeBrainActivity-v0 on a tiny synthetic brain."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import flyenv  # noqa: F401
from flyenv.connectome.synthetic_whole_brain import SCALES, generate
from flyenv.envs.offline.whole_brain_activity import WholeBrainActivityEnv, export_minari


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads are many times slower."""
    torch.set_num_threads(1)


TINY = replace(SCALES["tiny"], n_neurons=120, n_neuropils=5, n_frames=40, frame_ms=10.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(generate(tmp_path_factory.mktemp("wb_env"), TINY, progress=False))


@pytest.fixture
def env(data_dir):
    return gym.make("flyenv/WholeBrainActivity-v0", data_dir=data_dir, warmup_frames=3)


# the issue fixes the action space to Box(0, max_firing_rate): the checkers' advice to
# normalise it to [-1, 1] is a recommendation, not a failure
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized")
def test_checkers(env):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    assert env.observation_space.shape == (TINY.n_neuropils,)
    assert env.action_space.high.max() == 100.0


def test_teacher_forced_episode_scores_against_the_next_frame(env):
    inner: WholeBrainActivityEnv = env.unwrapped
    obs, info = env.reset(options={"split": "train"})
    np.testing.assert_array_equal(obs, inner.rates[0])
    obs, reward, term, trunc, info = env.step(inner.rates[1])  # the perfect prediction
    assert reward == 0.0 and info["bin_accuracy"] == 1.0 and info["frame"] == 1
    np.testing.assert_array_equal(info["true_next"], inner.rates[1])
    np.testing.assert_array_equal(obs, inner.rates[1])
    obs, reward, *_ = env.step(np.zeros(TINY.n_neuropils, np.float32))
    assert reward == pytest.approx(-np.mean(inner.rates[2].astype(np.float64) ** 2), rel=1e-6)
    steps, done = 2, False
    while not done:
        _, _, done, trunc, _ = env.step(inner.rates[0])
        steps += 1
        assert not trunc
    assert steps == len(inner.train_frames)


def test_closed_loop_feeds_predictions_back_after_warmup(env):
    inner: WholeBrainActivityEnv = env.unwrapped
    obs, info = env.reset(options={"split": "test", "mode": "closed_loop"})
    start = int(inner.test_frames[0])
    np.testing.assert_array_equal(obs, inner.rates[start])
    action = np.full(TINY.n_neuropils, 7.0, np.float32)
    for k in range(3):
        obs, *_, info = env.step(action)
        if k < 2:  # warm-up: true frames
            assert info["observation_is_true"]
            np.testing.assert_array_equal(obs, inner.rates[start + k + 1])
    assert not info["observation_is_true"]
    np.testing.assert_array_equal(obs, action)  # own prediction fed back
    assert info["frame"] == start + 3


def test_closed_loop_info_hides_the_true_frame_until_the_episode_ends(env):
    inner: WholeBrainActivityEnv = env.unwrapped
    env.reset(options={"split": "test", "mode": "closed_loop", "warmup_frames": 3})
    action = np.full(TINY.n_neuropils, 7.0, np.float32)
    done, k, infos = False, 0, []
    while not done:
        obs, _, done, _, info = env.step(action)
        infos.append(info)
        k += 1
        if info["observation_is_true"]:  # warm-up: the next observation is the truth anyway
            np.testing.assert_array_equal(info["true_next"], obs)
        else:
            assert "true_next" not in info
        if not done:
            assert "episode_true_frames" not in info
    assert sum(i["observation_is_true"] for i in infos) == 2  # steps 1, 2 of a 3-frame warm-up
    true = infos[-1]["episode_true_frames"]
    np.testing.assert_array_equal(true, inner.rates[inner.test_frames + 1])
    assert len(true) == k
    # teacher-forced episodes keep true_next on every step (it is the next observation)
    env.reset(options={"split": "test"})
    obs, *_, info = env.step(action)
    np.testing.assert_array_equal(info["true_next"], obs)


def test_same_seed_same_trajectory(data_dir):
    def rollout():
        e = gym.make("flyenv/WholeBrainActivity-v0", data_dir=data_dir)
        e.action_space.seed(3)
        obs, _ = e.reset(
            seed=3, options={"mode": "closed_loop", "split": "test", "warmup_frames": 2}
        )
        out = [obs]
        done = False
        while not done:
            obs, r, done, _, _ = e.step(e.action_space.sample())
            out.append(obs)
            out.append(np.array([r]))
        return np.concatenate(out)

    np.testing.assert_array_equal(rollout(), rollout())


def test_bad_input_is_named(env):
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(TINY.n_neuropils, np.nan, np.float32))
    with pytest.raises(ValueError, match="split"):
        env.reset(options={"split": "validation"})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"phase": "train"})
    with pytest.raises(ValueError, match="split must be"):
        gym.make("flyenv/WholeBrainActivity-v0", split=1.5)


@pytest.mark.filterwarnings("ignore:`author_email` is set to None")
def test_minari_export(data_dir, tmp_path, monkeypatch):
    try:
        import minari
    except ImportError:  # the optional extra is absent: the error says how to get it
        with pytest.raises(ImportError, match="flyenv\\[minari\\]"):
            export_minari(data_dir=data_dir)
        return
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = export_minari("flyenv/wb-test/tiny-v0", data_dir=data_dir)
    assert ds.total_episodes == 2
    back = minari.load_dataset("flyenv/wb-test/tiny-v0")
    ep = next(back.iterate_episodes())
    env = WholeBrainActivityEnv(data_dir=data_dir)
    np.testing.assert_array_equal(ep.observations[0], env.rates[0])
    np.testing.assert_array_equal(ep.actions[0], env.rates[1])  # oracle: the next frame
    assert len(ep.actions) == len(env.train_frames)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec(data_dir, mode):
    envs = gym.make_vec(
        "flyenv/WholeBrainActivity-v0", num_envs=2, vectorization_mode=mode, data_dir=data_dir
    )
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, TINY.n_neuropils)
        obs, reward, term, trunc, info = envs.step(np.full((2, TINY.n_neuropils), 3.0, np.float32))
        assert reward.shape == (2,) and np.all(reward <= 0)
        assert "bin_accuracy" in info
    finally:
        envs.close()
