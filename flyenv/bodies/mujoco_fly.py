"""NeuroMechFly body in a flygym arena, stepped with raw MuJoCo calls.

The MuJoCo model is built by flygym 1.2.1 (``Fly`` + arena through
``SingleFlySimulation``), so body, contacts, actuators, adhesion and sensors are
exactly flygym's. Only the loop differs: flygym assembles a full observation
dictionary twice per physics step (joint sensors, Euler angles through scipy,
a Python loop over contacts for adhesion); here each physics step reads the few
sensor values the hybrid controller needs straight out of ``mjData`` and the rest
is computed once per control period. The stepping call sequence is dm_control's
(``mj_step2`` then ``mj_step1``), so trajectories match flygym's loop.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flygym import Fly  # noqa: E402
from flygym.arena import BaseArena  # noqa: E402
from flygym.simulation import SingleFlySimulation  # noqa: E402

from flyenv.bodies.hybrid_turning import (  # noqa: E402
    LEGS,
    STUMBLE_SEGMENTS,
    HybridTurningCPG,
    HybridTurningParams,
    action_to_drive,
)

CONTACT_SENSOR_SEGMENTS: tuple[str, ...] = (
    "Tibia",
    "Tarsus1",
    "Tarsus2",
    "Tarsus3",
    "Tarsus4",
    "Tarsus5",
)
ODOR_SENSOR_NAMES: tuple[str, ...] = ("LPalp", "RPalp", "LAntenna", "RAntenna")
"""Order of flygym's four odor sensors (maxillary palps, then antennae)."""

_UNSTABLE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)


class PhysicsUnstableError(RuntimeError):
    """MuJoCo reported a diverging state (bad qpos/qvel/qacc) and reset its data."""


@dataclass
class MujocoFlyConfig:
    """Body and physics settings."""

    timestep_s: float = 1e-4
    spawn_height_mm: float = 0.2
    """Drop height at reset; the fly lands within the first few ms."""
    enable_adhesion: bool = True


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


