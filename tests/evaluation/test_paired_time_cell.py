"""Start-by-start time comparison of a trained and a scripted agent
(flyenv.evaluation.paired_time_cell)."""

from __future__ import annotations

import pytest

from flyenv.evaluation.paired_time_cell import paired_time_cell, paired_times
from flyenv.rl.evaluation import EvalResult


def _result(successes, times, seed=5):
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
    )


def test_paired_times_known_answer():
    agent = _result([True, True, False, True], [2.0, 3.0, 10.0, 1.0])
    scripted = _result([True, True, True, False], [3.0, 2.5, 4.0, 10.0])
    out = paired_times(agent, scripted, time_limit_s=10.0)
    assert out["both_success"] == 2  # starts 0 and 1
    assert out["agent_only_success"] == 1 and out["scripted_only_success"] == 1
    assert out["time_difference_s"] == pytest.approx(((2 - 3) + (3 - 2.5)) / 2)
    assert out["agent_faster_fraction"] == 0.5
    assert out["agent_time_both_s"] == 2.5 and out["scripted_time_both_s"] == 2.75
    # failures at the limit: (2-3) + (3-2.5) + (10-4) + (1-10), over 4 starts
    assert out["censored_time_difference_s"] == pytest.approx((-1 + 0.5 + 6 - 9) / 4)


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
    assert len(out["twin_50"]["times_s"]) == 4 and out["twin_50"]["seed"] == 11
    p = out["paired"]
    assert p["both_success"] + p["agent_only_success"] + p["scripted_only_success"] <= 4
    with pytest.raises(ValueError, match="unknown paired_time_cell keys"):
        paired_time_cell({**config, "n_starts": 3}, 3, tmp_path)
    with pytest.raises(ValueError, match="'cast_and_surge' or 'upwind_only'"):
        paired_time_cell({**config, "against": "random"}, 3, tmp_path)
    with pytest.raises(ValueError, match="existing SB3 zip"):
        paired_time_cell(config, 4, tmp_path)
