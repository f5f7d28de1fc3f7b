"""Start-by-start time comparison of a trained and a scripted agent
(flyenv.evaluation.paired_time_cell)."""

from __future__ import annotations

import pytest

from flyenv.evaluation.paired_time_cell import paired_time_cell, paired_times
from flyenv.rl.evaluation import EvalResult


def _result(successes, times, seed=5, paths=()):
    return EvalResult(
        "x",
        len(times),
        seed,
        sum(successes) / len(times),
        None,
        0.0,
        list(successes),
        None,
        list(times),
        list(paths),
    )


def test_paired_times_known_answer():
    agent = _result([True, True, False, True], [2.0, 3.0, 10.0, 1.0])
    scripted = _result([True, True, True, False], [3.0, 2.5, 4.0, 10.0])
    out = paired_times(agent, scripted, time_limit_s=10.0)
    assert out["both_success"] == 2  # starts 0 and 1
    assert out["agent_only_success"] == 1 and out["scripted_only_success"] == 1
    assert out["time_difference_s"] == pytest.approx(((2 - 3) + (3 - 2.5)) / 2)
    assert out["median_time_difference_s"] == pytest.approx(((2 - 3) + (3 - 2.5)) / 2)
    assert out["agent_faster_fraction"] == 0.5
    assert out["agent_time_both_s"] == 2.5 and out["scripted_time_both_s"] == 2.75
    # failures at the limit: (2-3) + (3-2.5) + (10-4) + (1-10), over 4 starts
    assert out["censored_time_difference_s"] == pytest.approx((-1 + 0.5 + 6 - 9) / 4)
    assert out["agent_path_both_mm"] is None  # no path lengths given


def test_paired_median_differs_from_the_mean_on_a_long_tail():
    agent = _result([True] * 3, [1.0, 2.0, 10.0])
    scripted = _result([True] * 3, [2.0, 2.0, 2.0])
    out = paired_times(agent, scripted, time_limit_s=20.0)
    assert out["time_difference_s"] == pytest.approx(7 / 3)
    assert out["median_time_difference_s"] == 0.0


def test_paired_paths_and_speeds_known_answer():
    agent = _result([True, True, False], [2.0, 4.0, 10.0], paths=[20.0, 60.0, 99.0])
    scripted = _result([True, True, True], [1.0, 2.0, 3.0], paths=[20.0, 20.0, 30.0])
    out = paired_times(agent, scripted, time_limit_s=10.0)
    assert out["agent_path_both_mm"] == 40.0 and out["scripted_path_both_mm"] == 20.0
    assert out["agent_speed_both_mm_s"] == pytest.approx((10 + 15) / 2)
    assert out["scripted_speed_both_mm_s"] == pytest.approx((20 + 10) / 2)


def test_twin_path_length_is_the_sum_of_the_steps():
    """``evaluate_twin`` sums each fly's thorax displacement per step until its episode
    ends: the same as a manual rollout, and never shorter than start-to-end."""
    import gymnasium as gym
    import numpy as np

    from flyenv.rl import evaluation as ev

    env_id, n = "flyenv/PlumeTracking-kinematic-v0", 3
    res = ev.evaluate_twin(lambda k: lambda obs: np.full((k, 2), 0.8), env_id, {}, n, 7)
    venv = gym.make_vec(env_id, num_envs=n)
    _, info = venv.reset(seed=7)
    pos, start = info["position_mm"].astype(float), info["position_mm"].astype(float)
    path, end, done = np.zeros(n), np.zeros((n, 2)), np.zeros(n, bool)
    while not done.all():
        _, _, term, trunc, info = venv.step(np.full((n, 2), 0.8, np.float32))
        now = info["position_mm"].astype(float)
        ended = (term | trunc) & ~done
        if ended.any():
            now[ended] = info["final_info"]["position_mm"][ended]
        path[~done] += np.linalg.norm(now - pos, axis=1)[~done]
        end[ended] = now[ended]
        pos, done = now, done | ended
    assert res.path_lengths_mm == pytest.approx(path.tolist())
    assert np.all(path >= np.linalg.norm(end - start, axis=1) - 1e-9)
    assert np.all(path > 1.0)  # the flies walked


