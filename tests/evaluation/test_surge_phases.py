"""The turn / walk split of plume episodes (flyenv.evaluation.surge_phases)."""

from __future__ import annotations

import numpy as np
import pytest

from flyenv.evaluation.surge_phases import TraceRecorder, phase_metrics, run_traced, surge_phases


def _recorded(errors_deg, actions, positions, active):
    rec = TraceRecorder()
    for e, a, p, live in zip(errors_deg, actions, positions, active, strict=True):
        rec.heading_error_rad.append(np.deg2rad(np.asarray(e, float)))
        rec.actions.append(np.asarray(a, float))
        rec.position_mm.append(np.asarray(p, float))
        rec.active.append(np.asarray(live, bool))
    return rec


def test_phase_metrics_split_each_episode_at_the_first_step_facing_upwind():
    # fly 0: turns for 2 steps (90, 40 deg off), faces at step 3 (10 deg), then walks 2
    # steps at 1 mm per 10 ms step, one of them with a side reversed; 5 steps in all.
    # fly 1: never faces upwind; it ends after 2 steps (inactive after).
    err = [[90, 170], [40, 170], [10, 170], [5, 0], [15, 0]]
    act = [
        [[1, -1], [0, 0]],
        [[1, 0], [0, 0]],
        [[1, 1], [0, 0]],
        [[1, 1], [0, 0]],
        [[1, -0.2], [0, 0]],
    ]
    x = [0.0, 0.0, 0.5, 1.5, 2.5]
    pos = [[[xi, 0.0], [0.0, 0.0]] for xi in x]
    live = [[1, 1], [1, 1], [1, 0], [1, 0], [1, 0]]
    out = phase_metrics(_recorded(err, act, pos, live), 0.01, 20.0)
    assert out["time_to_face_s"][0] == pytest.approx(0.03)
    assert out["after_face_s"][0] == pytest.approx(0.02)  # the two steps after facing
    assert out["speed_mm_s"][0] == pytest.approx(100.0)  # 1 mm per 10 ms
    assert out["heading_error_deg"][0] == pytest.approx(10.0)
    assert out["reversing_share"][0] == pytest.approx(0.5)
    assert all(np.isnan(out[k][1]) for k in out)  # fly 1 never faced upwind


def test_the_recorder_sees_each_first_episode_to_its_end_on_the_twin():
    import gymnasium as gym

    from flyenv.evaluation.plume_baselines import make_scripted

    env_kwargs = {"time_limit_s": 0.3}
    probe = gym.make_vec("flyenv/PlumeTracking-kinematic-v0", num_envs=4, **env_kwargs)
    start = np.asarray(probe.reset(seed=7)[1]["position_mm"], float)  # evaluate_twin's draw
    probe.close()
    result, rec = run_traced(
        lambda _: make_scripted("cast_and_surge", None, 0, 0.01),
        "flyenv/PlumeTracking-kinematic-v0",
        env_kwargs,
        4,
        7,
    )
    steps = np.stack(rec.active).sum(axis=0)
    np.testing.assert_allclose(steps * 0.01, result.times_s)
    # the recorded path is the path evaluate_twin measured
    pos = np.concatenate([start[None], np.stack(rec.position_mm)])
    path = (np.linalg.norm(np.diff(pos, axis=0), axis=2) * np.stack(rec.active)).sum(axis=0)
    np.testing.assert_allclose(path, result.path_lengths_mm, rtol=1e-6)
    err = np.stack(rec.heading_error_rad)
    assert np.all(np.abs(err) <= np.pi)


def test_surge_phases_compares_a_saved_agent_with_cast_and_surge(tmp_path):
    import gymnasium as gym
    from stable_baselines3 import PPO

    env = gym.make("flyenv/PlumeTracking-kinematic-v0", time_limit_s=0.5)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, device="cpu")
    model.flyenv_env_kwargs = {"time_limit_s": 0.5}
    model.save(tmp_path / "m.zip")
    out = surge_phases(str(tmp_path / "m.zip"), starts=3, start_seed=5)
    assert out["starts"] == 3 and 0 <= out["agent_success"] <= 1
    assert out["both_solve"]["n"] == 0  # 0.5 s is too short to reach the source
    with pytest.raises(ValueError, match="face_tolerance_deg"):
        surge_phases(str(tmp_path / "m.zip"), starts=3, face_tolerance_deg=0)
