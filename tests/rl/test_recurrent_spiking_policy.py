"""The spiking brain as RecurrentPPO's recurrent core: the carried state is the brain's
own step-by-step state, episode starts reset it (only where they are set), sequence
mini-batches replay the rollout, SB3's save/load round-trips, and a short RecurrentPPO
run on the twin changes the configured weights only."""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates

import flyenv  # noqa: F401
from flyenv.brains.olfactory.brain import BrainState, ablate
from flyenv.config import read_toml
from flyenv.rl.recurrent_spiking_policy import RecurrentSpikingPolicy, SpikingBrainCore, _leaves
from flyenv.rl.sb3_vec_env import TwinVecEnv
from flyenv.rl.spiking_policy import trainable_prefixes

ORN = {"observation": "orn", "odor_names": ("ethyl acetate",)}
N_ENVS = 8


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _twin(n: int = N_ENVS, seed: int = 0, time_limit_s: float = 0.2) -> TwinVecEnv:
    venv = gym.make_vec(
        "flyenv/OdorTaxis-kinematic-v0", num_envs=n, time_limit_s=time_limit_s, **ORN
    )
    return TwinVecEnv(venv, seed=seed)


def _plume_twin(time_limit_s: float, n: int = 4) -> TwinVecEnv:
    """Twin PlumeTracking with the ORN observation the spiking brain reads."""
    venv = gym.make_vec(
        "flyenv/PlumeTracking-kinematic-v0",
        num_envs=n,
        time_limit_s=time_limit_s,
        observation="orn",
        odor_name="ethyl acetate",
    )
    return TwinVecEnv(venv, seed=0)


