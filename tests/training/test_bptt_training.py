# moved from tests/test_bptt_training.py
"""BPTT through the twin: the loss goes down, runs resume exactly, checkpoints load as agents."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import flyenv  # noqa: F401
from flyenv.policies.differentiable_braitenberg import DifferentiableBraitenberg
from flyenv.policies.loading import load_policy
from flyenv.training.bptt import BPTTConfig, BPTTTrainer, rollout

SPEC = {
    "factory": "flyenv.policies.differentiable_braitenberg:DifferentiableBraitenberg",
    "kwargs": {},
}


def _config(**kw):
    base = dict(
        num_episodes=6, batch_size=8, episode_s=1.0, learning_rate=0.1, eval_every=3, eval_starts=8
    )
    return BPTTConfig(**{**base, **kw})


def _fixed_loss(trainer):
    with torch.no_grad():
        loss, *_ = rollout(
            trainer.policy,
            trainer.eval_batch,
            np.random.default_rng(123),
            trainer.steps,
            trainer.config.weights,
        )
    return float(loss)


def test_short_training_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    trainer = BPTTTrainer(
        DifferentiableBraitenberg(), _config(num_episodes=12), tmp_path, policy_spec=SPEC
    )
    before = _fixed_loss(trainer)
    for _ in range(12):
        trainer.train_episode()
    after = _fixed_loss(trainer)
    assert after < before - 0.05, (before, after)


def test_gradients_reach_every_parameter(tmp_path):
    trainer = BPTTTrainer(DifferentiableBraitenberg(init_forward=0.5), _config(), tmp_path)
    loss, *_ = rollout(
        trainer.policy,
        trainer.batch,
        np.random.default_rng(0),
        trainer.steps,
        trainer.config.weights,
    )
    loss.backward()
    for name, p in trainer.policy.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_killed_run_resumes_exactly(tmp_path):
    straight = BPTTTrainer(DifferentiableBraitenberg(), _config(), tmp_path / "a", policy_spec=SPEC)
    straight.train(progress=False)

    first = BPTTTrainer(DifferentiableBraitenberg(), _config(), tmp_path / "b", policy_spec=SPEC)
    first.train(progress=False, until_episode=3)  # "killed" after 3 episodes
    resumed = BPTTTrainer(DifferentiableBraitenberg(), _config(), tmp_path / "b", policy_spec=SPEC)
    assert resumed.resume() and resumed.episode == 3
    resumed.train(progress=False)
    for (n, p), (_, q) in zip(
        straight.policy.named_parameters(), resumed.policy.named_parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)
    assert (tmp_path / "b" / "checkpoint_best.pt").exists()
    assert (tmp_path / "b" / "training_results.json").exists()


def test_checkpoint_runs_as_agent_in_mujoco(tmp_path):
    trainer = BPTTTrainer(
        DifferentiableBraitenberg(init_gain=80.0, init_forward=0.5),
        _config(num_episodes=1),
        tmp_path,
        policy_spec=SPEC,
    )
    trainer.train(progress=False)
    env = gym.make("flyenv/OdorTaxis-v0", time_limit_s=0.05)
    policy = load_policy(str(tmp_path / "checkpoint_latest.pt"), env)
    obs, _ = env.reset(seed=0)
    action = policy(obs)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    env.step(action)
    wrong = gym.make("flyenv/OdorTaxis-v0", n_aversive_sources=1)
    with pytest.raises(ValueError, match="expects observations of size 7"):
        load_policy(str(tmp_path / "checkpoint_latest.pt"), wrong)


def test_corrupted_checkpoint_is_reported(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    env = gym.make("flyenv/OdorTaxis-kinematic-v0")
    with pytest.raises(ValueError, match="unreadable"):
        load_policy(str(bad), env)
