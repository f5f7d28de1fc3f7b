"""The ``flyenv`` command: list environments, record agents, run the demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import flyenv  # noqa: F401  (registers the environments)
from flyenv.registration import ENVS
from flyenv.viz.brain_panel import raster_side_panel

DEFAULT_VIDEO_DIR = Path("videos")
DEMO_SOURCE_DISTANCE_MM = 20.0
DEMO_HEADING_RAD = 2.0


def _make(env_id: str, env_kwargs: dict, render: bool):
    import gymnasium as gym

    known = [e.id for e in ENVS]
    if env_id not in known:
        raise SystemExit(f"unknown environment {env_id!r}; `flyenv list` shows: {', '.join(known)}")
    return gym.make(env_id, render_mode="rgb_array" if render else None, **env_kwargs)


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for entry in ENVS:
        shapes = "?"
        if not args.no_shapes:
            env = _make(entry.id, {}, render=False)
            shapes = f"obs {env.observation_space.shape} act {env.action_space.shape}"
            env.close()
        rows.append((entry.id, shapes, entry.description))
    width = max(len(r[0]) for r in rows)
    swidth = max(len(r[1]) for r in rows)
    for env_id, shapes, desc in rows:
        print(f"{env_id:<{width}}  {shapes:<{swidth}}  {desc}")
    return 0


def _parse_kwargs(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"--env-kwargs is not valid JSON ({exc}); e.g. '{{\"time_limit_s\": 5}}'"
        ) from None
    if not isinstance(value, dict):
        raise SystemExit("--env-kwargs must be a JSON object, e.g. '{\"n_aversive_sources\": 1}'")
    return value


def _report(summaries, out: Path, elapsed: float) -> None:
    for s in summaries:
        status = (
            "reached the source"
            if s.is_success
            else f"ended: {s.termination_reason or 'time limit'}"
        )
        where = ""
        if s.path_mm:
            x, y = s.path_mm[-1]
            where = f", final position ({x:.1f}, {y:.1f}) mm"
        dist = f", distance {s.final_distance_mm:.1f} mm" if s.final_distance_mm is not None else ""
        print(
            f"  seed {s.seed}: {status} after {s.time_s:.2f} s{dist}{where}, return {s.episode_return:.1f}"
        )
    print(f"video: {out.resolve()}  ({elapsed:.0f} s wall)")


def cmd_record(args: argparse.Namespace) -> int:
    from flyenv.policies.loading import checkpoint_env_kwargs, load_policy
    from flyenv.recording import record_video

    env_kwargs = {**checkpoint_env_kwargs(args.agent), **_parse_kwargs(args.env_kwargs)}
    env = _make(args.env, env_kwargs, render=True)
    try:
        policy = load_policy(args.agent, env, seed=args.seed)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    out = (
        Path(args.out)
        if args.out
        else DEFAULT_VIDEO_DIR / f"{args.env.split('/')[-1]}_{Path(args.agent).stem}.mp4"
    )
    panel = raster_side_panel(policy, height=env.unwrapped.config.render_height)
    t0 = time.time()
    summaries = record_video(
        env,
        policy,
        out,
        episodes=args.episodes,
        seed=args.seed,
        fps=args.fps,
        label=Path(args.agent).stem,
        play_speed=args.play_speed,
        side_panel=panel,
    )
    env.close()
    _report(summaries, out, time.time() - t0)
    return 0


def best_available_agent() -> str:
    """The trained connectome brain when one is shipped, else the Braitenberg baseline."""
    shipped = Path(__file__).parent / "data" / "checkpoints" / "olfactory_brain_bptt.pt"
    return str(shipped) if shipped.exists() else "braitenberg"


def cmd_demo(args: argparse.Namespace) -> int:
    from flyenv.policies.loading import checkpoint_env_kwargs, load_policy
    from flyenv.recording import record_video

    agent = best_available_agent()
    env = _make(
        "flyenv/OdorTaxis-v0", {**checkpoint_env_kwargs(agent), "time_limit_s": 6.0}, render=True
    )
    policy = load_policy(agent, env, seed=args.seed)
    out = Path(args.out)
    panel = raster_side_panel(policy, height=env.unwrapped.config.render_height)
    print(
        f"flyenv demo: agent '{Path(agent).stem}' walks NeuroMechFly to an odor source "
        f"{DEMO_SOURCE_DISTANCE_MM:.0f} mm away, starting {np.rad2deg(DEMO_HEADING_RAD):.0f} deg off course"
    )
    t0 = time.time()
    summaries = record_video(
        env,
        policy,
        out,
        episodes=1,
        seed=args.seed,
        fps=args.fps,
        options={
            "source_distance_mm": DEMO_SOURCE_DISTANCE_MM,
            "start_heading_rad": DEMO_HEADING_RAD,
        },
        label=Path(agent).stem,
        play_speed=args.play_speed,
        side_panel=panel,
    )
    env.close()
    _report(summaries, out, time.time() - t0)
    return 0 if summaries[0].is_success else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    from flyenv.sweep import SweepSpecError, run_sweep

    command = "flyenv sweep " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["sweep"] else None
    try:
        summary = run_sweep(
            args.scenario,
            out=args.out,
            num_cpus=args.num_cpus,
            address=args.address,
            configs=args.configs,
            seeds=args.seeds,
            report_only=args.report_only,
            serial=args.serial,
            progress=not args.no_progress,
            command=command,
        )
    except SweepSpecError as exc:
        raise SystemExit(f"flyenv sweep: {exc}") from None
    out = Path(args.out) if args.out else None
    from flyenv.sweep.runner import DEFAULT_OUT_ROOT
    from flyenv.sweep.spec import load_sweep_spec

    out = out or DEFAULT_OUT_ROOT / load_sweep_spec(args.scenario).name
    print((out / "summary.md").read_text())
    n_failed = sum(e["n_failed"] for e in summary)
    if n_failed:
        print(f"{n_failed} cell(s) failed after one retry: see {out / 'cells.csv'}")
    return 1 if n_failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flyenv", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="every registered environment with its spaces")
    ls.add_argument("--no-shapes", action="store_true", help="skip building envs to read shapes")
    ls.set_defaults(func=cmd_list)

    rec = sub.add_parser("record", help="record an agent's episodes to mp4")
    rec.add_argument("--env", default="flyenv/OdorTaxis-v0", help="environment id")
    rec.add_argument(
        "--agent",
        default="braitenberg",
        help="braitenberg | cast_and_surge (PlumeTracking) | random | path to a checkpoint",
    )
    rec.add_argument("--episodes", type=int, default=1)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--fps", type=int, default=25, help="video frame rate (real time)")
    rec.add_argument(
        "--play-speed", type=float, default=1.0, help="1 = real time, 0.25 = slow motion"
    )
    rec.add_argument("--out", default=None, help="output .mp4 (default videos/<env>_<agent>.mp4)")
    rec.add_argument("--env-kwargs", default=None, help="JSON object of gym.make keyword arguments")
    rec.set_defaults(func=cmd_record)

    demo = sub.add_parser(
        "demo", help="the best available agent walks the fly to the odor; writes a video"
    )
    demo.add_argument("--out", default=str(DEFAULT_VIDEO_DIR / "demo_odor_taxis.mp4"))
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--fps", type=int, default=25)
    demo.add_argument("--play-speed", type=float, default=0.25, help="1 = real time")
    demo.set_defaults(func=cmd_demo)

    sw = sub.add_parser(
        "sweep",
        help="run a configs x seeds grid as Ray tasks; tables with 95 %% CIs over seeds",
        description="Run every unfinished cell of a sweep scenario (scenarios/sweeps/*.toml) "
        "as a Ray task, then write summary.{md,csv,json,png} and cells.csv. Finished cells "
        "are skipped; a failing or killed cell is retried once, then reported as failed.",
    )
    sw.add_argument("scenario", help="sweep scenario TOML with a [sweep] table")
    sw.add_argument("--out", default=None, help="output folder (default runs/sweeps/<name>)")
    sw.add_argument("--num-cpus", type=float, default=None, help="CPUs of the local Ray")
    sw.add_argument("--address", default=None, help="join this Ray cluster ('auto', host:port)")
    sw.add_argument("--configs", nargs="+", default=None, help="run only these rows")
    sw.add_argument("--seeds", nargs="+", type=int, default=None, help="run only these seeds")
    sw.add_argument("--report-only", action="store_true", help="only rebuild the tables")
    sw.add_argument("--serial", action="store_true", help="no Ray: cells one by one, here")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "episodes", 1) < 1:
        raise SystemExit("--episodes must be >= 1")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