def _model(venv, **algo) -> RecurrentPPO:
    settings = dict(n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu") | algo
    return RecurrentPPO(RecurrentSpikingPolicy, venv, **settings)


@pytest.fixture(scope="module")
def model_and_obs():
    torch.set_num_threads(1)
    venv = _twin()
    model = _model(venv)
    obs = [venv.reset()]
    rng = np.random.default_rng(0)
    for _ in range(5):  # a short, varied observation sequence from the env
        o, *_ = venv.step(rng.uniform(-1, 1, (N_ENVS, 2)).astype(np.float32))
        obs.append(o)
    return model, np.stack(obs)  # (T, B, D)


def _manual(brain, obs_seq: np.ndarray, state: BrainState | None = None):
    """The brain alone, step by step from rest: actions (T, B, 2) and the last state."""
    b = obs_seq.shape[1]
    state = brain.init_state(b) if state is None else state
    actions = []
    with torch.no_grad():
        for obs in obs_seq:
            a, state, _ = brain.step(torch.as_tensor(obs), state)
            actions.append(a.numpy())
    return np.stack(actions), state


def _assert_same_state(a: BrainState, b: BrainState) -> None:
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_pack_unpack_round_trip_and_rest_is_zero(model_and_obs):
    model, obs = model_and_obs
    core: SpikingBrainCore = model.policy.lstm_actor
    _, state = _manual(core.brain, obs[:4])
    packed = core.pack(state)
    assert all(t.shape == (1, N_ENVS, core.hidden_size) for t in (*packed.pi, *packed.vf))
    assert 4 * core.hidden_size >= core.state_size > 4 * (core.hidden_size - 1)
    _assert_same_state(core.unpack(packed), state)
    rest = core.pack(core.brain.init_state(N_ENVS))
    assert all(torch.count_nonzero(t) == 0 for t in (*rest.pi, *rest.vf))
    # per env: packing env 3 alone gives env 3's columns of the batch packing
    one = core.pack(core.unpack(RNNStates(*[(h[:, 3:4], c[:, 3:4]) for h, c in packed])))
    torch.testing.assert_close(one.pi[0], packed.pi[0][:, 3:4], rtol=0, atol=0)


def test_carried_state_equals_a_manual_step_by_step_rollout(model_and_obs):
    model, obs = model_and_obs
    brain = model.policy.brain
    expected, last = _manual(brain, obs)
    state, starts = None, np.ones(N_ENVS, dtype=bool)
    for t, o in enumerate(obs):
        action, state = model.predict(o, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(N_ENVS, dtype=bool)
        np.testing.assert_allclose(action, expected[t], rtol=0, atol=1e-6)
    core = model.policy.lstm_actor
    packed = RNNStates(
        *[tuple(torch.as_tensor(s) for s in pair) for pair in (state[:2], state[2:])]
    )
    _assert_same_state(core.unpack(packed), last)
    # and it carries: a memoryless (rest-every-step) run gives other actions
    fresh, _ = model.predict(obs[-1], deterministic=True)
    assert not np.allclose(fresh, expected[-1], atol=1e-4)


def test_episode_start_resets_only_that_env(model_and_obs):
    model, obs = model_and_obs
    brain = model.policy.brain
    state = None
    for o in obs[:4]:
        _, state = model.predict(o, state=state, deterministic=True)
    starts = np.zeros(N_ENVS, dtype=bool)
    starts[2] = True  # env 2's episode ends here; the others continue
    action, _ = model.predict(obs[4], state=state, episode_start=starts, deterministic=True)
    carried, _ = _manual(brain, obs[:5])
    from_rest, _ = _manual(brain, obs[4:5])
    keep = ~starts
    np.testing.assert_allclose(action[keep], carried[4][keep], rtol=0, atol=1e-6)
    np.testing.assert_allclose(action[2], from_rest[0][2], rtol=0, atol=1e-6)
    assert not np.allclose(carried[4][2], from_rest[0][2], atol=1e-4)


def test_sequence_replay_resets_mid_sequence_like_process_sequence(model_and_obs):
    """The core's sequence pass (evaluate_actions) on (n_seq x T) obs with an episode
    start in the middle of one sequence equals the manual rollout with that reset."""
    model, obs = model_and_obs
    core = model.policy.lstm_actor
    T, B, D = obs.shape
    _, start_state = _manual(core.brain, obs[:2])  # sequences start mid-episode
    starts = np.zeros((T, B), dtype=np.float32)
    starts[3, 5] = 1.0
    seq_obs = torch.as_tensor(obs.swapaxes(0, 1).reshape(B * T, D))  # sequence-major
    seq_starts = torch.as_tensor(starts.T.reshape(-1))
    with torch.no_grad():
        means, _ = core(seq_obs, core.pack(start_state), seq_starts)
    means = means.reshape(B, T, 2).swapaxes(0, 1).numpy()
    expected, state = _manual(core.brain, obs[:3], start_state)
    rest_5 = core.reset(state, torch.as_tensor(starts[3]))
    tail, _ = _manual(core.brain, obs[3:], rest_5)
    np.testing.assert_allclose(means, np.concatenate([expected, tail]), rtol=0, atol=1e-6)


def test_gradient_horizon_truncates_bptt_only(model_and_obs):
    """``gradient_horizon_steps``: the same action means, but each action's gradient
    reaches back only to the last detach point (the state entering step T - 1 for a
    horizon of 1; nothing is cut for a horizon of T)."""
    model, obs = model_and_obs
    T, B, D = obs.shape
    seq_obs = torch.as_tensor(obs.swapaxes(0, 1).reshape(B * T, D))
    seq_starts = torch.zeros(B * T)

    def last_step_grad(horizon):
        core = copy.deepcopy(model.policy.lstm_actor)
        core.gradient_horizon_steps = horizon
        rest = core.pack(core.rest_state(B))
        means, _ = core(seq_obs, rest, seq_starts)
        means = means.reshape(B, T, 2)
        means[:, -1].sum().backward()
        w = core.brain.w_mbon_dn_ipsi
        return means.detach(), w.grad.clone(), core

    full, g_full, core = last_step_grad(None)
    same, g_same, _ = last_step_grad(T)
    cut, g_cut, _ = last_step_grad(1)
    torch.testing.assert_close(cut, full, rtol=0, atol=0)
    torch.testing.assert_close(g_same, g_full)
    # horizon 1: the gradient of the last action through its own step only
    _, state = _manual(core.brain, obs[:-1])
    core.zero_grad()
    a, _, _ = core.brain.step(torch.as_tensor(obs[-1]), state)
    a.sum().backward()
    torch.testing.assert_close(g_cut, core.brain.w_mbon_dn_ipsi.grad)
    assert not torch.allclose(g_cut, g_full)
    with pytest.raises(ValueError, match="gradient_horizon_steps=0"):
        SpikingBrainCore(D, gradient_horizon_steps=0)


def _collect_one_rollout(model: RecurrentPPO) -> None:
    """One 32-step rollout into the model's buffer, no update."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Nop(BaseCallback):
        def _on_step(self) -> bool:
            return True

    model.learn(0)  # sets up the env and the first observation
    cb = Nop()
    cb.init_callback(model)
    model.collect_rollouts(model.env, cb, model.rollout_buffer, n_rollout_steps=32)


def _replayed_rollout(model: RecurrentPPO):
    """Collect one 32-step rollout (episodes ending inside it), then replay its padded
    sequence mini-batches without an update: (batch, values, log_prob, mask) per batch."""
    _collect_one_rollout(model)
    assert model.rollout_buffer.episode_starts[1:].any()  # resets inside the rollout
    with torch.no_grad():
        for batch in model.rollout_buffer.get(64):
            values, log_prob, _ = model.policy.evaluate_actions(
                batch.observations, batch.actions, batch.lstm_states, batch.episode_starts
            )
            yield batch, values, log_prob, batch.mask > 0


def test_minibatch_log_probs_reproduce_the_rollout():
    """RecurrentPPO's padded sequence mini-batches (episodes end inside the 32-step
    rollout) give back, before any update, the log-probabilities of the rollout."""
    model = _model(_twin(time_limit_s=0.15))
    n_checked = 0
    for batch, _, log_prob, mask in _replayed_rollout(model):
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], rtol=0, atol=1e-4)
        n_checked += int(mask.sum())
    assert n_checked == 32 * N_ENVS


def test_state_reading_critic_sees_the_dn_rates_and_replays_its_values():
    """critic_reads_state: the critic's extra input is the DN rate of the state before
    each step, read from the vf half alone (what predict_values gets), rest at episode
    starts; the replayed mini-batches give back the rollout's values; a plastic brain,
    whose state does not end with the rate, is refused."""
    model = _model(_twin(time_limit_s=0.15), policy_kwargs={"critic_reads_state": True})
    pol = model.policy
    assert pol.mlp_extractor.value_net[0].in_features == pol.features_dim + 2 * pol.brain.n_dn
    venv = _twin()
    obs = np.stack(
        [venv.reset()] + [venv.step(np.full((N_ENVS, 2), 0.3, np.float32))[0] for _ in range(3)]
    )
    _, last = _manual(pol.brain, obs)
    packed = pol.lstm_actor.pack(last)
    rate = pol.lstm_actor.rate_from_vf(packed.vf)
    want = last.rate.reshape(pol.brain.n_dn, 2, N_ENVS).movedim(-1, 0).reshape(N_ENVS, -1)
    torch.testing.assert_close(rate, want, rtol=0, atol=1e-6)
    assert want.abs().sum() > 0
    starts = torch.ones(N_ENVS)
    assert not pol._state_rate(packed.vf, starts).any()  # episode start: rest
    # values of the rollout come back from the sequence replay
    for batch, values, _, mask in _replayed_rollout(model):
        torch.testing.assert_close(
            values.flatten()[mask], batch.old_values[mask], rtol=0, atol=1e-5
        )
    plastic = {"plasticity": {"eligibility_tau_ms": 20.0}}
    with pytest.raises(ValueError, match="vf half"):
        _model(_twin(2), policy_kwargs={"critic_reads_state": True, "brain_config": plastic})


def test_gsde_noise_is_a_held_readout_perturbation_and_replays_its_log_probs(tmp_path):
    """use_sde: the noise of each env is [DN rates before the step, 1] @ its exploration
    matrix, held until the next draw (sde_sample_freq); the sequence mini-batches give
    back the rollout's log-probabilities; save/load keeps the (latent, 2) log-std."""
    model = _model(_twin(time_limit_s=0.15), use_sde=True, sde_sample_freq=8,
                   policy_kwargs={"log_std_init": -2.2})  # fmt: skip
    pol = model.policy
    n_latent = 2 * pol.brain.n_dn + 1
    assert tuple(pol.log_std.shape) == (n_latent, 2)
    venv = _twin()
    obs = np.stack(
        [venv.reset()] + [venv.step(np.full((N_ENVS, 2), 0.3, np.float32))[0] for _ in range(3)]
    )
    _, last = _manual(pol.brain, obs[:3])
    packed = pol.lstm_actor.pack(last)
    pol.reset_noise(N_ENVS)
    mats = pol.action_dist.exploration_matrices  # (N_ENVS, n_latent, 2)
    with torch.no_grad():
        obs_t = torch.as_tensor(obs[3])
        no_start = torch.zeros(N_ENVS)
        actions, _, _, _ = pol.forward(obs_t, packed, no_start)
        mean, _ = pol.lstm_actor(pol._features(obs_t), packed, no_start)
        rate = pol.lstm_actor.rate_from_vf(packed.vf)
    latent = torch.cat([rate, torch.ones(N_ENVS, 1)], dim=1)
    want = mean + torch.bmm(latent[:, None], mats)[:, 0]
    torch.testing.assert_close(actions, want, rtol=0, atol=1e-6)
    with torch.no_grad():  # the same matrices until the next draw: the same noise
        again, _, _, _ = pol.forward(obs_t, packed, no_start)
    torch.testing.assert_close(again, actions)
    pol.reset_noise(N_ENVS)
    with torch.no_grad():
        redrawn, _, _, _ = pol.forward(obs_t, packed, no_start)
    assert not torch.allclose(redrawn, actions)
    # the rollout's log-probabilities come back from the sequence replay
    for batch, _, log_prob, mask in _replayed_rollout(model):
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], rtol=0, atol=1e-4)
    model.save(tmp_path / "sde.zip")
    loaded = RecurrentPPO.load(tmp_path / "sde.zip", device="cpu")
    assert loaded.policy.use_sde and torch.equal(loaded.policy.log_std, pol.log_std)
    copy.deepcopy(loaded)  # the ablation evaluation copies the model
    copy.deepcopy(model)


