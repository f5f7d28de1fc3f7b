# moved from tests/test_kinematic_twin.py
"""The kinematic twin: drive map, differentiability, envs, vector env."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401
from flyenv.bodies.drive_map import Calibration, DriveMap
from flyenv.bodies.kinematic_fly import KinematicFly
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.policies.braitenberg import BraitenbergPolicy
from flyenv.recording import run_episode
from flyenv.stimuli.odor import StaticOdorField, odor_intensity_torch
from flyenv.tasks.odor_taxis import OdorTaxisConfig, OdorTaxisTask

ID = "flyenv/OdorTaxis-kinematic-v0"


def test_drive_map_exact_at_knots_and_smooth_between():
    cal = Calibration.load()
    dm = DriveMap(cal).double()
    g = cal.action_grid
    knots = torch.tensor([[a, b] for a in g for b in g], dtype=torch.float64)
    # Coefficients are stored in float32: exact up to that precision.
    np.testing.assert_allclose(
        dm(knots).reshape(len(g), len(g), 3).numpy(), cal.mean, rtol=1e-5, atol=1e-5
    )
    # C1 across a cell boundary: one-sided derivatives agree.
    x = float(g[len(g) // 2])
    eps = 1e-4
    left = (
        dm(torch.tensor([[x, 0.3]], dtype=torch.float64))
        - dm(torch.tensor([[x - eps, 0.3]], dtype=torch.float64))
    ) / eps
    right = (
        dm(torch.tensor([[x + eps, 0.3]], dtype=torch.float64))
        - dm(torch.tensor([[x, 0.3]], dtype=torch.float64))
    ) / eps
    # (a kink, as in bilinear interpolation, would differ by the slope change: O(1-10))
    np.testing.assert_allclose(left.numpy(), right.numpy(), rtol=1e-2, atol=2e-2)
    # Walking straight at full drive is faster than at half drive; unequal drives turn.
    fwd = dm(torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64))
    assert fwd[0, 0] > fwd[1, 0] > 0
    assert fwd[2, 2] < 0 < fwd[3, 2]  # left legs stronger -> clockwise (negative yaw)


def test_torch_odor_matches_numpy_field():
    rng = np.random.default_rng(0)
    sources = rng.uniform(-10, 10, (3, 3))
    peaks = rng.uniform(0.5, 2.0, (3, 2))
    sensors = rng.uniform(-10, 10, (4, 3))
    for diffusion in ("inverse_square", "exponential_5mm"):
        ref = StaticOdorField(sources, peaks, diffusion).intensity(sensors)
        got = odor_intensity_torch(
            torch.tensor(sensors)[None], torch.tensor(sources)[None], torch.tensor(peaks), diffusion
        )[0]
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


def test_gradient_reaches_first_action_from_step_5000():
    fly = KinematicFly(batch_size=4, device="cpu", dtype=torch.float64)
    fly.reset()
    actions = torch.full((5000, 4, 2), 0.4, dtype=torch.float64, requires_grad=True)
    for t in range(5000):
        fly.step(actions[t], 0.01)
    target = torch.tensor([30.0, 5.0], dtype=torch.float64)
    loss = ((fly.xy - target) ** 2).sum() + fly.sensor_positions()[..., :2].sum()
    loss.backward()
    g = actions.grad
    assert torch.isfinite(g).all()
    assert (g[0].abs() > 0).all(), "no gradient reached the actions of step 1"
    assert (g[-1].abs() > 0).any()


def test_sensor_readings_are_differentiable_wrt_actions():
    batch = WalkingEpisodes.twin(OdorTaxisTask, 8, OdorTaxisConfig(), device="cpu")
    batch.reset(np.random.default_rng(0))
    actions = torch.zeros(50, 8, 2, requires_grad=True)
    total = 0.0
    for t in range(50):
        obs, reward, *_ = batch.step(actions[t])
        total = total + obs[:, :4].sum() + reward.sum()
    total.backward()
    assert torch.isfinite(actions.grad).all() and (actions.grad[0].abs() > 0).any()


def test_gym_and_sb3_check_env():
    env = gym.make(ID)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)


def test_same_spaces_and_same_starts_as_mujoco(odor_env):
    twin = gym.make(ID)
    assert twin.observation_space == odor_env.observation_space
    assert twin.action_space == odor_env.action_space
    _, info_twin = twin.reset(seed=7)
    _, info_mj = odor_env.reset(seed=7)
    np.testing.assert_allclose(
        info_twin["source_position_mm"], info_mj["source_position_mm"], rtol=1e-6
    )
    assert info_twin["heading_rad"] == pytest.approx(info_mj["heading_rad"], abs=1e-5)


def test_same_seed_same_trajectory_and_noise():
    for noise in (False, True):
        a, b = gym.make(ID, noise=noise), gym.make(ID, noise=noise)
        oa, _ = a.reset(seed=3)
        ob, _ = b.reset(seed=3)
        acts = np.random.default_rng(1).uniform(-1, 1, (30, 2)).astype(np.float32)
        for act in acts:
            oa, *_ = a.step(act)
            ob, *_ = b.step(act)
        np.testing.assert_array_equal(oa, ob)


def test_braitenberg_reaches_source_on_twin():
    env = gym.make(ID, time_limit_s=5.0)
    res = run_episode(
        env,
        BraitenbergPolicy(1),
        seed=0,
        options={"source_distance_mm": 12.0, "start_heading_rad": 1.5},
    )
    assert res.is_success and res.termination_reason == "success"


def test_vector_env_steps_all_flies_in_one_op():
    envs = gym.make_vec(ID, num_envs=512, time_limit_s=0.2)
    assert envs.num_envs == 512
    assert envs.single_observation_space.shape == (7,)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (512, 7) and envs.observation_space.contains(obs)
    saw_reset = False
    for _ in range(25):
        obs, rew, term, trunc, info = envs.step(np.tile([0.5, 0.5], (512, 1)).astype(np.float32))
        assert obs.shape == (512, 7) and rew.shape == (512,)
        if "final_obs" in info:
            saw_reset = True
            done = term | trunc
            np.testing.assert_array_equal(info["_final_obs"], done)
            # Same-step autoreset: finished envs already show their first observation.
            assert np.all(obs[done, 4:] == 0.0)
    assert saw_reset  # the 0.2 s limit truncates every env at step 20


def test_vector_env_sync_mode_also_works():
    envs = gym.make_vec(ID, num_envs=2, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    obs, *_ = envs.step(np.zeros((2, 2), np.float32))
    assert obs.shape == (2, 7)


def test_bad_actions_raise():
    env = gym.make(ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0]))
    envs = gym.make_vec(ID, num_envs=4)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        envs.step(np.zeros((3, 2)))


def test_missing_calibration_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="flyenv.bodies.calibrate"):
        gym.make(ID, calibration_path=str(tmp_path / "nope.npz"))


def test_render_top_down_frame():
    env = gym.make(
        ID, render_mode="rgb_array", render_width=200, render_height=160, n_aversive_sources=1
    )
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.array([0.5, 0.3], np.float32))
    frame = env.render()
    assert frame.shape == (160, 200, 3) and frame.dtype == np.uint8
    assert frame.std() > 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    envs = gym.make_vec(ID, num_envs=64, device="cuda")
    envs.reset(seed=0)
    obs, *_ = envs.step(np.zeros((64, 2), np.float32))
    assert obs.shape == (64, 7)
