"""Roll out a policy in an environment and write an mp4 of what the fly did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from flyenv.io import atomic_write
from flyenv.policies.loading import Policy


@dataclass
class EpisodeSummary:
    """What happened in one episode."""

    seed: int
    steps: int
    episode_return: float
    time_s: float
    is_success: bool
    termination_reason: str | None
    final_distance_mm: float | None
    path_mm: list[list[float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("path_mm")
        return d


def _caption(frame: np.ndarray, text: str) -> np.ndarray:
    import cv2

    frame = np.ascontiguousarray(frame)
    cv2.putText(
        frame, text, (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA
    )
    return frame


def run_episode(
    env: gym.Env,
    policy: Policy,
    seed: int,
    options: dict | None = None,
    on_step=None,
) -> EpisodeSummary:
    """One episode; ``on_step(env, info, step)`` is called after reset and every step.

    A policy with a ``reset()`` method (stateful, e.g. a spiking brain) is reset first.
    """
    if hasattr(policy, "reset"):
        policy.reset()
    obs, info = env.reset(seed=seed, options=options)
    if on_step is not None:
        on_step(env, info, 0)
    total, steps = 0.0, 0
    path = []
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += float(reward)
        steps += 1
        if "position_mm" in info:
            path.append([float(v) for v in info["position_mm"]])
        if on_step is not None:
            on_step(env, info, steps)
        if terminated or truncated:
            break
    return EpisodeSummary(
        seed=seed,
        steps=steps,
        episode_return=total,
        time_s=float(info.get("time_s", steps)),
        is_success=bool(info.get("is_success", False)),
        termination_reason=info.get("termination_reason"),
        final_distance_mm=info.get("distance_mm"),
        path_mm=path,
    )


def record_video(
    env: gym.Env,
    policy: Policy,
    out: str | Path,
    episodes: int = 1,
    seed: int = 0,
    fps: int = 25,
    options: dict | None = None,
    label: str = "",
    progress: bool = True,
    play_speed: float = 1.0,
    side_panel=None,
) -> list[EpisodeSummary]:
    """Run ``episodes`` episodes and write them, one after the other, to ``out`` (mp4).

    Frames are rendered every ``render_fps * play_speed / fps`` steps, so the video plays
    at ``play_speed`` times real time (0.25: four times slower). ``side_panel()``, if
    given, returns an image drawn to the right of every frame (e.g. brain rasters).
    The file appears only once complete (written under a temporary name first).
    """
    if env.render_mode != "rgb_array":
        raise ValueError("record_video needs an env made with render_mode='rgb_array'")
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"--out {out}: videos are written as .mp4; give a path ending in .mp4")
    if play_speed <= 0:
        raise ValueError(f"play_speed must be > 0, got {play_speed}")
    env_fps = float(env.metadata.get("render_fps", fps))
    every = max(1, int(round(env_fps * play_speed / fps)))
    video_fps = env_fps * play_speed / every
    max_steps = getattr(getattr(env.unwrapped, "config", None), "max_episode_steps", None)
    bar = tqdm(
        total=(max_steps * episodes) if max_steps else None,
        desc=f"recording {out.name}",
        unit="step",
        disable=not progress,
    )
    summaries: list[EpisodeSummary] = []

    def write(tmp: Path) -> None:
        writer = imageio.get_writer(
            tmp, fps=video_fps, codec="libx264", quality=7, macro_block_size=8
        )
        try:
            for ep in range(episodes):

                def on_step(env_, info, step, ep=ep):
                    bar.update(1 if step else 0)
                    if step % every:
                        return
                    text = f"{label} ep {ep + 1}/{episodes}  t={info.get('time_s', 0):.2f} s"
                    if info.get("distance_mm") is not None:
                        text += f"  d={info['distance_mm']:.1f} mm"
                    if info.get("is_success"):
                        text += "  reached!"
                    frame = _caption(env_.render(), text.strip())
                    if side_panel is not None:
                        panel = side_panel()
                        if panel.shape[0] != frame.shape[0]:
                            import cv2

                            w = int(round(panel.shape[1] * frame.shape[0] / panel.shape[0]))
                            panel = cv2.resize(panel, (w, frame.shape[0]))
                        frame = np.concatenate([frame, panel], axis=1)
                    writer.append_data(frame)

                summaries.append(run_episode(env, policy, seed + ep, options, on_step))
        finally:
            writer.close()

    try:
        atomic_write(out, write)
    finally:
        bar.close()
    return summaries