def test_save_load_gives_identical_actions(model_and_obs, tmp_path):
    model, obs = model_and_obs
    state = None
    for o in obs[:3]:
        _, state = model.predict(o, state=state, deterministic=True)
    model.save(tmp_path / "rsp.zip")
    loaded = RecurrentPPO.load(tmp_path / "rsp.zip", device="cpu")
    assert isinstance(loaded.policy, RecurrentSpikingPolicy)
    a1, s1 = model.predict(obs[3], state=state, deterministic=True)
    a2, s2 = loaded.predict(obs[3], state=state, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    for x, y in zip(s1, s2, strict=True):
        np.testing.assert_array_equal(x, y)


def test_short_recurrent_ppo_run_changes_the_configured_weights_only():
    venv = _twin()
    model = _model(venv, n_epochs=2)
    before = {n: p.detach().clone() for n, p in model.policy.named_parameters()}
    model.learn(total_timesteps=N_ENVS * 32 * 2)  # 512 steps, 2 updates
    assert model.num_timesteps >= 512
    learn = trainable_prefixes("mb_output")
    for name, p in model.policy.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        if "brain." in name:
            short = name.split("brain.", 1)[1]
            assert changed == short.startswith(learn), f"{name}: changed={changed}"
        else:  # critic and log-std
            assert changed, name


def test_bad_settings_are_refused():
    venv = _twin(2)
    with pytest.raises(ValueError, match="LSTM"):
        _model(venv, policy_kwargs={"lstm_hidden_size": 64})
    with pytest.raises(ValueError, match="matches no brain parameter"):
        _model(venv, policy_kwargs={"trainable": "no_such_weight"})
    model = _model(venv)
    with pytest.raises(ValueError, match="4-tuple"):
        model.predict(venv.reset(), state=(np.zeros((1, 2, 4)), np.zeros((1, 2, 4))))


def test_gated_wind_brain_carries_its_odor_memory_on_the_plume():
    venv = _plume_twin(0.2)
    brain_config = {"wind_obs_columns": [110, 111], "wind_odor_gate": True}
    kwargs = {"brain_config": brain_config, "trainable": "w_wind_dn,readout."}
    model = _model(venv, policy_kwargs=kwargs)
    obs = [venv.reset()]
    for _ in range(6):
        o, *_ = venv.step(np.full((4, 2), 0.5, np.float32))
        obs.append(o)
    obs = np.stack(obs)
    expected, last = _manual(model.policy.brain, obs)
    assert last.odor_trace is not None and last.odor_trace.shape == (1, 8)
    state, starts = None, np.ones(4, dtype=bool)
    for t, o in enumerate(obs):
        action, state = model.predict(o, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(4, dtype=bool)
        np.testing.assert_allclose(action, expected[t], rtol=0, atol=1e-6)
    core = model.policy.lstm_actor
    packed = RNNStates(
        *[tuple(torch.as_tensor(s) for s in pair) for pair in (state[:2], state[2:])]
    )
    _assert_same_state(core.unpack(packed), last)  # the odor memory travels in the state

    # the no_wind_gate ablation (on a copy) drops the odor memory from the state; the
    # smaller state still packs into the hidden tensors sized for the intact brain
    ablated = copy.deepcopy(model)
    ablate(ablated.policy.brain, "no_wind_gate")
    state, starts = None, np.ones(4, dtype=bool)
    for o in obs:
        action, state = ablated.predict(o, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(4, dtype=bool)
    assert action.shape == (4, 2) and np.isfinite(action).all()
    assert state[0].shape == (1, 4, core.hidden_size)
    assert (
        ablated.policy.lstm_actor.unpack(
            RNNStates(*[tuple(torch.as_tensor(s) for s in p) for p in (state[:2], state[2:])])
        ).odor_trace
        is None
    )


def test_sixteen_dn_plume_scenario_trains_its_odor_steering():
    """scenarios/recurrent_ppo_plume_tracking_spiking_dn16.toml: 16 DNs a side, the
    readout sized for them, the odor->DN weights learnable beside the wind and the
    readout, and nothing else changes in a short gSDE run (the floor itself:
    tests/brains/olfactory/test_brain_olfactory.py)."""
    path = Path(__file__).parents[2] / "scenarios/recurrent_ppo_plume_tracking_spiking_dn16.toml"
    kwargs = read_toml(path)["policy_kwargs"]
    venv = _plume_twin(0.3)
    model = _model(venv, policy_kwargs=kwargs, use_sde=True, sde_sample_freq=16, n_epochs=2)
    brain = model.policy.brain
    assert brain.n_dn == 16 and brain.readout.weight.shape == (2, 32)
    before = {n: p.detach().clone() for n, p in model.policy.named_parameters()}
    model.learn(total_timesteps=4 * 32 * 2)
    learn = trainable_prefixes(kwargs["trainable"])
    assert {"w_pn_dn_", "w_mbon_dn_"} <= set(learn)
    for name, p in model.policy.named_parameters():
        if "brain." in name:
            short = name.split("brain.", 1)[1]
            assert torch.equal(before[name], p.detach()) != short.startswith(learn), name
