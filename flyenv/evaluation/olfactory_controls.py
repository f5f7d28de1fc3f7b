"""Controls for the olfactory brain's odor taxis: which parts of the brain steer?

``taxis_cell`` is a ``flyenv sweep`` cell: it builds the bilateral spiking
``OlfactoryBrain`` (untrained, or trained from a BPTT checkpoint), switches one part off
(``flyenv.brains.olfactory.brain.ablate``: ``intact``, ``mbon_dn_zeroed``, ``no_lateral_horn``,
``no_contrast``, ``no_handedness_bias``) and evaluates it on one start set: the batched
twin (``flyenv.rl.evaluation.evaluate_twin``) or, with ``body = "mujoco"``, a few MuJoCo
episodes (``evaluate_mujoco``).

Config keys (all optional)::

    brain = "untrained"        # or "shipped" (SHIPPED_CHECKPOINT), or a BPTT checkpoint path
    architecture = "<ckpt>"    # untrained: the checkpoint whose policy spec (factory +
                               # brain config) is built, weights left at initialisation
    brain_config = {}          # untrained only: OlfactoryBrainConfig overrides on top
    ablation = "intact"
    body = "twin"              # or "mujoco"
    n_starts = 50              # twin default 50, MuJoCo default 4
    time_limit_s = 3.0         # the BPTT training / checkpoint-selection episode length

Starts: the seed is a start set. Twin: the ``n_starts`` starts of one random stream,
``default_rng(seed)``. MuJoCo: episode seeds ``seed * 100 + i`` (i < n_starts <= 100),
so start sets of different seeds never share an episode. Use seeds >= 1000 for
reporting: BPTT training draws from ``default_rng(train_seed)`` (0 for the shipped
checkpoint) and selects its checkpoint on ``default_rng(train_seed + 1_000_003)``; the
agents' MuJoCo evaluations use episode seeds 10_000-10_009.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from flyenv.brains.olfactory.brain import ABLATIONS, ablate
from flyenv.rl import evaluation as ev

SHIPPED_CHECKPOINT = (
    Path(__file__).resolve().parents[1] / "data/checkpoints/olfactory_brain_bptt.pt"
)
BODIES = ("twin", "mujoco")
MUJOCO_SEEDS_PER_SET = 100
KNOWN_KEYS = {
    "name",
    "brain",
    "architecture",
    "brain_config",
    "ablation",
    "body",
    "n_starts",
    "time_limit_s",
    "threads",
}


def build_policy(brain: str = "untrained", architecture: str | Path | None = None, **overrides):
    """The policy module (``OlfactoryBrainPolicy``) in eval mode, plus its env keywords.

    ``brain="untrained"``: the ``architecture`` checkpoint's factory and brain config
    (with ``overrides``), at initialisation (deterministic: ``init_seed``). Otherwise
    ``brain`` is a checkpoint path (``"shipped"``: ``SHIPPED_CHECKPOINT``) and its
    trained weights are loaded.
    """
    from flyenv.policies.loading import _factory, build_brain_from_checkpoint
    from flyenv.training.checkpoint import load_checkpoint

    if brain == "shipped":
        brain = str(SHIPPED_CHECKPOINT)
    source = Path(architecture or SHIPPED_CHECKPOINT) if brain == "untrained" else Path(brain)
    if not source.exists():
        raise ValueError(
            f"brain checkpoint {str(source)!r} does not exist; give brain = 'untrained' or "
            f"the path of a BPTT checkpoint (e.g. {SHIPPED_CHECKPOINT})"
        )
    ck = load_checkpoint(source)
    env_kwargs = dict(ck.get("env_kwargs") or {})
    env_kwargs.pop("time_limit_s", None)
    if "odor_names" in env_kwargs:
        env_kwargs["odor_names"] = tuple(env_kwargs["odor_names"])
    if brain == "untrained":
        spec = ck.get("policy_spec") or {}
        module = _factory(spec)(**{**spec.get("kwargs", {}), **overrides}).eval()
    else:
        if overrides:
            raise ValueError(
                "brain_config overrides apply to the untrained brain only; a trained "
                "checkpoint keeps the config it was trained with"
            )
        module = build_brain_from_checkpoint(source)
    return module, env_kwargs


def taxis_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """One (brain, ablation, body) row on one start set ``seed``; see the module doc.

    Returns ``success_rate``, ``time_to_source_s`` (mean over successes; NaN if none),
    ``final_distance_mm`` (mean over starts at episode end), ``n_starts``,
    ``n_success`` and ``wall_s``; writes ``taxis_cell.json`` (with per-start
    successes) into ``run_dir``.
    """
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(
            f"taxis_cell: unknown config keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    ablation = config.get("ablation", "intact")
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation {ablation!r} is not one of {ABLATIONS}")
    body = config.get("body", "twin")
    if body not in BODIES:
        raise ValueError(f"body {body!r} is not one of {BODIES}")
    n = int(config.get("n_starts", 50 if body == "twin" else 4))
    if not 1 <= n <= (10_000 if body == "twin" else MUJOCO_SEEDS_PER_SET):
        raise ValueError(
            f"n_starts={n} out of range (twin: 1-10000; MuJoCo: 1-{MUJOCO_SEEDS_PER_SET}, the "
            "episode seeds of one start set)"
        )
    torch.set_num_threads(int(config.get("threads", 1)))
    module, env_kwargs = build_policy(
        config.get("brain", "untrained"),
        config.get("architecture"),
        **dict(config.get("brain_config") or {}),
    )
    ablate(module.brain, ablation)
    env_kwargs["time_limit_s"] = float(config.get("time_limit_s", 3.0))
    if body == "twin":
        result = ev.evaluate_twin(
            ev.stateful_batch_policy(module),
            "flyenv/OdorTaxis-kinematic-v0",
            env_kwargs,
            n_starts=n,
            seed=int(seed),
        )
    else:
        from flyenv.policies.torch_policy import StatefulTorchPolicy

        result = ev.evaluate_mujoco(
            lambda: StatefulTorchPolicy(module),
            "flyenv/OdorTaxis-v0",
            env_kwargs,
            n_starts=n,
            seed=int(seed) * MUJOCO_SEEDS_PER_SET,
            progress=False,
        )
    t = result.mean_time_to_source_s
    metrics = {
        "success_rate": result.success_rate,
        "time_to_source_s": math.nan if t is None else t,
        "final_distance_mm": result.mean_final_distance_mm,
        "n_starts": n,
        "n_success": int(sum(result.successes)),
        "wall_s": result.wall_time_s,
    }
    record = {"config": config, "seed": seed, "metrics": metrics, "evaluation": result.as_dict()}
    Path(run_dir).mkdir(parents=True, exist_ok=True)  # also when called outside a sweep
    Path(run_dir, "taxis_cell.json").write_text(json.dumps(record, indent=1, default=str))
    return metrics


def _cell_records(sweep_dir: Path, row: str) -> dict[int, dict[str, Any]]:
    """{seed: taxis_cell.json record} of one finished sweep row."""
    folder = Path(sweep_dir) / "cells" / row.replace("/", "__")
    records = {
        int(json.loads(p.read_text())["seed"]): json.loads(p.read_text())
        for p in sorted(folder.glob("seed_*/taxis_cell.json"))
    }
    if not records:
        raise ValueError(f"no finished taxis cells of row {row!r} under {folder}; run the sweep")
    return records


def compare_rows(
    sweep_dir: str | Path, row_a: str, row_b: str, metric: str = "success_rate"
) -> dict[str, Any]:
    """Paired comparison of two rows of a taxis sweep on the same start sets.

    Returns the per-seed differences ``a - b`` of ``metric`` with their mean and 95 %
    bootstrap CI over seeds (``flyenv.sweep.aggregate.bootstrap_ci``), and, pooled over
    all starts, how many starts only ``a`` reached and how many only ``b`` reached.
    """
    from flyenv.sweep.aggregate import bootstrap_ci

    a, b = _cell_records(Path(sweep_dir), row_a), _cell_records(Path(sweep_dir), row_b)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"rows {row_a!r} and {row_b!r} share no seed")
    diffs = [a[s]["metrics"][metric] - b[s]["metrics"][metric] for s in seeds]
    mean, lo, hi = bootstrap_ci(diffs)
    only_a = only_b = 0
    for s in seeds:
        sa, sb = a[s]["evaluation"]["successes"], b[s]["evaluation"]["successes"]
        only_a += sum(x and not y for x, y in zip(sa, sb, strict=True))
        only_b += sum(y and not x for x, y in zip(sa, sb, strict=True))
    return {
        "seeds": seeds,
        "differences": diffs,
        "mean": mean,
        "ci95": [lo, hi],
        "starts_only_a_reached": only_a,
        "starts_only_b_reached": only_b,
    }


__all__ = ["SHIPPED_CHECKPOINT", "build_policy", "compare_rows", "taxis_cell"]
