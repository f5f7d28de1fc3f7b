# moved from tests/test_plume_envs.py
"""PlumeTracking on the MuJoCo body and on the twin: contracts, wind sensing, videos."""

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401
from flyenv.cli import main as cli_main
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.tasks.plume_tracking import PlumeTrackingConfig, PlumeTrackingTask

MJ, TWIN = "flyenv/PlumeTracking-v0", "flyenv/PlumeTracking-kinematic-v0"


@pytest.fixture(scope="module")
def mj_env():
    env = gym.make(MJ)
    yield env
    env.close()


def test_check_env_both(mj_env):
    gym_check_env(mj_env.unwrapped, skip_render_check=True)
    sb3_check_env(mj_env.unwrapped, warn=True)
    twin = gym.make(TWIN)
    gym_check_env(twin.unwrapped, skip_render_check=True)
    sb3_check_env(twin.unwrapped, warn=True)
    assert (
        twin.observation_space
        == mj_env.observation_space
        == gym.spaces.Box(twin.observation_space.low, twin.observation_space.high, (9,), np.float32)
    )


def test_same_seed_same_start(mj_env):
    twin = gym.make(TWIN)
    _, a = twin.reset(seed=4)
    _, b = mj_env.reset(seed=4)
    np.testing.assert_allclose(a["position_mm"], b["position_mm"], atol=0.1)
    assert a["heading_rad"] == pytest.approx(b["heading_rad"], abs=1e-3)


@pytest.mark.parametrize("env_id", [MJ, TWIN])
def test_wind_is_sensed_in_the_body_frame(env_id, mj_env):
    env = mj_env if env_id == MJ else gym.make(TWIN)
    # The wind blows toward +x. Facing downwind, it blows from behind (positive along-axis).
    obs, info = env.reset(seed=0, options={"start_heading_rad": 0.0})
    assert info["wind_mm_s"][0] > 100 and obs[4] > 1.0 and abs(obs[5]) < 0.5
    obs, _ = env.reset(seed=0, options={"start_heading_rad": np.pi})
    assert obs[4] < -1.0
    # Facing +y (left of the wind), the wind blows across the body toward the fly's right.
    obs, _ = env.reset(seed=0, options={"start_heading_rad": np.pi / 2})
    assert obs[5] < -1.0 and abs(obs[4]) < 0.5


def test_plume_is_smelled_in_the_plume_not_outside():
    env = gym.make(TWIN)
    obs_in, info_in = env.reset(
        seed=0, options={"start_xy_mm": [30.0, 80.0], "start_heading_rad": 0.0}
    )
    obs_out, info_out = env.reset(
        seed=0, options={"start_xy_mm": [30.0, 140.0], "start_heading_rad": 0.0}
    )
    assert info_in["odor_concentration"].max() > 0.05
    assert info_out["odor_concentration"].max() < 1e-3
    assert obs_in[:4].mean() > obs_out[:4].mean() + 1.0


def test_leaving_the_domain_terminates():
    env = gym.make(TWIN)
    env.reset(seed=0, options={"start_xy_mm": [239.0, 80.0], "start_heading_rad": 0.0})
    for _ in range(100):
        _, reward, term, trunc, info = env.step(np.array([1.0, 1.0], np.float32))
        if term or trunc:
            break
    assert term and info["termination_reason"] == "left_domain" and reward < -5


def test_reaching_the_source_succeeds_on_twin():
    env = gym.make(TWIN)
    env.reset(seed=0, options={"start_xy_mm": [25.0, 80.0], "start_heading_rad": np.pi})
    for _ in range(300):
        _, reward, term, trunc, info = env.step(np.array([1.0, 1.0], np.float32))
        if term or trunc:
            break
    assert info["is_success"] and info["termination_reason"] == "success"


def test_vector_env_and_determinism():
    envs = gym.make_vec(TWIN, num_envs=256)
    o1, _ = envs.reset(seed=3)
    acts = np.random.default_rng(0).uniform(-1, 1, (10, 256, 2)).astype(np.float32)
    for a in acts:
        o1, r, te, tr, info = envs.step(a)
    assert o1.shape == (256, 9) and "termination_reason" in info
    envs2 = gym.make_vec(TWIN, num_envs=256)
    o2, _ = envs2.reset(seed=3)
    for a in acts:
        o2, *_ = envs2.step(a)
    np.testing.assert_array_equal(o1, o2)


def test_odor_and_wind_readings_are_differentiable():
    batch = WalkingEpisodes.twin(PlumeTrackingTask, 16, PlumeTrackingConfig())
    batch.reset(np.random.default_rng(0), options={"start_xy_mm": [30.0, 80.0]})
    actions = torch.zeros(30, 16, 2, requires_grad=True)
    loss = 0.0
    for t in range(30):
        obs, *_ = batch.step(actions[t])
        loss = loss + obs[:, :4].sum()
    loss.backward()
    assert torch.isfinite(actions.grad).all() and actions.grad[0].abs().sum() > 0