class MujocoFly:
    """One NeuroMechFly with the hybrid turning controller in a flygym arena.

    The arena owns the world (floor, odor markers, cameras); this class owns the
    body and its controller. Two layers:

    * the ``flyenv.bodies.base.Body`` interface every walking task uses (B = 1,
      float64 tensors): ``reset(xy, heading, init_phases=...)``, ``step(actions, dt_s)``
      with actions in [-1, 1], ``xy``, ``heading``, ``sensor_positions()``, ``failure()``;
    * the raw MuJoCo layer (numpy): ``reset_pose``, ``step_drive(drive, n)`` in
      flygym's drive units, ``thorax_position``, ``heading_rad``, ``odor_sensor_positions``.

    ``setup_world(data)`` runs inside every reset before kinematics are recomputed:
    the place to move mocap bodies such as odor-source markers.
    """

    num_envs = 1
    failure_reasons: tuple[str, ...] = ("flipped", "physics_unstable")

    def __init__(
        self,
        arena: BaseArena,
        config: MujocoFlyConfig | None = None,
        controller_params: HybridTurningParams | None = None,
        setup_world: Callable[[mujoco.MjData], None] | None = None,
    ) -> None:
        self.setup_world = setup_world
        self._failure = 0
        self.config = config or MujocoFlyConfig()
        cfg = self.config
        contact_sensors = [f"{leg}{seg}" for leg in LEGS for seg in CONTACT_SENSOR_SEGMENTS]
        self.fly = Fly(
            spawn_pos=(0.0, 0.0, cfg.spawn_height_mm),
            contact_sensor_placements=contact_sensors,
            enable_olfaction=True,
            enable_adhesion=cfg.enable_adhesion,
            draw_adhesion=False,
        )
        self.arena = arena
        self.sim = SingleFlySimulation(
            fly=self.fly, cameras=[], arena=arena, timestep=cfg.timestep_s
        )
        self.physics = self.sim.physics
        self.model: mujoco.MjModel = self.physics.model.ptr
        self.data: mujoco.MjData = self.physics.data.ptr
        params = controller_params or HybridTurningParams(timestep_s=cfg.timestep_s)
        if params.timestep_s != cfg.timestep_s:
            raise ValueError(
                f"controller timestep {params.timestep_s} s differs from physics timestep "
                f"{cfg.timestep_s} s; build HybridTurningParams(timestep_s={cfg.timestep_s})"
            )
        self.controller = HybridTurningCPG(params.scaled_to_timestep())
        self._index_model()

    # ------------------------------------------------------------------ indexing
    def _sensor_adr(self, sensor) -> int:
        sid = int(self.physics.bind(sensor).element_id)
        return int(self.model.sensor_adr[sid])

    def _index_model(self) -> None:
        fly, physics, model = self.fly, self.physics, self.model
        body_sensors = fly._body_sensors
        self._thorax_pos_adr = self._sensor_adr(body_sensors[0])
        self._heading_vec_adr = self._sensor_adr(body_sensors[4])
        self._up_vec_adr = self._sensor_adr(body_sensors[6])
        ee_adr = [self._sensor_adr(s) for s in fly._end_effector_sensors]
        self._tip_z_idx = np.array(ee_adr) + 2
        odor_adr = [self._sensor_adr(s) for s in fly._antennae_sensors]
        self._odor_sensor_idx = np.array(odor_adr)[:, None] + np.arange(3)[None, :]
        name_to_body = {
            name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            for name in fly.contact_sensor_placements
        }
        self._stumble_body_ids = np.array(
            [[name_to_body[f"{fly.name}/{leg}{seg}"] for seg in STUMBLE_SEGMENTS] for leg in LEGS]
        )
        self._joint_ctrl_ids = np.asarray(physics.bind(fly.actuators).element_id)
        self._adhesion_ctrl_ids = np.asarray(physics.bind(fly.adhesion_actuators).element_id)
        free = np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
        if len(free) != 1:
            raise RuntimeError(f"expected one free joint (the fly), found {len(free)}")
        self._free_qpos = int(model.jnt_qposadr[free[0]])
        self._free_qvel = int(model.jnt_dofadr[free[0]])

    # ------------------------------------------------------------------ Body interface
    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64

    @property
    def xy(self) -> torch.Tensor:
        return torch.from_numpy(self.thorax_position[None, :2])

    @property
    def heading(self) -> torch.Tensor:
        return torch.tensor([self.heading_rad], dtype=torch.float64)

    def sensor_positions(self) -> torch.Tensor:
        return torch.from_numpy(self.odor_sensor_positions[None])

    def failure(self) -> torch.Tensor:
        return torch.tensor([self._failure])

    def seed(self, seed: int) -> None:
        """Nothing to seed: the MuJoCo fly is deterministic given its start."""

    def reset(
        self,
        xy: torch.Tensor,
        heading: torch.Tensor,
        mask: torch.Tensor | None = None,
        init_phases: np.ndarray | None = None,
    ) -> None:
        """Drop the fly at ``xy`` (1, 2) facing ``heading`` (1,) with CPG phases (1, 6)."""
        if mask is not None and not bool(torch.as_tensor(mask).all()):
            return
        if init_phases is None:
            raise ValueError("the MuJoCo fly needs init_phases (1, 6) for its CPG at reset")
        xy_np = np.asarray(torch.as_tensor(xy, dtype=torch.float64)).reshape(2)
        self.reset_pose(
            np.asarray(init_phases, dtype=np.float64).reshape(6),
            heading_rad=float(torch.as_tensor(heading).reshape(())),
            position_xy_mm=(float(xy_np[0]), float(xy_np[1])),
        )

    def step(self, actions: torch.Tensor | np.ndarray, dt_s: float) -> None:
        """Run ``dt_s`` of physics under ``actions`` (1, 2) or (2,) in [-1, 1].

        Float64 throughout: rounding the drive to float32 alone moves the end of a 1 s
        walk by up to ~0.5 mm (leg contacts amplify tiny differences).
        """
        n = int(round(dt_s / self.config.timestep_s))
        if n < 1 or abs(n * self.config.timestep_s - dt_s) > 1e-9:
            raise ValueError(
                f"dt_s={dt_s} must be a positive multiple of the physics timestep "
                f"{self.config.timestep_s} s"
            )
        action = np.asarray(actions, dtype=np.float64).reshape(2)
        self._failure = 0
        try:
            self.step_drive(action_to_drive(action), n)
        except PhysicsUnstableError:
            self._failure = 2
            return
        if not self.is_finite():
            self._failure = 2
        elif self.is_flipped:
            self._failure = 1

    # ------------------------------------------------------------------ raw MuJoCo layer
    def reset_pose(
        self,
        init_phases: np.ndarray,
        heading_rad: float = 0.0,
        position_xy_mm: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Reset physics to flygym's initial pose, rotated to ``heading_rad``."""
        physics = self.physics
        with physics.reset_context():
            self.fly.set_pose(self.fly.init_pose, physics)
            q = self.data.qpos
            adr = self._free_qpos
            q[adr] += position_xy_mm[0]
            q[adr + 1] += position_xy_mm[1]
            yaw = np.array([np.cos(heading_rad / 2), 0.0, 0.0, np.sin(heading_rad / 2)])
            q[adr + 3 : adr + 7] = _quat_mul(yaw, q[adr + 3 : adr + 7])
            if self.setup_world is not None:
                self.setup_world(self.data)
        self.sim.curr_time = 0.0
        self.controller.reset(init_phases)
        self._failure = 0
        self._warnings_seen = self._warning_count()

    def _warning_count(self) -> int:
        return int(sum(self.data.warning[w].number for w in _UNSTABLE_WARNINGS))

    def step_drive(self, drive: np.ndarray, n_steps: int) -> None:
        """Advance ``n_steps`` physics steps under the drive (flygym's range).

        Raises:
            PhysicsUnstableError: if MuJoCo flagged a diverging state.
        """
        m, d = self.model, self.data
        sd = d.sensordata
        ctrl = d.ctrl
        cfrc = d.cfrc_ext
        controller = self.controller
        drive = np.asarray(drive, dtype=np.float64)
        joint_ids, adh_ids = self._joint_ctrl_ids, self._adhesion_ctrl_ids
        tip_idx, stumble_ids = self._tip_z_idx, self._stumble_body_ids
        z_adr, h_adr = self._thorax_pos_adr + 2, self._heading_vec_adr
        for _ in range(n_steps):
            # flygym reads these from its float32 observation; do the same.
            tip_depth = np.float32(sd[z_adr]) - sd[tip_idx].astype(np.float32)
            heading = sd[h_adr : h_adr + 3].astype(np.float32)
            forces = cfrc[stumble_ids, 3:].astype(np.float32)  # (6, 3, 3)
            angles, adhesion = controller.step(drive, tip_depth, forces @ heading)
            self.last_joint_targets, self.last_adhesion = angles, adhesion
            ctrl[joint_ids] = angles
            ctrl[adh_ids] = adhesion
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)
        self.sim.curr_time += n_steps * self.config.timestep_s
        count = self._warning_count()
        if count > self._warnings_seen:
            self._warnings_seen = count
            raise PhysicsUnstableError(
                "MuJoCo flagged an unstable state (bad qpos/qvel/qacc); the episode must end"
            )

    # ------------------------------------------------------------------ state
    @property
    def time_s(self) -> float:
        return self.sim.curr_time

    @property
    def thorax_position(self) -> np.ndarray:
        """(x, y, z) of the thorax in mm."""
        a = self._thorax_pos_adr
        return self.data.sensordata[a : a + 3].copy()

    @property
    def heading_vector(self) -> np.ndarray:
        a = self._heading_vec_adr
        return self.data.sensordata[a : a + 3].copy()

    @property
    def heading_rad(self) -> float:
        v = self.heading_vector
        return float(np.arctan2(v[1], v[0]))

    @property
    def is_flipped(self) -> bool:
        """flygym's flip criterion: the body's up axis points down."""
        return bool(self.data.sensordata[self._up_vec_adr + 2] < 0)

    @property
    def odor_sensor_positions(self) -> np.ndarray:
        """(4, 3) positions of the L/R palps and L/R antennae in mm."""
        return self.data.sensordata[self._odor_sensor_idx].copy()

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.data.qpos).all() and np.isfinite(self.data.qvel).all())
