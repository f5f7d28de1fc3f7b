# moved from tests/test_sb3_features.py
"""The bilateral odor features extractor for SB3 MLP policies, and its scenario name."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import flyenv  # noqa: F401
from flyenv.rl.features import BilateralOdorFeatures
from flyenv.rl.sb3_training import sb3_policy_kwargs


def _space(channels: int) -> spaces.Box:
    return spaces.Box(-10, 10, (4 * channels + 3,), np.float32)


def test_features_are_level_and_amplified_left_right_differences():
    ext = BilateralOdorFeatures(_space(2), contrast_gain=10.0)
    assert ext.features_dim == 3 * 2 + 3
    # channel 0: L palp, R palp, L antenna, R antenna; channel 1; then self-motion
    obs = torch.tensor([[1.0, 2.0, 3.0, 5.0, 0.5, 0.5, 0.7, 0.1, 9.0, 8.0, 7.0]])
    out = ext(obs)
    expected = [
        [2.75, 10 * (3.0 - 5.0), 10 * (1.0 - 2.0), 0.45, 10 * (0.7 - 0.1), 0.0, 9.0, 8.0, 7.0]
    ]
    torch.testing.assert_close(out, torch.tensor(expected))


def test_features_reject_an_observation_that_is_not_the_intensity_one():
    orn = spaces.Box(0, 1, (2 * 55 + 3,), np.float32)
    with pytest.raises(ValueError, match="odor-intensity observation"):
        BilateralOdorFeatures(orn)
    with pytest.raises(ValueError, match="contrast_gain"):
        BilateralOdorFeatures(_space(1), contrast_gain=0.0)


def test_the_real_env_observation_fits_the_extractor():
    env = gym.make("flyenv/OdorTaxis-kinematic-v0")
    obs, _ = env.reset(seed=0)
    ext = BilateralOdorFeatures(env.observation_space)
    out = ext(torch.as_tensor(obs)[None])
    assert out.shape == (1, 6) and torch.isfinite(out).all()
    # the level is the mean of the four sensors
    assert out[0, 0].item() == pytest.approx(float(np.mean(obs[:4])), rel=1e-6)


def test_scenario_names_resolve_to_the_class_and_unknown_names_fail_clearly():
    kw = sb3_policy_kwargs({"features_extractor": "bilateral_odor", "net_arch": [8]})
    assert kw == {"features_extractor_class": BilateralOdorFeatures, "net_arch": [8]}
    assert sb3_policy_kwargs({}) is None
    with pytest.raises(SystemExit, match="bilateral_odor"):
        sb3_policy_kwargs({"features_extractor": "nope"})


def test_ppo_mlp_with_the_features_trains_saves_and_loads(tmp_path):
    from stable_baselines3 import PPO

    from flyenv.rl.sb3_training import make_vec_env

    venv = make_vec_env("flyenv/OdorTaxis-kinematic-v0", 8, 0, {"time_limit_s": 2.0})
    kwargs = sb3_policy_kwargs({"features_extractor": "bilateral_odor", "net_arch": [16]})
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, policy_kwargs=kwargs)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True)
    )
    assert isinstance(model.policy.features_extractor, BilateralOdorFeatures)
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    obs = venv.reset()
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