def test_generated_plume_drives_the_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYENV_CACHE_DIR", str(tmp_path))
    gen = {"domain_mm": (60.0, 30.0), "duration_s": 0.4, "source_xy_mm": (5.0, 15.0), "seed": 1}
    env = gym.make(
        TWIN, plume_generator=gen, start_downwind_mm=(15.0, 20.0), start_crosswind_mm=(-2.0, 2.0)
    )
    obs, info = env.reset(seed=0)
    assert info["source_position_mm"].tolist() == [5.0, 15.0]
    obs, *_ = env.step(np.zeros(2, np.float32))
    assert np.isfinite(obs).all()
    assert list(tmp_path.glob("*.h5")), "the generated plume was not cached"


def test_bad_plume_config_is_explained():
    with pytest.raises(ValueError, match="either plume_path or plume_generator"):
        gym.make(TWIN, plume_path="x.h5", plume_generator={})
    with pytest.raises(ValueError, match="outside"):
        gym.make(TWIN, start_downwind_mm=(250.0, 260.0))


@pytest.mark.parametrize("env_id", [MJ, TWIN])
def test_record_shows_the_plume(env_id, tmp_path):
    out = tmp_path / "plume.mp4"
    kwargs = '{"time_limit_s": 0.1, "render_width": 160, "render_height": 128}'
    assert (
        cli_main(
            [
                "record",
                "--env",
                env_id,
                "--agent",
                "random",
                "--out",
                str(out),
                "--fps",
                "50",
                "--env-kwargs",
                kwargs,
            ]
        )
        == 0
    )
    frames = [f for f in imageio.get_reader(out, format="FFMPEG")]
    assert len(frames) >= 5
    f = frames[-1].astype(int)
    if env_id == MJ:  # magenta plume painted on the grey floor
        plume_px = (f[..., 0] > 150) & (f[..., 1] < 110) & (f[..., 2] > 110)
    else:  # viridis yellow-green where the odor is
        plume_px = (f[..., 1] > 150) & (f[..., 2] < 120)
    assert plume_px.mean() > 0.01


def test_mujoco_plume_env_same_seed_same_trajectory():
    a, b = gym.make(MJ), gym.make(MJ)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    np.testing.assert_array_equal(oa, ob)
    for act in np.random.default_rng(2).uniform(-1, 1, (5, 2)).astype(np.float32):
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb


# Async workers start by spawn: a forked MuJoCo/torch process occasionally deadlocked here.
SPAWN = {"sync": {}, "async": {"vector_kwargs": {"context": "spawn"}}}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mujoco_plume_env_in_make_vec(mode):
    envs = gym.make_vec(MJ, num_envs=2, vectorization_mode=mode, **SPAWN[mode])
    obs, _ = envs.reset(seed=[0, 1])
    obs, reward, term, trunc, _ = envs.step(np.zeros((2, 2), np.float32))
    assert obs.shape == (2, 9) and reward.shape == (2,)
    assert not np.array_equal(obs[0], obs[1])
    envs.close()


ORN = {"observation": "orn", "odor_name": "ethyl acetate"}
N_GLOM = 55


