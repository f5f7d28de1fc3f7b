"""STDP baseline agent for the fish lateral line (LL -> MON -> TS somatotopic map).

A readable, single-file program (CleanRL style) with the CLI, presets and run layout of
the original Brian2 script (docs/research_systems.md, lateral line):

    python agents/lateral_line_stdp.py --mode ll_fast --run-name smoke
    python agents/lateral_line_stdp.py --mode ll_thesis --multi-seed 3 --with-control
    python agents/lateral_line_stdp.py --scenario scenarios/lateral_line_learned.toml --n-mon 800

``--with-control`` also runs, on the same seeds, wiring and initial weights, a control
with no plasticity at all and one with homeostatic scaling only.

Flags (``--help``): the fields of ``Args`` below, dashed, and every field of
``NetworkParams`` (``Args.network``) without prefix (``--n-training-trials 5``,
``--mon-ts-gain-mV 90``, ``--no-training-ordered-sweeps``). Every flag of the original
script still works: its spellings differing only in case (``--vth-mv``) and the 20 in
``SEED_FLAGS`` (``--ll-mon-topo`` = ``--ll-to-mon-topography-strength``). Values: Args
defaults < the ``--mode`` preset < ``--scenario`` TOML (top-level Args fields,
NetworkParams in ``[network]``) < explicit flags; ``params_from_args`` then applies the
original's clamps, ``--seed-start`` and the controls.

Outputs under Runs/<name>/: params.json, run_summary.json, figures/*.png,
artifacts/<save-tag>_seed_<seed>.npz + _params.json (and mid_checkpoint.npz, from which
``--resume-from Runs/<name>`` continues a killed run exactly).

Training: the sphere is held 50 ms at each neuromast position, sweeping forward then
back; MON->TS (and optionally LL->MON) STDP is on. Test: STDP frozen, the sphere crosses
the line once at constant speed with OU noise; the population vector of TS gives the
map quality (sigma_theta, delta_trial, valid_fraction; docs/research_systems.md, lateral line).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from flyenv.brains.lateral_line.network import LateralLineNetwork
from flyenv.brains.lateral_line.params import (
    MODES,
    NO_HOMEOSTASIS,
    NO_PLASTICITY,
    NO_STDP,
    NetworkParams,
    apply_model_mode,
)
from flyenv.config import cli
from flyenv.io import atomic_write_json
from flyenv.training.lateral_line_stdp import atomic_savez, run_seed


def save_learning_artifacts(
    result: dict[str, Any], out_dir: Path, tag: str, mode: str
) -> tuple[Path, Path]:
    """Weights + connectivity (same arrays as the original) and a small params sidecar."""
    out_dir.mkdir(parents=True, exist_ok=True)
    net: LateralLineNetwork = result["net"]
    weights_path = out_dir / f"{tag}.npz"
    atomic_savez(
        weights_path,
        mon_ts_w=result["w_after"],
        mon_ts_i=net.conn.mon_ts_i,
        mon_ts_j=net.conn.mon_ts_j,
        ll_mon_i=net.conn.ll_mon_i,
        ll_mon_j=net.conn.ll_mon_j,
        ll_mon_w_mV=result["ll_mon_w_mV"],
    )
    p: NetworkParams = result["params"]
    params_path = out_dir / f"{tag}_params.json"
    keys = (
        "n_ll n_mon n_ts speed_cm_s distance_cm direction training_noise_scale_early "
        "training_noise_scale_late mon_ts_apre mon_ts_apost mon_ts_wmax"
    ).split()
    atomic_write_json(params_path, {"mode": mode, **{k: getattr(p, k) for k in keys}})
    return weights_path, params_path


def seed_summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": int(r["params"].seed),
        "ts_spikes_during_test_window": int(r["ts_spikes_during_test_window"]),
        "pv_map_quality": {
            "sigma_theta_rad": float(r["pv_sigma_theta"]),
            "delta_trial_rad": float(r["pv_delta_trial"]),
            "valid_fraction": float(r["pv_valid_fraction"]),
        },
        "n_test_sweeps": int(r["n_test_sweeps"]),
        "mon_ts_topography": {
            "before_training": r["topography_before"],
            "after_training": r["topography_after"],
        },
    }


# ------------------------------------------------------------------------------- CLI
@dataclass(frozen=True)
class NetworkFlags(NetworkParams):
    """``NetworkParams`` while flags and the scenario are read: checked (clamped, then
    validated) once, by ``params_from_args``, so a bad value is a ValueError naming it."""

    def __post_init__(self) -> None:
        pass

    @classmethod
    def of(cls, p: NetworkParams) -> NetworkFlags:
        return cls(**p.to_dict())


@dataclass
class Args:
    scenario: str | None = None
    """TOML of these fields (scenarios/lateral_line_*.toml; NetworkParams in [network])."""
    mode: str = "ll_thesis"
    """Preset of the network: ll_thesis (the original's), ll_learned (weak wired map),
    ll_selforg (no wired map: the map must be learned), ll_polarity (ll_selforg on a weak
    wired polarity, with intrinsic plasticity of the TS thresholds) or ll_fast (applied
    before the scenario's [network] table and the flags)."""
    run_name: str | None = None
    """Folder under --runs-dir (default: timestamp)."""
    save_tag: str = "latest"
    """Base name of artifacts/*.npz."""
    multi_seed: int = 1
    """Number of consecutive seeds."""
    seed_start: int = 123
    """First seed (sets NetworkParams.seed)."""
    save_weights_dir: str = "SavedModels/ll_thesis_no_noise"
    """Also copy the learned-weight artifacts here (primary outputs stay in
    Runs/.../artifacts; '' for none)."""
    runs_dir: str = "Runs"
    """Parent folder of run folders."""
    resume_from: str | None = None
    """Run folder to resume (artifacts/mid_checkpoint.npz)."""
    disable_all_stdp: bool = False
    """Control: zero all STDP increments (homeostatic scaling still runs)."""
    disable_all_plasticity: bool = False
    """Control: no weight changes at all (STDP increments and homeostasis zeroed)."""
    with_control: bool = False
    """Also run both controls on the same seeds (no plasticity at all; homeostasis only)
    from the same initial weights, and plot learned vs controls."""
    no_progress: bool = False
    """Hide the progress bar."""
    network: Annotated[NetworkFlags, tyro.conf.OmitArgPrefixes] = field(
        default_factory=NetworkFlags
    )
    """Every knob of the network (flyenv.brains.lateral_line.params.NetworkParams; units
    in the names), as flags without prefix (--n-mon 800, --mon-ts-gain-mV 90)."""


SEED_FLAGS = {
    "--checkpoint-save-every-n": "--checkpoint-save-every-n-checkpoints",
    "--training-noise-early": "--training-noise-scale-early",
    "--training-noise-late": "--training-noise-scale-late",
    "--training-noise-switch": "--training-noise-switch-fraction",
    "--ll-baseline-subtract-hz": "--ll-rate-baseline-subtract-hz",
    "--ll-mon-in-degree": "--ll-to-mon-in-degree",
    "--ll-mon-sigma": "--ll-to-mon-sigma",
    "--ll-mon-topo": "--ll-to-mon-topography-strength",
    "--mon-ts-topo": "--mon-to-ts-topography-strength",
    "--mon-ts-sigma": "--mon-to-ts-sigma",
    "--mon-ts-out-degree": "--mon-to-ts-out-degree",
    "--mon-global-inh-p": "--mon-to-global-inh-p",
    "--mon-global-inh-drive-mv": "--mon-to-global-inh-drive-mV",
    "--mon-global-inh-mv": "--global-inh-to-mon-mV",
    "--ts-feedback-p": "--ts-to-global-inh-p",
    "--ts-feedback-drive-mv": "--ts-to-global-inh-drive-mV",
    "--ts-feedback-inh-mv": "--global-inh-to-ts-mV",
    "--use-ll-mon-stdp": "--ll-mon-use-stdp",
    "--eval-x-min": "--eval-x-min-cm",
    "--eval-x-max": "--eval-x-max-cm",
}
"""The original script's flags whose names differ from the NetworkParams field they set
(every other original flag is the field's name: ``--n-mon``, ``--vth-mv`` = ``--vth-mV``)."""


def _pos(x: float) -> int:
    return max(1, int(x))


def _nn(x: float) -> float:
    return float(max(0.0, x))


def _p01(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0))


def _posf(x: float) -> float:
    if not x > 0:
        raise ValueError(f"expected a value > 0 (ms or TS indices), got {x}")
    return float(x)


def _at_least(lo: float):
    return lambda x: float(max(lo, x))


# The original's clamps of user values (silently into range, as its argparse transforms).
CLAMPS: dict[str, Any] = {
    **dict.fromkeys(
        ("n_ll", "n_mon", "n_ts", "n_test_sweeps", "checkpoint_trials",
         "pv_eval_every_checkpoints", "checkpoint_save_every_n_checkpoints",
         "ll_to_mon_in_degree", "ll_mon_homeo_every_trials", "mon_to_ts_out_degree",
         "mon_ts_homeo_every_trials", "ts_lateral_radius"),
        _pos,
    ),
    **dict.fromkeys(("dt_s", "speed_cm_s", "ll_to_mon_sigma", "mon_to_ts_sigma"), _at_least(1e-6)),
    **dict.fromkeys(("ll_body_length_cm", "tau_m_ms", "tau_s_ms"), _at_least(0.1)),
    **dict.fromkeys(
        ("training_noise_switch_fraction", "p_ll_to_mon", "mon_to_global_inh_p",
         "ts_to_global_inh_p"),
        _p01,
    ),
    **dict.fromkeys(("mon_ts_stdp_tau_ms", "ts_lateral_exc_sigma"), _posf),
    **dict.fromkeys(
        ("training_noise_scale_early", "training_noise_scale_late", "test_ll_noise_hz",
         "training_distance_min_cm", "training_distance_max_cm",
         "ll_rate_baseline_subtract_hz", "ll_rate_gain", "tau_ref_ms",
         "ll_to_mon_topography_strength", "ll_mon_w_mean_mV", "ll_mon_w_jitter_mV",
         "ll_mon_wmax_mV", "ll_mon_w_init_mV", "ll_mon_w_jitter_stdp_mV",
         "mon_to_ts_topography_strength", "mon_ts_wmax", "mon_ts_w_init", "mon_ts_w_jitter",
         "mon_ts_homeo_max_step", "mon_ts_gain_mV", "mon_to_global_inh_drive_mV",
         "global_inh_to_mon_mV", "ts_local_inh_peak_mV", "ts_lateral_exc_peak_mV",
         "ts_to_global_inh_drive_mV", "global_inh_to_ts_mV", "bg_rate_mon_hz",
         "bg_rate_ts_hz", "bg_w_mon_mV", "bg_w_ts_mV"),
        _nn,
    ),
    "trial_duration_s": _at_least(1e-3),
    "n_training_trials": lambda x: max(0, int(x)),
    "training_position_hold_s": _at_least(1e-4),
    "test_path_cm": _at_least(1e-9),
}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> Args:
    """Args defaults < the --mode preset < --scenario TOML < flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    kw = {"description": __doc__, "agent": "lateral_line_stdp", "aliases": SEED_FLAGS}
    first = cli(Args, argv, **kw)  # the mode, from the scenario or a flag
    if first.mode not in MODES:
        return first  # params_from_args names the problem
    preset = Args(network=NetworkFlags.of(apply_model_mode(NetworkParams(), first.mode)))
    return cli(Args, argv, default=preset, **kw)


def params_from_args(args: Args) -> NetworkParams:
    """The network of a run: preset, scenario and flags (``args.network``), the
    original's clamps, ``--seed-start`` and the controls' zeroed plasticity."""
    p = args.network
    if args.mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    if not p.distance_cm > 0:
        raise ValueError(f"--distance-cm must be > 0, got {p.distance_cm}")
    if p.ll_rate_mode not in ("raw", "modulation"):
        raise ValueError(f"--ll-rate-mode must be raw or modulation, got {p.ll_rate_mode!r}")
    if (p.eval_x_min_cm is None) != (p.eval_x_max_cm is None):
        raise ValueError("--eval-x-min and --eval-x-max must be given together")
    if p.eval_x_min_cm is not None and not p.eval_x_max_cm > p.eval_x_min_cm:
        raise ValueError("--eval-x-max must be greater than --eval-x-min")
    if args.multi_seed < 1:
        raise ValueError(f"--multi-seed must be >= 1, got {args.multi_seed}")
    over: dict[str, Any] = {k: CLAMPS[k](getattr(p, k)) for k in CLAMPS}
    over["seed"] = args.seed_start
    if args.disable_all_stdp or args.disable_all_plasticity:
        over.update(NO_STDP)
    if args.disable_all_plasticity:
        over.update(NO_HOMEOSTASIS)
    return NetworkParams(**{**p.to_dict(), **over})  # validated here


# --with-control: label -> overrides. Same wiring, initial weights, inputs and seeds as the
# learned run; only plasticity differs.
CONTROLS = {
    "control": dict(NO_PLASTICITY),  # no weight or threshold change at all
    "control_homeo": dict(NO_STDP),  # homeostatic scaling only (also plasticity)
}


def figure_suffix(p: NetworkParams, seeded: bool) -> str:
    s = f"u_{p.speed_cm_s:.1f}_nMON_{p.n_mon}_nTS_{p.n_ts}"
    return s + (f"_seed_{p.seed}" if seeded else "")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        params = params_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    from flyenv.viz import lateral_line_plots as plots  # matplotlib only when running

    name = (args.run_name or "").strip().replace("/", "_").replace("\\", "_")
    name = name or datetime.now().strftime("%Y%m%d_%H%M%S")
    run_dir = Path(args.runs_dir) / name
    resume = None
    if args.resume_from:
        run_dir = Path(args.resume_from)
        ck = run_dir / "artifacts" / "mid_checkpoint.npz"
        if ck.exists():
            with np.load(ck) as z:
                resume = {k: z[k] for k in z.files}
            print(
                f"[resume] from trial {int(resume['trial_idx']) + 1} of seed {int(resume['seed'])}"
            )
        else:
            print(f"WARNING: no {ck}; starting from scratch")
    figures_dir, artifacts_dir = run_dir / "figures", run_dir / "artifacts"
    figures_dir.mkdir(parents=True, exist_ok=True)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / "params.json",
        {
            "mode": args.mode,
            "seed_start": args.seed_start,
            "multi_seed": args.multi_seed,
            "run_folder": run_dir.name,
            "network_params": params.to_dict(),
        },
    )
    print(f"Run directory: {run_dir.resolve()}")

    def run_all(base: NetworkParams, label: str) -> list[dict[str, Any]]:
        out = []
        for k in range(args.multi_seed):
            p = replace(base, seed=args.seed_start + k)
            res = None
            if resume is not None and int(resume["seed"]) == p.seed and label == "learned":
                res = resume
            ckpt = artifacts_dir / (
                "mid_checkpoint.npz" if label == "learned" else f"mid_checkpoint_{label}.npz"
            )
            r = run_seed(p, checkpoint_path=ckpt, resume=res, progress=not args.no_progress)
            out.append(r)
            print(
                f"[{label}] seed {p.seed}: sigma_theta={r['pv_sigma_theta']:.4f} rad, "
                f"delta_trial={r['pv_delta_trial']:.4f} rad, valid_fraction={r['pv_valid_fraction']:.3f}, "
                f"TS test spikes={r['ts_spikes_during_test_window']}, wall={r['wall_s']:.1f}s"
            )
        return out

    is_control = args.disable_all_stdp or args.disable_all_plasticity
    results = run_all(params, "control" if is_control else "learned")
    for r in results:
        p = r["params"]
        if args.multi_seed > 1:
            plots.save_all_run_figures(r, figures_dir, figure_suffix(p, seeded=True))
        w_path, p_path = save_learning_artifacts(
            r, artifacts_dir, f"{args.save_tag}_seed_{p.seed}", args.mode
        )
        atomic_write_json(
            artifacts_dir / f"seed_{p.seed}_results.json",
            {
                **seed_summary(r)["pv_map_quality"],
                "seed": int(p.seed),
                "distance_cm": p.distance_cm,
                "sigma_theta_ll_rad": r["pv_ll"].sigma_theta,
                "delta_trial_ll_rad": r["pv_ll"].delta_trial,
                "n_training_trials": p.n_training_trials,
                "train_wall_s": r["train_wall_s"],
                "wall_s": r["wall_s"],
            },
        )
        if args.save_weights_dir:
            dst = Path(args.save_weights_dir)
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(w_path, dst / w_path.name)
            shutil.copy2(p_path, dst / p_path.name)
    first = results[0]
    paths = plots.save_all_run_figures(first, figures_dir, figure_suffix(params, seeded=False))
    if args.mode == "ll_thesis":
        shutil.copy2(paths["summary"], figures_dir / "LL_THESIS_BASELINE_ACTIVE_latest.png")
        shutil.copy2(paths["test_only"], figures_dir / "LL_THESIS_BASELINE_TEST_ONLY_latest.png")
    if args.multi_seed > 1:
        plots.save_multiseed_summary(
            results, figures_dir / f"brian2_multiseed_summary_n{args.multi_seed}.png"
        )

    summary: dict[str, Any] = {
        "ll_mon_topo": float(params.ll_to_mon_topography_strength),
        "mon_ts_topo": float(params.mon_to_ts_topography_strength),
        "mon_ts_sigma": float(params.mon_to_ts_sigma),
        "mon_ts_gain_mV": float(params.mon_ts_gain_mV),
    }
    per = [seed_summary(r) for r in results]
    if args.multi_seed == 1:
        summary.update(per[0])
    else:
        summary["runs"] = per
    atomic_write_json(run_dir / "run_summary.json", summary)

    controls: dict[str, list[dict[str, Any]]] = {}
    if args.with_control and not is_control:
        for label, over in CONTROLS.items():
            controls[label] = run_all(replace(params, **over), label)
        plots.save_learned_vs_control(
            results,
            {"no plasticity": controls["control"], "homeostasis only": controls["control_homeo"]},
            figures_dir / f"learned_vs_control_n{len(results)}.png",
        )
        atomic_write_json(
            run_dir / "control_summary.json",
            {
                "learned": per,
                **{lab: [seed_summary(r) for r in runs] for lab, runs in controls.items()},
                "control_definitions": {
                    "control": "no weight changes: STDP increments and homeostasis zeroed",
                    "control_homeo": "STDP increments zeroed, homeostatic scaling kept",
                },
                "n_training_trials": params.n_training_trials,
                "learned_wall_s": [r["wall_s"] for r in results],
            },
        )
    ckpt = artifacts_dir / "mid_checkpoint.npz"
    sig = np.array([r["pv_sigma_theta"] for r in results])
    dtr = np.array([r["pv_delta_trial"] for r in results])
    print(f"Mode: {args.mode}, trials={params.n_training_trials}, seeds={args.multi_seed}")
    print(
        f"PV map quality (seed {first['params'].seed}): sigma_theta={first['pv_sigma_theta']:.4f} rad, "
        f"delta_trial={first['pv_delta_trial']:.4f} rad, valid_fraction={first['pv_valid_fraction']:.3f}"
    )
    if args.multi_seed > 1:
        print(
            f"Multi-seed: sigma_theta={sig.mean():.4f}+-{sig.std():.4f}, delta_trial={dtr.mean():.4f}+-{dtr.std():.4f}"
        )
    print(f"Checkpoint: {ckpt if ckpt.exists() else 'none'}")
    print(f"Run directory: {run_dir.resolve()}")
    return {"run_dir": run_dir, "results": results, "controls": controls}


if __name__ == "__main__":
    main()
