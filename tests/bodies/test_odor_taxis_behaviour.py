# moved from tests/test_odor_taxis_behaviour.py
"""The body behaves like flygym's, the odor is flygym's, the task is solvable, videos work."""

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from flygym import Fly
from flygym.arena import OdorArena
from flygym.examples.locomotion import HybridTurningController
from gymnasium.wrappers import RecordVideo

import flyenv  # noqa: F401
from flyenv.bodies.hybrid_turning import LEGS
from flyenv.bodies.mujoco_fly import CONTACT_SENSOR_SEGMENTS, MujocoFly
from flyenv.policies.braitenberg import BraitenbergPolicy
from flyenv.recording import run_episode
from flyenv.stimuli.odor import StaticOdorField


def test_controller_and_body_match_flygym_loop():
    """Same drive, same start: joint commands identical, positions within 0.05 mm."""
    phases = np.random.default_rng(5).uniform(0, 2 * np.pi, 6)
    sensors = [f"{leg}{seg}" for leg in LEGS for seg in CONTACT_SENSOR_SEGMENTS]
    fly = Fly(
        spawn_pos=(0, 0, 0.2),
        contact_sensor_placements=sensors,
        enable_olfaction=True,
        enable_adhesion=True,
    )
    ref = HybridTurningController(fly=fly, cameras=[], arena=OdorArena(), timestep=1e-4)
    ref.reset(seed=0, init_phases=phases.copy())
    ours = MujocoFly(OdorArena())
    ours.reset_pose(phases.copy())
    drives = [np.array([1.2, 0.6]), np.array([0.4, 1.3]), np.array([-0.3, 1.0])]
    for drive in drives:
        for _ in range(200):
            obs, _, _, _, info = ref.step(drive)
            ours.step_drive(drive, 1)
            np.testing.assert_allclose(ours.last_joint_targets, info["joints"], atol=1e-6)
            np.testing.assert_array_equal(ours.last_adhesion, info["adhesion"])
    np.testing.assert_allclose(ours.thorax_position, obs["fly"][0], atol=0.05)
    np.testing.assert_allclose(
        ours.odor_sensor_positions,
        ref.physics.bind(fly._antennae_sensors).sensordata.reshape(4, 3),
        atol=0.05,
    )


def test_odor_field_matches_flygym_arena():
    rng = np.random.default_rng(0)
    sources = rng.uniform(-20, 20, (3, 3))
    peaks = rng.uniform(0.5, 2.0, (3, 2))
    arena = OdorArena(odor_source=sources, peak_odor_intensity=peaks)
    field = StaticOdorField(sources, peaks)
    sensors = rng.uniform(-20, 20, (4, 3))
    np.testing.assert_allclose(field.intensity(sensors), arena.get_olfaction(sensors), rtol=1e-12)


def test_braitenberg_reaches_close_source():
    env = gym.make("flyenv/OdorTaxis-v0", time_limit_s=3.0)
    policy = BraitenbergPolicy(odor_channels=1)
    result = run_episode(
        env, policy, seed=0, options={"source_distance_mm": 7.0, "start_heading_rad": 0.8}
    )
    assert result.is_success, result
    assert result.termination_reason == "success"
    assert result.final_distance_mm < 2.0
    # Walking to the source is paid: progress + bonus.
    assert result.episode_return > 10.0


def test_record_video_wrapper_writes_mp4(tmp_path):
    env = gym.make(
        "flyenv/OdorTaxis-v0",
        render_mode="rgb_array",
        time_limit_s=0.1,
        render_width=160,
        render_height=128,
    )
    assert env.metadata["render_fps"] == 100
    env = RecordVideo(env, str(tmp_path), episode_trigger=lambda ep: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        done = term or trunc
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1
    # (list(reader) would ask len(), which is inf for ffmpeg streams)
    frames = [f for f in imageio.get_reader(videos[0], format="FFMPEG")]
    assert len(frames) >= 10
    assert frames[0].shape == (128, 160, 3)
    # Not a blank frame: the arena checkerboard and the fly give contrast.
    assert frames[-1].std() > 5
