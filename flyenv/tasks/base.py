"""What every walking task is: settings, start draws and the per-step hooks a body-agnostic
environment calls.

A task is written once, batched over B flies in torch, and runs on any body that
follows ``flyenv.bodies.base.Body`` (the MuJoCo NeuroMechFly with B = 1 in float64, or
the kinematic twin with any B in float32). ``flyenv.envs.walking.WalkingEpisodes``
composes the two: it owns the step counter, the self-motion, the progress reward and
the order of termination reasons; the task supplies only what differs between tasks
(dm_control's ``Task``: ``initialize_episode``, ``get_observation``, ``get_reward``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from flyenv.bodies.base import Body

ODOR_OBS_MAX = 8.0
"""Upper bound of a log-compressed odor observation, log10(1 + I / I_threshold)."""
SELF_MOTION_OBS_MAX = 10.0
"""Bound of each self-motion value (10 mm/s units, rad/s)."""


@dataclass
class WalkingTaskConfig:
    """Settings every walking task shares. Distances in mm, times in s."""

    control_period_s: float = 0.01
    """Simulated time per agent step (the MuJoCo body runs it as physics steps)."""
    physics_timestep_s: float = 1e-4
    """MuJoCo physics step (the twin ignores it)."""
    time_limit_s: float = 10.0
    progress_reward_per_mm: float = 1.0
    success_bonus: float = 10.0
    failure_penalty: float = 10.0
    """Paid when the episode fails (the body flips, the physics diverges, the fly leaves the arena)."""
    spawn_height_mm: float = 0.2
    """Drop height at reset (MuJoCo body); the fly lands within the first few ms."""
    render_width: int = 640
    render_height: int = 480
    camera: str = "overhead"
    """"overhead": fixed above the scene (grows to keep the walk in view); "follow": above the fly."""

    def validate(self) -> None:
        """Tasks extend this with their own checks (and call it)."""
        steps = self.control_period_s / self.physics_timestep_s
        if self.control_period_s <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f"control_period_s={self.control_period_s} must be a positive multiple of "
                f"physics_timestep_s={self.physics_timestep_s}"
            )
        if self.time_limit_s < self.control_period_s:
            raise ValueError(f"time_limit_s={self.time_limit_s} is shorter than one agent step")
        if self.camera not in ("overhead", "follow"):
            raise ValueError(f"camera={self.camera!r}; use 'overhead' or 'follow'")
        if self.render_width <= 0 or self.render_height <= 0:
            raise ValueError(
                f"render size {self.render_width}x{self.render_height} must be positive"
            )

    @property
    def goal_radius_mm(self) -> float:
        """Distance to the goal that counts as reaching it (BPTT's goal bonus uses it)."""
        return float(self.success_radius_mm)

    @property
    def physics_steps_per_action(self) -> int:
        return int(round(self.control_period_s / self.physics_timestep_s))

    @property
    def max_episode_steps(self) -> int:
        return int(np.ceil(self.time_limit_s / self.control_period_s - 1e-9))


def make_config(config_cls, kwargs: dict[str, Any], env_name: str):
    """Build and validate a config dataclass from keywords, naming unknown ones."""
    known = {f.name for f in dataclasses.fields(config_cls) if not f.name.startswith("_")}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"{env_name} got unknown option(s) {unknown}; valid options: {sorted(known)}"
        )
    config = config_cls(**kwargs)
    config.validate()
    return config


ACTION_SPACE = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
"""Left and right descending drive, the same for every walking task and body."""


@dataclass
class Starts:
    """Start conditions of n episodes (numpy). Tasks subclass it for their own fields."""

    xy_mm: np.ndarray  # (n, 2) thorax start
    heading_rad: np.ndarray  # (n,)
    cpg_phases: np.ndarray  # (n, 6); used by the MuJoCo body only


def fix_start_options(
    starts: Starts, n: int, options: dict[str, Any], cfg: WalkingTaskConfig
) -> None:
    """Apply the ``reset(options=...)`` keys every task accepts: ``start_heading_rad``
    and ``init_phases`` (6,) (after the random draws, so a seed draws the same starts
    whatever is overridden)."""
    if options.get("start_heading_rad") is not None:
        starts.heading_rad = np.full(n, float(options["start_heading_rad"]))
    if options.get("init_phases") is not None:
        phases = np.asarray(options["init_phases"], dtype=np.float64)
        if phases.shape != (6,):
            raise ValueError(f"init_phases has shape {phases.shape}; give one phase per leg (6,)")
        starts.cpg_phases = np.broadcast_to(phases, (n, 6)).copy()