def test_pool_results_keeps_start_order_and_recomputes_the_rates():
    from flyenv.rl.evaluation import pool_results

    a = _result([True, False], [1.0, 10.0], paths=[5.0, 7.0])
    b = _result([True, True], [3.0, 2.0], paths=[9.0, 4.0])
    pooled = pool_results([a, b])
    assert pooled.starts == 4 and pooled.seed == 5
    assert pooled.successes == [True, False, True, True]
    assert pooled.times_s == [1.0, 10.0, 3.0, 2.0]
    assert pooled.path_lengths_mm == [5.0, 7.0, 9.0, 4.0]
    assert pooled.success_rate == 0.75 and pooled.mean_time_to_source_s == 2.0
    with pytest.raises(ValueError, match="at least one"):
        pool_results([])


def test_paired_times_refuses_different_starts():
    with pytest.raises(ValueError, match="not on the same starts"):
        paired_times(_result([True], [1.0], seed=1), _result([True], [1.0], seed=2), 10.0)
    no_times = EvalResult("x", 1, 5, 1.0, 1.0, 0.0, [True])
    with pytest.raises(ValueError, match="per-start times_s"):
        paired_times(no_times, _result([True], [1.0]), 10.0)


def test_paired_time_cell_runs_both_agents_on_the_same_starts(tmp_path):
    import gymnasium as gym
    from stable_baselines3 import PPO

    from flyenv.evaluation.plume_baselines import make_scripted
    from flyenv.rl import evaluation as ev

    env = gym.make("flyenv/PlumeTracking-kinematic-v0")
    PPO("MlpPolicy", env, n_steps=8, device="cpu").save(tmp_path / "seed_3" / "model.zip")
    config = {"agent": str(tmp_path / "seed_{seed}" / "model.zip"), "starts": 4, "start_seed": 11}
    out = paired_time_cell(config, 3, tmp_path)
    direct = ev.evaluate_twin(
        lambda _: make_scripted("cast_and_surge", None, 3, 0.01),
        "flyenv/PlumeTracking-kinematic-v0",
        {},
        4,
        11,
    )
    assert out["scripted"]["successes"] == direct.successes
    assert out["scripted"]["times_s"] == direct.times_s
    assert len(out["twin_4"]["times_s"]) == 4 and out["twin_4"]["seed"] == 11
    assert out["scripted"]["path_lengths_mm"] == direct.path_lengths_mm
    p = out["paired"]
    assert p["both_success"] + p["agent_only_success"] + p["scripted_only_success"] <= 4
    # two start sets: streams 11 and 12, pooled in order
    two = paired_time_cell({**config, "start_sets": 2}, 3, tmp_path)
    second = ev.evaluate_twin(
        lambda _: make_scripted("cast_and_surge", None, 3, 0.01),
        "flyenv/PlumeTracking-kinematic-v0",
        {},
        4,
        12,
    )
    assert two["scripted"]["times_s"] == direct.times_s + second.times_s
    assert two["scripted"]["successes"] == direct.successes + second.successes
    assert two["twin_8"]["times_s"][:4] == out["twin_4"]["times_s"]
    assert two["paired"]["both_success"] >= p["both_success"]
    with pytest.raises(ValueError, match="must both be >= 1"):
        paired_time_cell({**config, "start_sets": 0}, 3, tmp_path)
    with pytest.raises(ValueError, match="unknown paired_time_cell keys"):
        paired_time_cell({**config, "n_starts": 3}, 3, tmp_path)
    with pytest.raises(ValueError, match="'cast_and_surge' or 'upwind_only'"):
        paired_time_cell({**config, "against": "random"}, 3, tmp_path)
    with pytest.raises(ValueError, match="existing SB3 zip"):
        paired_time_cell(config, 4, tmp_path)