@pytest.mark.parametrize("env_id", [MJ, TWIN])
def test_orn_observation_checker_shape_and_formula(env_id):
    """observation="orn": both bodies pass the checkers with (2G + 5,) observations;
    the ORN block is OdorTaxis's numpy ORN formula (``OrnObservation.observe``) applied to
    the concentration at the same sensors (``info["odor_concentration"]``), followed by
    the wind and self-motion of the intensity observation."""
    from flyenv.tasks.plume_tracking import plume_orn_observation

    env = gym.make(env_id, **ORN)
    assert env.observation_space.shape == (2 * N_GLOM + 5,)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    plain = gym.make(env_id)
    formula = plume_orn_observation(env.unwrapped.config)
    start = {"start_xy_mm": [30.0, 80.0], "start_heading_rad": np.pi}  # in the plume
    obs, info = env.reset(seed=0, options=start)
    obs_i, _ = plain.reset(seed=0, options=start)
    smelled = False
    for act in np.random.default_rng(1).uniform(-1, 1, (4, 2)).astype(np.float32):
        conc = np.asarray(info["odor_concentration"], dtype=np.float64)
        expected = formula.observe(np.maximum(conc, 0.0)[None])
        np.testing.assert_allclose(obs[: 2 * N_GLOM], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(obs[2 * N_GLOM :], obs_i[4:], rtol=1e-5, atol=1e-5)
        smelled |= bool(conc.max() > 0.01)
        obs, _, _, _, info = env.step(act)
        obs_i, *_ = plain.step(act)
    assert smelled
    # left and right: antenna glomeruli read the antennae, palp glomeruli the palps
    assert not np.allclose(obs[:N_GLOM], obs[N_GLOM : 2 * N_GLOM])
    env.close()
    plain.close()


def test_orn_observation_on_twin_vector_env_and_bad_input():
    envs = gym.make_vec(TWIN, num_envs=8, **ORN)
    obs, _ = envs.reset(seed=0, options={"start_xy_mm": [30.0, 80.0]})
    assert obs.shape == (8, 2 * N_GLOM + 5) and envs.observation_space.shape[1] == 2 * N_GLOM + 5
    assert obs[:, : 2 * N_GLOM].min() >= 0 and obs[:, : 2 * N_GLOM].max() <= 1
    out, _ = envs.reset(seed=0, options={"start_xy_mm": [30.0, 140.0]})  # outside the plume
    assert obs[:, : 2 * N_GLOM].mean() > out[:, : 2 * N_GLOM].mean() + 0.05
    with pytest.raises(ValueError, match="needs the plume's odor"):
        gym.make(TWIN, observation="orn")
    with pytest.raises(ValueError, match="unknown odor"):
        gym.make(TWIN, observation="orn", odor_name="no such odor")
    with pytest.raises(ValueError, match="observation="):
        gym.make(TWIN, observation="rates")


# ---------------------------------------------------------------------- cast and surge
def test_cast_and_surge_beats_random_on_50_twin_starts():
    from flyenv.policies.cast_and_surge import CastAndSurgePolicy
    from flyenv.rl.evaluation import evaluate_twin

    cast = evaluate_twin(lambda n: CastAndSurgePolicy(), TWIN, {}, 50, seed=0)
    rng = np.random.default_rng(0)
    rand = evaluate_twin(
        lambda n: lambda obs: rng.uniform(-1, 1, (n, 2)).astype(np.float32), TWIN, {}, 50, seed=0
    )
    print(f"50 twin starts: cast_and_surge {cast.success_rate:.0%}, random {rand.success_rate:.0%}")
    assert cast.success_rate > rand.success_rate + 0.5


def test_cast_and_surge_surges_upwind_then_casts_wider():
    from flyenv.policies.cast_and_surge import CAST, SURGE, CastAndSurgeConfig, CastAndSurgePolicy

    cfg = CastAndSurgeConfig(surge_hold_s=0.05, cast_sweep_s=0.1, cast_growth=2.0)
    policy = CastAndSurgePolicy(cfg)

    def obs(odor: float, along: float, across: float) -> np.ndarray:
        return np.array([odor] * 4 + [along, across, 0, 0, 0], np.float32)

    # odor, wind blowing toward the fly's right (coming from its left): turn left
    a = policy(obs(2.0, 0.0, -2.8))
    assert policy.mode[0] == SURGE and a[0] < a[1]
    a = policy(obs(2.0, -2.8, 0.0))  # facing upwind: straight and fast
    assert a[0] == pytest.approx(a[1]) and a[0] == pytest.approx(cfg.surge_forward)
    # odor lost: keeps surging for surge_hold_s, then casts with reversals at growing intervals
    modes, turns = [], []
    for _ in range(80):
        a = policy(obs(0.0, -2.8, 0.0))
        modes.append(policy.mode[0])
        turns.append(np.sign(a[1] - a[0]))
    assert modes[:4] == [SURGE] * 4 and modes[-1] == CAST
    flips = np.flatnonzero(np.diff(turns[5:]) != 0)
    assert len(flips) >= 2 and np.all(np.diff(flips) > 0)
    assert np.diff(flips)[-1] > np.diff(flips)[0]  # each sweep longer than the last
    # batched: each env keeps its own state; reset() starts over
    both = policy.__class__(cfg)
    actions = both(np.stack([obs(2.0, 0.0, -2.8), obs(0.0, 0.0, -2.8)]))
    assert both.mode.tolist() == [SURGE, CAST] and actions.shape == (2, 2)
    both.reset()
    both(obs(0.0, -2.8, 0.0))
    assert both.mode.tolist() == [CAST]


def test_record_cast_and_surge_agent(tmp_path):
    out = tmp_path / "cas.mp4"
    kwargs = '{"time_limit_s": 0.1, "render_width": 160, "render_height": 128}'
    args = ["record", "--env", TWIN, "--agent", "cast_and_surge", "--out", str(out)]
    assert cli_main([*args, "--env-kwargs", kwargs]) == 0 and out.exists()
    from flyenv.policies.loading import load_policy

    with pytest.raises(ValueError, match="intensity observation"):
        load_policy("cast_and_surge", gym.make(TWIN, **ORN))
