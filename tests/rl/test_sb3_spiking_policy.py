# moved from tests/test_sb3_spiking_policy.py
"""The spiking connectome brain as an SB3 policy: PPO and SAC train it end to end on
the batched twin, only the configured weights learn, and SB3's save/load round-trips
to the same deterministic actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC

import flyenv  # noqa: F401
from flyenv.rl.sb3_vec_env import TwinVecEnv
from flyenv.rl.spiking_policy import (
    SpikingActor,
    SpikingActorCriticPolicy,
    SpikingSACPolicy,
    trainable_prefixes,
)

ORN = {"observation": "orn", "odor_names": ("ethyl acetate",)}
FAST = {"settle_steps": 1}
"""A 20 ms brain run per action (default 30 ms): the MBONs fire from its second 10 ms
on, so every mushroom-body output weight gets a gradient."""


def _twin(n: int, seed: int = 0) -> TwinVecEnv:
    venv = gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=n, time_limit_s=0.2, **ORN)
    return TwinVecEnv(venv, seed=seed)


def _brain_params(policy) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in policy.named_parameters() if "brain." in n}


def _ppo(venv: TwinVecEnv, policy_kwargs: dict | None = None, **algo) -> PPO:
    """A small PPO with the spiking policy: 2 epochs of 32-step rollouts."""
    kwargs = dict(FAST if policy_kwargs is None else policy_kwargs)  # SB3 adds keys to it
    settings = dict(n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu") | algo
    return PPO(SpikingActorCriticPolicy, venv, policy_kwargs=kwargs, **settings)


def test_ppo_trains_the_spiking_policy_on_the_twin_and_reloads(tmp_path):
    torch.set_num_threads(1)
    venv = _twin(8)
    model = _ppo(venv)
    before = _brain_params(model.policy)
    model.learn(total_timesteps=8 * 32 * 2)  # 512 steps, 2 updates
    assert model.num_timesteps >= 512
    after = _brain_params(model.policy)
    learn = trainable_prefixes("mb_output")
    for name, value in before.items():
        changed = not torch.equal(value, after[name])
        short = name.split("brain.", 1)[1]
        assert changed == short.startswith(learn), f"{name}: changed={changed}"

    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (8, 2) and np.all(np.abs(actions) < 1)
    model.save(tmp_path / "ppo_spiking.zip")
    loaded = PPO.load(tmp_path / "ppo_spiking.zip", device="cpu")
    assert isinstance(loaded.policy, SpikingActorCriticPolicy)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    # the deterministic action is the brain's own action (tanh of its DN readout)
    with torch.no_grad():
        brain_action = torch.tanh(loaded.policy.actor(torch.as_tensor(obs))).numpy()
    np.testing.assert_allclose(actions, brain_action, atol=1e-6)


def test_sac_trains_the_spiking_actor_and_reloads(tmp_path):
    torch.set_num_threads(1)
    venv = _twin(4, seed=1)
    model = SAC(
        SpikingSACPolicy,
        venv,
        learning_starts=16,
        batch_size=16,
        buffer_size=1000,
        seed=0,
        device="cpu",
        policy_kwargs=dict(FAST),  # SB3 adds keys to the dict it gets
    )
    before = _brain_params(model.actor)
    model.learn(total_timesteps=4 * 12)  # 8 gradient steps after learning_starts
    after = _brain_params(model.actor)
    assert not torch.equal(
        before["brain_actor.brain.readout.weight"], after["brain_actor.brain.readout.weight"]
    )
    assert torch.equal(
        before["brain_actor.brain.kc.log_threshold"], after["brain_actor.brain.kc.log_threshold"]
    )
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "sac_spiking.zip")
    loaded = SAC.load(tmp_path / "sac_spiking.zip", device="cpu")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)


def test_spiking_policy_rejects_observations_without_orn_rates():
    venv = TwinVecEnv(gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=2), seed=0)
    with pytest.raises(ValueError, match='observation="orn"'):
        PPO(SpikingActorCriticPolicy, venv, n_steps=8, batch_size=8, device="cpu")
    orn = TwinVecEnv(
        gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=2, observation="orn",
                     odor_names=("ethyl acetate",)),
        seed=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="recurrent spiking policy"):  # gSDE: RecurrentPPO only
        PPO(SpikingActorCriticPolicy, orn, n_steps=8, batch_size=8, use_sde=True, device="cpu")


def test_trainable_presets_and_bad_names():
    actor = SpikingActor(113, trainable="all")
    assert all(p.requires_grad for p in actor.brain.parameters())
    with pytest.raises(ValueError, match="matches no brain parameter"):
        SpikingActor(113, trainable="no_such_weight")


def test_mirror_readout_keeps_the_learned_brain_bilaterally_symmetric(tmp_path):
    """With mirror_readout the readout starts as the brain's own (same actions up to a
    float rounding of the bias) and PPO can change only its mirror-symmetric part: the
    weight stays equal to its mirror image and the bias keeps its initial left/right
    difference (the handedness)."""
    torch.set_num_threads(1)
    cfg = {"action_bias_asymmetry": 0.2}
    obs = torch.rand(6, 2 * 55 + 3)
    plain = SpikingActor(obs.shape[1], cfg, settle_steps=1)
    mirrored = SpikingActor(obs.shape[1], cfg, settle_steps=1, mirror_readout=True)
    with torch.no_grad():
        torch.testing.assert_close(mirrored(obs), plain(obs), rtol=0, atol=1e-6)  # 1 ulp: bias

    venv = _twin(8, seed=2)
    kwargs = {**FAST, "brain_config": cfg, "mirror_readout": True, "trainable": "readout."}
    model = _ppo(venv, kwargs, learning_rate=3e-3)
    readout = model.policy.actor.brain.readout
    w0, b0 = readout.weight.detach().clone(), readout.bias.detach().clone()
    model.learn(total_timesteps=8 * 32 * 2)
    w, b = readout.weight.detach(), readout.bias.detach()
    assert not torch.equal(w, w0) and not torch.equal(b, b0)  # it learned
    n_dn = model.policy.actor.brain.n_dn
    torch.testing.assert_close(w, w.flip(0).roll(n_dn, dims=1))  # mirror-symmetric
    torch.testing.assert_close(b[0] - b[1], b0[0] - b0[1])  # handedness unchanged
    model.save(tmp_path / "mirror.zip")
    loaded = PPO.load(tmp_path / "mirror.zip", device="cpu")
    o = venv.reset()
    np.testing.assert_array_equal(
        loaded.predict(o, deterministic=True)[0], model.predict(o, deterministic=True)[0]
    )


def test_critic_contrast_gain_lets_the_value_see_tiny_left_right_differences():
    """The heading is in left-right ORN differences of ~0.1 %: with critic_contrast_gain
    the critic's input carries them amplified, so its value responds to them."""
    torch.set_num_threads(1)
    venv = _twin(2)

    def value_change(gain):
        torch.manual_seed(0)
        model = PPO(
            SpikingActorCriticPolicy,
            venv,
            n_steps=8,
            device="cpu",
            policy_kwargs={**FAST, "critic_contrast_gain": gain},
        )
        obs = torch.as_tensor(venv.reset())
        shifted = obs.clone()
        shifted[:, :55] += 1e-4  # left ORNs slightly up, right unchanged
        with torch.no_grad():
            v0, v1 = model.policy.predict_values(obs), model.policy.predict_values(shifted)
        return (v1 - v0).abs().max().item()

    assert value_change(100.0) > 10 * value_change(None)
    with pytest.raises(ValueError, match="critic_contrast_gain"):
        PPO(SpikingActorCriticPolicy, venv, policy_kwargs={"critic_contrast_gain": -1.0})
