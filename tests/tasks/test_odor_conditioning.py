"""OdorConditioning: the protocol (presentations, reinforcement column, sources that
appear at test onset), the correct choice under reward and punishment, and a scripted
memory agent whose performance index flips sign with the reinforcement."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import flyenv  # noqa: F401
from flyenv.connectome.door import OrnFrontEnd
from flyenv.policies.remembered_odor import BatchRememberedOdorPolicy
from flyenv.tasks.odor_conditioning import performance_index_cs_plus

TWIN = "flyenv/OdorConditioning-kinematic-v0"
SHORT = dict(cs_duration_s=0.05, gap_s=0.02, test_s=0.1)


@pytest.mark.parametrize("env_id", [TWIN, "flyenv/OdorConditioning-v0"])
def test_checker_spaces_and_determinism(env_id):
    env = gym.make(env_id, **SHORT)
    gym_check_env(env.unwrapped, skip_render_check=True)
    assert env.observation_space.shape == (2 * 55 + 4,)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=4)
        runs.append(np.stack([obs] + [env.step(np.array([0.3, 0.2]))[0] for _ in range(10)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    env.close()


def _protocol(reinforcement: str, cs_plus_first: bool):
    env = gym.make(TWIN, reinforcement=reinforcement, cs_plus_first=cs_plus_first)
    obs, info = env.reset(seed=1, options={"rewarded_source": 0})
    rows = [(obs, info)]
    for _ in range(int(round(3.5 / 0.01))):
        obs, _, term, trunc, info = env.step(np.array([0.2, 0.2], np.float32))
        rows.append((obs, info))
    return env, rows


def test_presentations_and_reinforcement_follow_the_protocol():
    env, rows = _protocol("reward", cs_plus_first=True)
    task, g = env.unwrapped.task, 55
    reinf = np.array([o[-1] for o, _ in rows])
    t = np.arange(len(rows)) * 0.01
    cs_plus = t < 1.0 - 1e-9  # CS+ first: 0-1 s, gap 1-1.5 s, CS- 1.5-2.5 s, gap, test >= 3 s
    np.testing.assert_array_equal(reinf, np.where(cs_plus, 1.0, 0.0))
    # a puff is the same at all sensors: rates(delta x presentation_concentration)
    obs, info = rows[10]
    np.testing.assert_array_equal(obs[:g], obs[g : 2 * g])
    cfg = task.orn_config
    delta = task.response[0, info["cs_plus_source"]].numpy()
    expected = OrnFrontEnd.rates(delta * 0.01, cfg) / cfg.max_rate_hz
    np.testing.assert_allclose(obs[:g], expected, rtol=1e-5)
    obs_cs_minus = rows[200][0]
    assert not np.allclose(obs_cs_minus[:g], obs[:g])  # the other odor
    np.testing.assert_allclose(rows[120][0][: 2 * g], cfg.spontaneous_rate_hz / cfg.max_rate_hz)
    assert [i["phase"] for _, i in rows[298:302]] == [0, 0, 1, 1]


def test_training_cycles_repeat_the_pair_of_presentations():
    """Two cycles: CS+ 0-0.5 s, CS- 0.7-1.2 s, CS+ 1.4-1.9 s, CS- 2.1-2.6 s, test from 2.8 s."""
    env = gym.make(TWIN, cs_plus_first=True, training_cycles=2, cs_duration_s=0.5, gap_s=0.2)
    assert env.unwrapped.task.config.time_limit_s == pytest.approx(2.8 + 6.0)
    obs, info = env.reset(seed=1, options={"rewarded_source": 0})
    rows = [(obs, info)]
    for _ in range(300):
        obs, _, _, _, info = env.step(np.array([0.2, 0.2], np.float32))
        rows.append((obs, info))
    reinf = np.array([o[-1] for o, _ in rows])
    on = np.flatnonzero(reinf == 1.0)
    assert on.min() == 0 and on.max() == 189 and len(on) == 100  # two CS+ presentations
    g = 55
    assert np.allclose(rows[10][0][:g], rows[150][0][:g])  # the same CS+ odor both times
    assert np.allclose(rows[80][0][:g], rows[220][0][:g])  # and the same CS-
    assert not np.allclose(rows[10][0][:g], rows[80][0][:g])
    assert [i["phase"] for _, i in rows[279:282]] == [0, 1, 1]
    with pytest.raises(ValueError, match="training_cycles"):
        gym.make(TWIN, training_cycles=0)


def test_sources_appear_around_the_fly_at_test_onset():
    env, rows = _protocol("punishment", cs_plus_first=False)
    _, info = rows[300]
    rel = info["source_positions_mm"] - rows[300][1]["position_mm"]
    d = np.linalg.norm(rel, axis=1)
    assert d[0] == pytest.approx(d[1], rel=0.05) and 7.0 < d[0] < 13.0
    assert info["cs_plus_source"] == 0 and info["rewarded_source"] == 1  # shock: avoid CS+
    reinf = np.array([o[-1] for o, _ in rows])
    assert reinf.min() == -1.0 and (reinf[:150] == 0).all()  # CS- first, CS+ 1.5-2.5 s


def test_none_never_reinforces_and_bad_settings_fail():
    _, rows = _protocol("none", cs_plus_first=True)
    assert all(o[-1] == 0.0 for o, _ in rows)
    with pytest.raises(ValueError, match="reinforcement"):
        gym.make(TWIN, reinforcement="sugar")
    with pytest.raises(ValueError, match="time_limit_s"):
        gym.make(TWIN, time_limit_s=2.0)
    assert performance_index_cs_plus([True, True, False, None]) == 0.25


def test_mixed_draws_the_sign_per_episode_and_the_correct_choice_follows_it():
    n = 64
    env = gym.make_vec(TWIN, num_envs=n, reinforcement="mixed", cs_plus_first=True, **SHORT)
    env.reset(seed=3)
    task = env.unwrapped.task
    sign = task.sign.numpy()
    assert set(np.unique(sign)) == {-1.0, 1.0} and 16 < (sign > 0).sum() < 48
    _, _, _, _, info = env.step(np.zeros((n, 2), np.float32))
    np.testing.assert_array_equal(info["reinforcement"], sign)  # CS+ first: signal = sign
    np.testing.assert_array_equal(info["reinforcement_sign"], sign)
    cs_plus = info["cs_plus_source"]
    np.testing.assert_array_equal(info["rewarded_source"], np.where(sign < 0, 1 - cs_plus, cs_plus))
    env.reset(seed=3)
    np.testing.assert_array_equal(task.sign.numpy(), sign)  # seeded
    # the other settings' episodes are not changed by the extra draw
    fixed = gym.make_vec(TWIN, num_envs=n, reinforcement="reward", cs_plus_first=True, **SHORT)
    fixed.reset(seed=3)
    fixed_task = fixed.unwrapped.task
    np.testing.assert_array_equal(fixed_task.cs_plus.numpy(), cs_plus)
    np.testing.assert_array_equal(fixed_task.pair_index.numpy(), task.pair_index.numpy())


def _pi(reinforcement: str, n: int, seed: int) -> tuple[float, float]:
    env = gym.make_vec(TWIN, num_envs=n, reinforcement=reinforcement, pair_set="heldout")
    policy = BatchRememberedOdorPolicy(n)
    obs, _ = env.reset(seed=seed)
    done, chose = np.zeros(n, bool), [None] * n
    while not done.all():
        obs, _, term, trunc, info = env.step(policy(obs))
        end = (term | trunc) & ~done
        for i in np.flatnonzero(end):
            if info["final_info"]["termination_reason"][i] is not None:
                chose[i] = bool(info["final_info"]["chose_cs_plus"][i])
        policy.reset(end)
        done |= end
    return performance_index_cs_plus(chose), sum(c is None for c in chose) / n


def test_scripted_memory_agent_learns_and_its_sign_flips():
    """Held-out pairs and a seed the agent's gains were not chosen on."""
    pi_reward, no_choice = _pi("reward", 64, seed=1001)
    pi_shock, _ = _pi("punishment", 64, seed=1001)
    pi_none, _ = _pi("none", 64, seed=1001)
    assert pi_reward > 0.5 and pi_shock < -0.5 and abs(pi_none) < 0.35
    assert no_choice < 0.1
