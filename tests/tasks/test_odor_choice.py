"""OdorChoice on both bodies: API contracts, the panel and its pair split, the choice
outcomes and the performance index, the two-odor mixture at a sensor, and that the
rewarded odor never reaches the observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env

import flyenv  # noqa: F401
from flyenv.connectome.door import OrnFrontEnd
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.tasks.odor_choice import (
    ODOR_PANEL,
    OdorChoiceConfig,
    OdorChoiceTask,
    _front_end,
    odor_similarity,
    performance_index,
    split_pairs,
)

TWIN = "flyenv/OdorChoice-kinematic-v0"
MJ = "flyenv/OdorChoice-v0"


def test_panel_has_the_documented_coverage():
    fe = _front_end()
    with_unit = [j for j, g in enumerate(fe.glomeruli) if g not in fe.glomeruli_without_receptor]
    assert len(ODOR_PANEL) == 12 and len(with_unit) == 49
    for odor in ODOR_PANEL:
        delta = fe._delta[fe.odor_index(odor), with_unit]
        assert np.isfinite(delta).mean() >= 0.63, odor
        assert np.sum(np.abs(np.nan_to_num(delta)) > 0.2) >= 6, odor


def test_pair_split_is_fixed_disjoint_and_complete():
    train, held = split_pairs(ODOR_PANEL)
    assert (len(train), len(held)) == (44, 22)
    assert not set(train) & set(held) and len(set(train) | set(held)) == 66
    assert split_pairs(ODOR_PANEL) == (train, held)  # the same split every time
    assert split_pairs(ODOR_PANEL, seed=1) != (train, held)
    assert -1.0 <= odor_similarity(*held[0]) <= 1.0
    assert odor_similarity("ethyl acetate", "ethyl acetate") == pytest.approx(1.0)


@pytest.mark.parametrize("env_id", [TWIN, MJ])
def test_gymnasium_checker_and_seeded_determinism(env_id):
    env = gym.make(env_id, time_limit_s=0.1)
    gym_check_env(env.unwrapped, skip_render_check=True)
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=3)
        traj = [obs]
        for t in range(8):
            obs, *_ = env.step(np.array([0.3, 0.1 * t], np.float32))
            traj.append(obs)
        runs.append(np.stack(traj))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert info["pair_index"] in range(len(env.unwrapped.task.pairs))
    env.close()


def test_same_seed_same_start_on_both_bodies():
    twin, mj = gym.make(TWIN), gym.make(MJ)
    _, a = twin.reset(seed=11)
    _, b = mj.reset(seed=11)
    np.testing.assert_allclose(a["source_positions_mm"], b["source_positions_mm"], rtol=1e-6)
    assert (a["rewarded_source"], a["pair_index"]) == (b["rewarded_source"], b["pair_index"])
    mj.close()


def test_native_vector_env_autoresets_with_final_info():
    envs = gym.make_vec(TWIN, num_envs=64, time_limit_s=0.05)
    assert envs.unwrapped.__class__.__name__ == "WalkingVectorEnv"
    envs.reset(seed=0)
    for _ in range(5):
        obs, reward, term, trunc, info = envs.step(np.zeros((64, 2), np.float32))
    assert trunc.all() and info["_final_info"].all()
    assert (info["final_info"]["time_s"] == pytest.approx(0.05)) and (info["time_s"] == 0).all()
    with pytest.raises(ValueError, match="shape"):
        envs.step(np.zeros((3, 2), np.float32))


def test_bad_config_and_actions_raise_clear_errors():
    with pytest.raises(ValueError, match="pair_set"):
        gym.make(TWIN, pair_set="test")
    with pytest.raises(ValueError, match="unknown odor"):
        gym.make(TWIN, odor_panel=("ethyl acetate", "benzaldehyde", "not an odor"))
    with pytest.raises(ValueError, match="overlap"):
        gym.make(TWIN, source_separation_deg=5.0)
    with pytest.raises(ValueError, match="no pair"):
        gym.make(TWIN, rewarded_odors=ODOR_PANEL)  # every pair has both odors rewarded
    env = gym.make(TWIN)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="pair="):
        env.reset(options={"pair": ("ethyl acetate", "ethanol")})


def test_rewarded_odor_is_not_in_the_observation():
    env = gym.make(TWIN)
    pair = env.unwrapped.task.pairs[0]
    runs = []
    for rewarded in (0, 1):
        obs, info = env.reset(seed=5, options={"pair": pair, "rewarded_source": rewarded})
        traj = [obs] + [env.step(np.array([0.4, 0.2], np.float32))[0] for _ in range(20)]
        assert info["rewarded_source"] == rewarded
        runs.append(np.stack(traj))
    np.testing.assert_array_equal(runs[0], runs[1])


def _walk_to(env, target: int, rewarded: int) -> str | None:
    """Steer a twin fly straight at source ``target`` (a scripted, heading-aware agent)."""
    env.reset(seed=2, options={"rewarded_source": rewarded, "start_heading_rad": 0.0})
    task, body = env.unwrapped.task, env.unwrapped.body
    for _ in range(600):
        goal = task.sources[0, target, :2] - body.xy[0]
        err = float(torch.atan2(goal[1], goal[0]) - body.heading[0])
        err = np.arctan2(np.sin(err), np.cos(err))
        turn = float(np.clip(2.0 * err, -1, 1))
        _, _, term, trunc, info = env.step(np.array([0.3 - turn, 0.3 + turn], np.float32))
        if term or trunc:
            return info["termination_reason"]
    return None


def test_choice_outcomes_and_performance_index():
    env = gym.make(TWIN, time_limit_s=6.0)
    assert _walk_to(env, target=0, rewarded=0) == "chose_rewarded"
    assert _walk_to(env, target=1, rewarded=0) == "chose_unrewarded"
    assert _walk_to(env, target=1, rewarded=1) == "chose_rewarded"
    assert performance_index(["chose_rewarded"] * 3 + ["chose_unrewarded", None]) == 0.4
    with pytest.raises(ValueError):
        performance_index([])


def test_two_odors_at_a_sensor_give_a_saturating_sum():
    """ORN rate of glomerulus g = rates(delta_a c_a + delta_b c_b): the drives add, the
    rate saturates, so two excitatory odors give less than the sum of their excitations."""
    batch = WalkingEpisodes.twin(OdorChoiceTask, 1, OdorChoiceConfig())
    batch.reset(np.random.default_rng(0), options={"pair": ("1-hexanol", "2-heptanone")})
    task, cfg = batch.task, batch.task.orn_config
    sensor = torch.tensor([[[0.0, 0.0, 0.5]] * 4])  # all four sensors at the start point
    obs = task.orn_observation(sensor)[0, : len(task.glomeruli)].numpy() * cfg.max_rate_hz
    conc = np.linalg.norm(task.sources[0, :, :2].numpy(), axis=1) ** 2 + 0.25
    conc = OdorChoiceConfig().peak_intensity / conc  # inverse-square at the sensor
    delta = task.response[0].numpy()  # (2, G)
    expected = OrnFrontEnd.rates(delta[0] * conc[0] + delta[1] * conc[1], cfg)
    np.testing.assert_allclose(obs, expected, rtol=1e-4)
    single = [OrnFrontEnd.rates(delta[k] * conc[k], cfg) for k in (0, 1)]
    s = cfg.spontaneous_rate_hz
    both_excite = (delta[0] > 0.1) & (delta[1] > 0.1)
    assert both_excite.any()
    extra = (expected - s)[both_excite]
    assert np.all(extra < (single[0] - s + single[1] - s)[both_excite])
