# moved from tests/test_orn_env.py
"""OdorTaxis with named odors and glomerular ORN observations (MuJoCo env and twin)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import flyenv  # noqa: F401
from flyenv.connectome.door import OrnFrontEnd
from flyenv.connectome.mushroom_body import load_mushroom_body
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.stimuli.odor import StaticOdorField
from flyenv.tasks.odor_taxis import OdorTaxisConfig, OdorTaxisTask, OrnObservation

ORN = dict(observation="orn", odor_names=("ethyl acetate",))
G = 55


@pytest.fixture(scope="module")
def orn_env():
    env = gym.make("flyenv/OdorTaxis-v0", **ORN)
    yield env
    env.close()


def test_mujoco_orn_env_passes_checkers(orn_env):
    assert orn_env.observation_space.shape == (2 * G + 3,)
    np.testing.assert_array_equal(orn_env.observation_space.high[: 2 * G], 1.0)
    gym_check_env(orn_env.unwrapped, skip_render_check=True)
    sb3_check_env(orn_env.unwrapped, warn=True)


def test_twin_orn_env_passes_checkers_and_vectorises():
    env = gym.make("flyenv/OdorTaxis-kinematic-v0", **ORN)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    envs = gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=4, **ORN)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 2 * G + 3) and envs.single_observation_space.contains(obs[0])
    obs, *_ = envs.step(np.zeros((4, 2), np.float32))
    assert np.isfinite(obs).all()


def test_mujoco_and_twin_agree_on_orn_observation(orn_env):
    twin = gym.make("flyenv/OdorTaxis-kinematic-v0", **ORN)
    assert twin.observation_space == orn_env.observation_space
    obs_twin, _ = twin.reset(seed=7)
    obs_mj, _ = orn_env.reset(seed=7)
    # Same formula: at the MuJoCo fly's sensor positions the twin gives the same numbers.
    sensors = torch.tensor(orn_env.unwrapped.body.odor_sensor_positions, dtype=torch.float32)
    odor_twin = twin.unwrapped.task.odor_observation(sensors[None])[0].numpy()
    np.testing.assert_allclose(odor_twin, obs_mj[: 2 * G], rtol=1e-5, atol=1e-7)
    # Raw reset observations differ only by where each body holds its sensors (the twin
    # uses the calibrated mean sensor layout): well below 1 % of the range.
    np.testing.assert_allclose(obs_twin, obs_mj, atol=5e-3)
    np.testing.assert_array_equal(obs_mj[2 * G :], 0.0)


def test_orn_observation_is_physical():
    batch = WalkingEpisodes.twin(OdorTaxisTask, 2, OdorTaxisConfig(**ORN))
    front = OrnFrontEnd(load_mushroom_body().glomeruli)
    r = front.response_matrix(ORN["odor_names"])[0]
    up = int(np.argmax(r))
    silent = [front.glomeruli.index(g) for g in front.glomeruli_without_receptor]
    spont = front.config.spontaneous_rate_hz / front.config.max_rate_hz
    # Source straight to the fly's right (heading +90 deg): the right side fires more.
    obs = batch.reset(np.random.default_rng(0), options={"start_heading_rad": np.pi / 2})[0]
    left, right = obs[0, :G].numpy(), obs[0, G : 2 * G].numpy()
    assert right[up] > left[up] > spont
    np.testing.assert_allclose(left[silent], spont, rtol=1e-6)
    np.testing.assert_allclose(right[silent], spont, rtol=1e-6)
    # Closer source, higher rates for excited glomeruli.
    near = batch.reset(np.random.default_rng(0), options={"source_distance_mm": 5.0})[0]
    far = batch.reset(np.random.default_rng(0), options={"source_distance_mm": 20.0})[0]
    assert near[0, up] > far[0, up] and near[0, G + up] > far[0, G + up]


def test_twin_orn_observation_is_differentiable_wrt_positions():
    cfg = OdorTaxisConfig(
        n_aversive_sources=1, observation="orn", odor_names=("ethyl acetate", "benzaldehyde")
    )
    batch = WalkingEpisodes.twin(OdorTaxisTask, 3, cfg)
    batch.reset(np.random.default_rng(1))
    sensors = batch.body.sensor_positions().detach().requires_grad_(True)
    obs = batch.task.odor_observation(sensors)
    assert obs.shape == (3, 2 * G)
    obs.sum().backward()
    assert torch.isfinite(sensors.grad).all() and (sensors.grad[..., :2].abs() > 0).all()
    # ... and through the body's motion, back to the actions.
    actions = torch.zeros(20, 3, 2, requires_grad=True)
    total = 0.0
    for t in range(20):
        o, *_ = batch.step(actions[t])
        total = total + o[:, : 2 * G].sum()
    total.backward()
    assert torch.isfinite(actions.grad).all() and (actions.grad[0].abs() > 0).any()


def test_numpy_and_torch_orn_paths_agree_with_aversive_odor():
    cfg = OdorTaxisConfig(
        n_aversive_sources=1, observation="orn", odor_names=("ethyl acetate", "benzaldehyde")
    )
    batch = WalkingEpisodes.twin(OdorTaxisTask, 4, cfg)
    batch.reset(np.random.default_rng(2))
    orn = OrnObservation.from_config(cfg)
    assert orn.response.shape == (2, G)
    sensors = batch.body.sensor_positions()
    for b in range(4):
        field = StaticOdorField(batch.task.sources[b].numpy(), np.diag(orn.source_peaks))
        ref = orn.observe(field.intensity(sensors[b].double().numpy()))
        np.testing.assert_allclose(
            batch.task.odor_observation(batch.body.sensor_positions())[b].numpy(),
            ref,
            rtol=1e-5,
            atol=1e-7,
        )


def test_default_observation_is_unchanged():
    env = gym.make("flyenv/OdorTaxis-kinematic-v0")
    assert env.observation_space.shape == (7,)
    env2 = gym.make("flyenv/OdorTaxis-kinematic-v0", odor_names=("ethyl acetate",))
    assert env2.observation_space == env.observation_space
    np.testing.assert_array_equal(env.reset(seed=3)[0], env2.reset(seed=3)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(observation="orn"), "needs odor identities"),
        (dict(observation="spikes", odor_names=("ethyl acetate",)), "observation='spikes'"),
        (dict(odor_names="ethyl acetate"), "one per source"),
        (dict(odor_names=("ethyl acetate", "benzaldehyde")), "must be a tuple of 1"),
        (dict(odor_names=("isoamyl acetate",)), "close matches.*isopentyl acetate"),
    ],
)
def test_bad_odor_config_raises_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("flyenv/OdorTaxis-kinematic-v0", **kwargs)