class WalkingTask:
    """A walking task for B flies. Subclasses set the class attributes and the hooks.

    Per-episode task state (e.g. source positions) lives in tensors of shape (B, ...)
    on ``device`` in ``dtype``; ``initialize_episode`` writes the rows of the flies
    that start a new episode. Every hook is differentiable with respect to the body
    state unless noted.
    """

    config_cls: ClassVar[type[WalkingTaskConfig]]
    name: ClassVar[str]
    """Short name used in error messages, e.g. "OdorTaxis"."""
    observations: ClassVar[tuple[str, ...]] = ("intensity",)
    """Values of the config's ``observation`` field this task supports."""
    termination_reasons: ClassVar[tuple[str, ...]] = ("success",)
    """What ``get_termination`` can report, highest priority first."""
    success_reason: ClassVar[str] = "success"
    """The reason that pays ``success_bonus`` and sets ``info["is_success"]``."""
    failure_reasons: ClassVar[tuple[str, ...]] = ()
    """The subset of ``termination_reasons`` that pays ``failure_penalty``."""

    def __init__(
        self,
        config: WalkingTaskConfig,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.config = config
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype

    def _tensor(self, value: Any) -> torch.Tensor:
        return torch.as_tensor(value, device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ episode
    def observation_space(self) -> spaces.Box:
        """The whole observation: the task's block followed by the 3 self-motion values."""
        raise NotImplementedError

    def sample_starts(
        self, rng: np.random.Generator, n: int, options: dict[str, Any] | None
    ) -> Starts:
        """Draw n starts in a fixed order (the same seed gives the same starts on every body)."""
        raise NotImplementedError

    def initialize_episode(self, starts: Starts, rows: torch.Tensor) -> None:
        """Set the task state of the flies ``rows`` (long tensor) from ``starts``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ step
    def get_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor:
        """(B, D - 3) task part of the observation (the self-motion follows it)."""
        raise NotImplementedError

    def get_extra_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor | None:
        """(B, E) columns that follow the self-motion (e.g. a reinforcement signal), or None."""
        return None

    def after_step(self, body: Body, time_s: torch.Tensor) -> torch.Tensor | None:
        """Runs after the body moved and before anything is read: the place for task
        events inside an episode (e.g. sources that appear). Returns a (B,) bool mask of
        the flies whose goal moved (their progress reward restarts), or None."""
        return None

    def goal_distance(self, body: Body) -> torch.Tensor:
        """(B,) thorax-to-goal distance in mm; the progress reward is its decrease."""
        raise NotImplementedError

    def get_reward_terms(self, body: Body) -> dict[str, torch.Tensor]:
        """(B,) reward terms besides progress, success bonus and failure penalty."""
        return {}

    def get_termination(self, body: Body, distance: torch.Tensor) -> dict[str, torch.Tensor]:
        """{reason: (B,) bool} for each of ``termination_reasons``, in priority order.

        Masks may overlap; the episode reports the first true reason.
        """
        return {"success": distance.detach() < self.config.success_radius_mm}

    def get_info(self, body: Body, time_s: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-fly tensors for ``info`` (e.g. the source position), (B, ...)."""
        return {}

    # ------------------------------------------------------------------ rendering
    def markers(self) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        """(n, 2) placeholder positions and RGBA colours of the source markers (MuJoCo arena)."""
        return np.zeros((0, 2)), []

    def marker_positions(self, index: int) -> np.ndarray:
        """(n, 2) current positions of the markers of fly ``index``."""
        return np.zeros((0, 2))

    def arena_size_mm(self) -> tuple[float, float]:
        return (300.0, 300.0)

    def view_points(self, index: int, start_xy: np.ndarray) -> np.ndarray:
        """(n, 2) points the overhead view must contain."""
        return np.concatenate([start_xy[None], self.marker_positions(index)])

    def discs(self, index: int) -> list[tuple[np.ndarray, float, tuple[float, ...]]]:
        """Translucent floor discs (xy, radius_mm, rgba), e.g. the goal region."""
        return []

    def overlay(
        self,
        frame: np.ndarray,
        ground_xy: Callable[[], np.ndarray],
        fly_xy: np.ndarray,
        time_s: float,
    ) -> np.ndarray:
        """Draw task layers (e.g. a plume) over a MuJoCo frame; ``ground_xy()`` gives the
        floor point (x, y) under each pixel (computed only if asked for)."""
        return frame

    def _topdown_renderer(self, renderer_cls: type, width: int, height: int, **kwargs: Any):
        """The task's cached top-down renderer of ``renderer_cls`` at this size."""
        r = getattr(self, "_topdown", None)
        if r is None or type(r) is not renderer_cls or (r.width, r.height) != (width, height):
            self._topdown = r = renderer_cls(width, height, **kwargs)
        return r

    def _odor_map(self, index, trail_xy, heading_rad, width, height, goal_mm, other_mm):
        """Top-down odor map of tasks whose state has ``peaks`` and ``threshold`` tensors
        and point sources at ``marker_positions``."""
        from flyenv.viz.topdown import TopDownOdorRenderer

        renderer = self._topdown_renderer(TopDownOdorRenderer, width, height)
        return renderer.render(
            sources_xy=self.marker_positions(index),
            peaks=self.peaks.cpu().numpy(),
            diffusion=self.config.diffusion,
            threshold=self.threshold.cpu().numpy(),
            trail_xy=trail_xy,
            heading_rad=heading_rad,
            success_radius_mm=goal_mm,
            aversive_radius_mm=other_mm,
        )

    def render_topdown(
        self,
        index: int,
        trail_xy: np.ndarray,
        heading_rad: float,
        time_s: float,
        width: int,
        height: int,
    ) -> np.ndarray:
        """(H, W, 3) uint8 top-down picture for bodies without a renderer (the twin)."""
        raise NotImplementedError
