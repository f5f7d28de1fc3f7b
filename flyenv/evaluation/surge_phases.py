"""Where does a plume agent gain or lose time against cast and surge? The turn into the
wind, then the walk up the plume, start by start.

A diagnostic for the paired time comparison (``flyenv.evaluation.paired_time_cell``):
when an agent is slower than cast and surge on the median start, is it slower to turn
into the wind or slower after it faces it? Both agents run on the same twin starts
(``flyenv.rl.evaluation.evaluate_twin``, the trained agent on the keywords saved in its
zip, cast and surge on the intensity observation). Each episode is split at the first
step the fly heads within ``face_tolerance_deg`` of upwind (the local wind, world frame;
on the plume's starts upwind is toward the source):

* ``time_to_face_s``: the turn (and any search before it);
* ``after_face_s``: the rest of the episode;
* after facing: the mean walking speed (``speed_mm_s``, thorax displacement per control
  step), the mean absolute heading error from upwind (``heading_error_deg``), and the
  share of steps with one side's drive below 0 (``reversing_share``: a side walking
  backward, as in a turn on the spot).

Reported on the starts both agents solve: each agent's means and the medians of the
start-by-start differences (agent - cast and surge), over all of them and over the starts
cast and surge solves within ``straight_s`` (its straight surges, where a faster walk is
all that can win time).

    python -m flyenv.evaluation.surge_phases runs/.../best_model.zip --starts 100 --start-seed 123
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flyenv.rl import evaluation as ev

PHASE_METRICS = ("time_to_face_s", "after_face_s", "speed_mm_s", "heading_error_deg")
"""Per-start metrics whose agent - cast and surge differences are reported."""


@dataclass
class TraceRecorder:
    """An ``evaluate_twin`` ``on_step`` hook keeping, per step and fly, the actions, the
    heading error from upwind (rad) and the thorax position (mm) of the first episode."""

    actions: list[np.ndarray] = field(default_factory=list)
    heading_error_rad: list[np.ndarray] = field(default_factory=list)
    position_mm: list[np.ndarray] = field(default_factory=list)
    active: list[np.ndarray] = field(default_factory=list)

    def __call__(self, actions: np.ndarray, info: dict, active: np.ndarray, ended: np.ndarray):
        def last(key: str) -> np.ndarray:  # the ended flies' values are in final_info
            now = np.asarray(info[key], float)
            if ended.any():
                final = np.asarray(info["final_info"][key], float)
                now = np.where(ended.reshape((-1,) + (1,) * (now.ndim - 1)), final, now)
            return now

        wind, heading = last("wind_mm_s"), last("heading_rad")
        upwind = np.arctan2(-wind[:, 1], -wind[:, 0])
        self.heading_error_rad.append(np.angle(np.exp(1j * (upwind - heading))))
        self.actions.append(np.asarray(actions, float))
        self.position_mm.append(last("position_mm"))
        self.active.append(np.asarray(active, bool).copy())


def phase_metrics(
    trace: TraceRecorder, dt_s: float, face_tolerance_deg: float
) -> dict[str, np.ndarray]:
    """Per-start phase metrics (module docstring) of one recorded evaluation; NaN where a
    fly never faced upwind (or has no step after it)."""
    act = np.stack(trace.actions)  # (T, n, 2)
    err = np.abs(np.stack(trace.heading_error_rad))  # (T, n)
    pos = np.stack(trace.position_mm)  # (T, n, 2), after each step
    live = np.stack(trace.active)  # (T, n)
    # speed over step t (t >= 1; the steps after facing never include step 0)
    step_speed = np.linalg.norm(np.diff(pos, axis=0, prepend=np.nan), axis=2) / dt_s
    facing = (err < np.deg2rad(face_tolerance_deg)) & live
    n = err.shape[1]
    out = {k: np.full(n, np.nan) for k in (*PHASE_METRICS, "reversing_share")}
    for i in range(n):
        steps = np.flatnonzero(live[:, i])
        if not facing[:, i].any():
            continue
        first = int(np.argmax(facing[:, i]))
        after = steps[steps >= first]
        out["time_to_face_s"][i] = (first + 1) * dt_s  # the step that ends facing counts
        out["after_face_s"][i] = (len(steps) - first - 1) * dt_s
        if len(after) > 1:
            rest = after[1:]
            out["speed_mm_s"][i] = step_speed[rest, i].mean()
            out["heading_error_deg"][i] = np.rad2deg(err[rest, i]).mean()
            out["reversing_share"][i] = (act[rest, i].min(axis=1) < 0).mean()
    return out


def run_traced(make_batch_policy, env_id: str, env_kwargs: dict, starts: int, start_seed: int):
    """``evaluate_twin`` with a ``TraceRecorder``: (EvalResult, recorder)."""
    recorder = TraceRecorder()
    result = ev.evaluate_twin(
        make_batch_policy, env_id, env_kwargs, starts, start_seed, on_step=recorder
    )
    return result, recorder


def surge_phases(
    agent: str,
    starts: int = 100,
    start_seed: int = 123,
    face_tolerance_deg: float = 20.0,
    straight_s: float = 2.6,
    env_id: str = "flyenv/PlumeTracking-kinematic-v0",
) -> dict[str, Any]:
    """The phase comparison of one SB3 zip against cast and surge (module docstring)."""
    from flyenv.evaluation.paired_time_cell import OBSERVATION_KEYS, env_timing
    from flyenv.evaluation.plume_baselines import make_scripted
    from flyenv.policies.loading import checkpoint_env_kwargs, sb3_algorithm

    if starts < 1 or not 0 < face_tolerance_deg < 180 or straight_s <= 0:
        raise ValueError(
            f"need starts >= 1, 0 < face_tolerance_deg < 180 and straight_s > 0 (got "
            f"{starts}, {face_tolerance_deg}, {straight_s})"
        )
    agent_kwargs = checkpoint_env_kwargs(agent)
    scripted_kwargs = {k: v for k, v in agent_kwargs.items() if k not in OBSERVATION_KEYS}
    period_s, _ = env_timing(env_id, scripted_kwargs)
    model = sb3_algorithm(agent).load(agent, device="cpu")
    rows = {}
    for who, factory, kwargs in (
        ("agent", ev.sb3_policy_factories(model)[0], agent_kwargs),
        ("scripted", lambda _: make_scripted("cast_and_surge", None, 0, period_s), scripted_kwargs),
    ):
        result, trace = run_traced(factory, env_id, kwargs, starts, start_seed)
        rows[who] = (result, phase_metrics(trace, period_s, face_tolerance_deg))
    (a_res, a), (s_res, s) = rows["agent"], rows["scripted"]
    both = np.asarray(a_res.successes, bool) & np.asarray(s_res.successes, bool)
    a_t, s_t = np.asarray(a_res.times_s), np.asarray(s_res.times_s)
    subsets = {"both_solve": both, "straight": both & (s_t <= straight_s)}
    out: dict[str, Any] = {
        "agent": agent,
        "starts": starts,
        "start_seed": start_seed,
        "face_tolerance_deg": face_tolerance_deg,
        "straight_s": straight_s,
        "agent_success": a_res.success_rate,
        "scripted_success": s_res.success_rate,
    }
    for name, sel in subsets.items():
        row: dict[str, Any] = {"n": int(sel.sum())}
        if sel.any():
            row["median_time_difference_s"] = float(np.median(a_t[sel] - s_t[sel]))
            for key in (*PHASE_METRICS, "reversing_share"):
                row[f"agent_{key}"] = float(np.nanmean(a[key][sel]))
                row[f"scripted_{key}"] = float(np.nanmean(s[key][sel]))
            for key in PHASE_METRICS:
                d = (a[key] - s[key])[sel]
                row[f"median_{key}_difference"] = (
                    float(np.nanmedian(d)) if np.isfinite(d).any() else None
                )
        out[name] = row
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", help="an SB3 zip of a PlumeTracking agent")
    parser.add_argument("--starts", type=int, default=100)
    parser.add_argument("--start-seed", type=int, default=123, help="never a reporting stream")
    parser.add_argument("--face-tolerance-deg", type=float, default=20.0)
    parser.add_argument("--straight-s", type=float, default=2.6)
    args = parser.parse_args(argv)
    out = surge_phases(
        args.agent, args.starts, args.start_seed, args.face_tolerance_deg, args.straight_s
    )
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
