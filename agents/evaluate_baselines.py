"""The README's baseline table: every odor-taxis agent on the same starts, twin and MuJoCo.

Rows: the scripted Braitenberg agent, the untrained spiking brain (the SB3 spiking
policy at step 0: the connectome's wiring alone), the shipped BPTT-trained brain, and
every SB3 run directory given (``agents/ppo_odor_taxis.py`` / ``agents/sac_odor_taxis.py`` /
``agents/recurrent_ppo.py`` outputs: their ``best_model.zip`` and ``results.json``; a
recurrent model carries its state through each episode). Columns: success over 50
twin starts and over ``--mujoco-starts`` MuJoCo starts (the same seeds for every
agent), mean time to source of the successful episodes, and, for trained agents, the
timesteps and wall time to the first evaluation at >= 80% held-out success.

    python agents/evaluate_baselines.py --runs runs/ppo/OdorTaxis_spiking_seed0 --mujoco-starts 10

Flags (``--help``): the fields of ``Args`` below, dashed; ``--scenario`` reads the same
fields from a TOML file (defaults < scenario < flags).

Prints a markdown table and writes it (with every number) to --out (JSON) and
--out with .md. A run whose results.json already holds the twin/MuJoCo evaluation
with the same seeds and start count is not evaluated again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from flyenv.config import JsonDict, cli
from flyenv.io import atomic_write_json
from flyenv.registration import mujoco_id
from flyenv.rl import evaluation as ev
from flyenv.rl.sb3_training import SPIKING_ENV_KWARGS, TEST_SEED

TWIN_SEED = TEST_SEED  # the agents' final evaluation stream
MUJOCO_SEED = 10_000
BPTT_CHECKPOINT = "flyenv/data/checkpoints/olfactory_brain_bptt.pt"


@dataclass
class Args:
    scenario: str | None = None
    """TOML of these fields; explicit flags override it."""
    runs: list[str] = field(default_factory=list)
    """SB3 agent run directories (agents/ppo_odor_taxis.py, agents/sac_odor_taxis.py)."""
    twin_starts: int = 50
    """Twin starts per agent (seed stream TEST_SEED)."""
    mujoco_starts: int = 10
    """MuJoCo starts per agent (0: twin only)."""
    mujoco_min_twin: float = 0.5
    """Skip MuJoCo for runs below this twin success fraction (failed episodes cost the
    full 10 s of slow physics each); their MuJoCo cells read 'not run'."""
    skip: list[Literal["braitenberg", "bptt", "untrained"]] = field(default_factory=list)
    """Rows to leave out."""
    untrained_brain_config: JsonDict = field(default_factory=dict)
    """OlfactoryBrainConfig overrides for the untrained row, e.g.
    '{"bilateral_contrast": 0.8}' (the weak-contrast PPO scenario's brain)."""
    out: str = "runs/baselines/odor_taxis_table.json"
    """JSON table (the markdown table goes beside it, .md)."""
    threads: int = 1
    """Torch threads."""
    curves_png: str | None = None
    """Also plot the runs' learning curves here."""


def parse_args(argv: list[str] | None = None) -> Args:
    return cli(Args, argv, description=__doc__, agent="evaluate_baselines")


def _orn_kwargs() -> dict:
    return {**SPIKING_ENV_KWARGS, "odor_names": tuple(SPIKING_ENV_KWARGS["odor_names"])}


def _evaluate(name, batch_factory, single_factory, kwargs, args, twin_id, extra=None) -> dict:
    row = {"name": name, **(extra or {})}
    twin = ev.evaluate_twin(batch_factory, twin_id, kwargs, args.twin_starts, TWIN_SEED)
    row["twin"] = twin.as_dict()
    print(f"{name}: twin {twin.success_rate:.0%}", flush=True)
    if args.mujoco_starts > 0 and single_factory is not None:
        muj = ev.evaluate_mujoco(
            single_factory,
            mujoco_id(twin_id),
            kwargs,
            args.mujoco_starts,
            MUJOCO_SEED,
        )
        row["mujoco"] = muj.as_dict()
        print(f"{name}: MuJoCo {muj.success_rate:.0%} of {muj.starts}", flush=True)
    return row


def braitenberg_row(args) -> dict:
    from flyenv.policies.braitenberg import BraitenbergPolicy

    def batch(n):
        pol = BraitenbergPolicy(1)
        return lambda obs: np.stack([pol(o) for o in obs])

    return _evaluate(
        "Braitenberg (scripted)",
        batch,
        lambda: BraitenbergPolicy(1),
        {},
        args,
        "flyenv/OdorTaxis-kinematic-v0",
        {"train": "none"},
    )


def bptt_row(args) -> dict:
    from flyenv.policies.loading import build_brain_from_checkpoint
    from flyenv.policies.torch_policy import StatefulTorchPolicy
    from flyenv.training.checkpoint import load_checkpoint

    module = build_brain_from_checkpoint(BPTT_CHECKPOINT)
    ck = load_checkpoint(BPTT_CHECKPOINT)

    def batch(n):
        state = [module.init_state(n)]

        @torch.no_grad()
        def act(obs):
            a, state[0], _ = module.step(torch.as_tensor(obs), state[0])
            return a.numpy()

        return act

    cfg = ck["config"]
    steps = int(round(cfg["episode_s"] / 0.01))
    first = next((e for e in ck["evaluations"] if e["success_rate"] >= 0.8), None)
    extra = {
        "train": f"BPTT, {ck['episode']} of {cfg['num_episodes']} episodes (best)",
        "train_wall_s": ck["evaluation"]["train_wall_time_s"],
        "to_80_percent": None
        if first is None
        else {"timesteps": first["episode"] * cfg["batch_size"] * steps, "wall_s": None},
        "command": ck.get("command"),
    }
    return _evaluate(
        "BPTT spiking brain (shipped)",
        batch,
        lambda: StatefulTorchPolicy(module),
        _orn_kwargs(),
        args,
        "flyenv/OdorTaxis-kinematic-v0",
        extra,
    )


def untrained_row(args) -> dict:
    from flyenv.rl.spiking_policy import SpikingActor

    overrides = args.untrained_brain_config
    actor = SpikingActor(113, overrides)
    label = "Spiking brain, untrained (SB3 policy at step 0)"
    if overrides:
        label += f", brain_config {json.dumps(overrides)}"

    @torch.no_grad()
    def act(obs):
        return torch.tanh(actor(torch.as_tensor(np.asarray(obs, np.float32)))).numpy()

    return _evaluate(
        label,
        lambda n: act,
        lambda: lambda obs: act(obs[None])[0],
        _orn_kwargs(),
        args,
        "flyenv/OdorTaxis-kinematic-v0",
        {"train": "none (connectome wiring)"},
    )


def run_row(run_dir: Path, args) -> dict:
    from flyenv.policies.loading import sb3_algorithm

    res = json.loads((run_dir / "results.json").read_text())
    name = f"{res['algo']} {res['policy']} ({run_dir.name})"
    row = {
        "name": name,
        "env": res["env"],
        "train": f"{res['total_timesteps']} timesteps",
        "train_wall_s": res["train_wall_s"],
        "step0_success": res.get("step0_success"),
        "to_80_percent": res.get("to_80_percent"),
    }
    kwargs = {k: v for k, v in res["env_kwargs"].items() if k != "time_limit_s"}
    if "odor_names" in kwargs:
        kwargs["odor_names"] = tuple(kwargs["odor_names"])
    twin_id = res["env"]
    done_twin = res.get("twin_50", {})
    done_muj = res.get("mujoco", {})
    model = None
    if done_twin.get("seed") == TWIN_SEED and done_twin.get("starts") == args.twin_starts:
        row["twin"] = done_twin
    else:
        model = sb3_algorithm(run_dir / "best_model.zip").load(run_dir / "best_model.zip")
        row["twin"] = ev.evaluate_twin(
            ev.sb3_policy_factories(model)[0], twin_id, kwargs, args.twin_starts, TWIN_SEED
        ).as_dict()
    if args.mujoco_starts > 0 and row["twin"]["success_rate"] >= args.mujoco_min_twin:
        if done_muj.get("seed") == MUJOCO_SEED and done_muj.get("starts") == args.mujoco_starts:
            row["mujoco"] = done_muj
        else:
            model = model or sb3_algorithm(run_dir / "best_model.zip").load(
                run_dir / "best_model.zip"
            )
            row["mujoco"] = ev.evaluate_mujoco(
                ev.sb3_policy_factories(model)[1],
                mujoco_id(twin_id),
                kwargs,
                args.mujoco_starts,
                MUJOCO_SEED,
            ).as_dict()
    print(f"{name}: twin {row['twin']['success_rate']:.0%}", flush=True)
    return row


def _pct(d: dict | None) -> str:
    if not d:
        return "not run | not run"
    t = d.get("mean_time_to_source_s")
    time = f"{t:.2f} s" if t is not None else "-"
    return f"{d['success_rate']:.0%} of {d['starts']} | {time}"


def markdown(rows: list[dict]) -> str:
    head = (
        "| agent | twin success | twin time to source | MuJoCo success | MuJoCo time to source "
        "| training | to 80 % (timesteps) | to 80 % (wall) |\n|" + "---|" * 8
    )
    lines = [head]
    for r in rows:
        to80 = r.get("to_80_percent")
        steps = (
            "-"
            if "to_80_percent" not in r
            else ("not reached" if to80 is None else f"{to80['timesteps']:,}")
        )
        wall = "-" if not to80 or to80.get("wall_s") is None else f"{to80['wall_s'] / 60:.1f} min"
        train = r.get("train", "")
        if r.get("train_wall_s"):
            train += f", {r['train_wall_s'] / 60:.1f} min wall"
        lines.append(
            f"| {r['name']} | {_pct(r.get('twin'))} | {_pct(r.get('mujoco'))} | {train} | {steps} | {wall} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    builders = {"braitenberg": braitenberg_row, "untrained": untrained_row, "bptt": bptt_row}
    for key, build in builders.items():
        if key not in args.skip:
            rows.append(build(args))
    for run in args.runs:
        rows.append(run_row(Path(run), args))
    if args.curves_png and args.runs:
        from flyenv.rl.sb3_training import plot_runs

        plot_runs([Path(r) for r in args.runs], Path(args.curves_png))
    table = markdown(rows)
    out = Path(args.out)
    atomic_write_json(out, {"twin_seed": TWIN_SEED, "mujoco_seed": MUJOCO_SEED, "rows": rows})
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    return rows


if __name__ == "__main__":
    main()
