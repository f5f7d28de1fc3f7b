"""Fit a connectome-constrained conductance-based E/I network to target firing statistics
(or to a teacher's spike trains) by truncated BPTT with surrogate gradients.

A readable single-file program (CleanRL style) with the seed's TOML keys
(../shared/seeds/fitting_activity_training.md; SPEC section 8):

    python agents/firing_statistics.py scenarios/firing-statistics.toml
    python agents/firing_statistics.py scenarios/firing-statistics-teacher.toml
    python agents/firing_statistics.py scenarios/firing-statistics.toml \\
        --output-dir runs/fs --resume-from runs/fs/checkpoints/checkpoint_latest.pt

Output directory: parameters.toml (copy), metadata.json, checkpoints/checkpoint_latest.pt
and checkpoint_best.pt (atomic; model, optimizer, epoch, losses, RNG states, neuron
state), figures/epoch_XXXX/*.png every accumulation interval, tb/ (tensorboard, on by
default), wandb/ with ``--wandb`` (offline unless WANDB_MODE says otherwise), and
history.json (every epoch's losses and statistics).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shutil
import sys
import time
import tomllib
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from flyenv.brains.ei_assembly.conductance import ConductanceLIFConfig  # noqa: E402
from flyenv.brains.ei_assembly.network import PATHWAYS, WEIGHT_MODES, EIAssemblyConfig  # noqa: E402
from flyenv.io import atomic_write_json  # noqa: E402
from flyenv.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from flyenv.training.firing_statistics_losses import LossWeights, Targets  # noqa: E402
from flyenv.training.firing_statistics_trainer import (  # noqa: E402
    FiringStatisticsTrainer,
    TrainConfig,
)

KNOWN = {
    "simulation": {
        "epochs", "accumulation_interval", "checkpoint_interval", "plot_interval",
        "batch_size", "epoch_ms", "chunk_ms", "warmup_ms", "seed", "mode", "dt_ms", "eval_ms",
    },
    "targets": {"firing_rates", "cvs", "alpha", "threshold_ratio", "min_isis"},
    "hyperparameters": {"learning_rate", "lr_decay", "loss_weight", "surrogate_slope_per_mv"},
    "network": {
        "size", "n_neurons", "n_assemblies", "n_inputs", "input_rate_hz", "weight_mode",
        "init_pathway_scales", "seed",
    },
    "teacher": {"pathway_scales", "van_rossum_tau_ms", "rate_weight", "teacher_forcing"},
}  # fmt: skip


def load_config(path: Path) -> TrainConfig:
    """TOML -> TrainConfig; unknown sections/keys and bad values raise naming the key."""
    if not path.exists():
        raise FileNotFoundError(f"config {path} not found; see scenarios/firing-statistics.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    for section, body in raw.items():
        if section not in KNOWN:
            raise ValueError(f"{path}: unknown section [{section}]; known: {sorted(KNOWN)}")
        bad = set(body) - KNOWN[section]
        if bad:
            raise ValueError(
                f"{path}: unknown key(s) {sorted(bad)} in [{section}]; known: {sorted(KNOWN[section])}"
            )
    sim, tg, hp = raw.get("simulation", {}), raw.get("targets", {}), raw.get("hyperparameters", {})
    nw, te = raw.get("network", {}), raw.get("teacher", {})
    rates = tg.get("firing_rates", [0.5, 2.0])
    rates = [rates, rates] if isinstance(rates, int | float) else list(rates)
    if len(rates) != 2:
        raise ValueError("[targets] firing_rates must be one number or [E, I] (Hz)")
    lw = hp.get("loss_weight", {})
    unknown_w = set(lw) - {f.name for f in LossWeights.__dataclass_fields__.values()}
    if unknown_w:
        raise ValueError(
            f"unknown loss_weight key(s) {sorted(unknown_w)}; known: {list(LossWeights.__dataclass_fields__)}"
        )
    neuron = ConductanceLIFConfig(
        dt_ms=float(sim.get("dt_ms", 1.0)),
        slope_per_mv=float(hp.get("surrogate_slope_per_mv", 0.5)),
    )
    size = nw.get("size", "cpu")
    if size not in ("cpu", "seed"):
        raise ValueError(
            f"[network] size must be 'cpu' (500 neurons) or 'seed' (5,000), got {size!r}"
        )
    base = EIAssemblyConfig.seed_size() if size == "seed" else EIAssemblyConfig()
    weight_mode = nw.get("weight_mode", "both")
    if weight_mode not in WEIGHT_MODES:
        raise ValueError(
            f"[network] weight_mode must be one of {WEIGHT_MODES}, got {weight_mode!r}"
        )
    network = replace(
        base,
        neuron=neuron,
        weight_mode=weight_mode,
        **{k: nw[k] for k in ("n_neurons", "n_assemblies", "n_inputs", "seed") if k in nw},
        **({"input_rate_hz": float(nw["input_rate_hz"])} if "input_rate_hz" in nw else {}),
        **(
            {"init_pathway_scales": tuple(nw["init_pathway_scales"])}
            if "init_pathway_scales" in nw
            else {}
        ),
    )
    cfg = TrainConfig(
        epochs=int(sim.get("epochs", 40)),
        accumulation_interval=int(sim.get("accumulation_interval", 2)),
        checkpoint_interval=int(sim.get("checkpoint_interval", 10)),
        plot_interval=int(sim.get("plot_interval", 0)),
        batch_size=int(sim.get("batch_size", 8)),
        epoch_ms=float(sim.get("epoch_ms", 2000.0)),
        chunk_ms=float(sim.get("chunk_ms", 500.0)),
        warmup_ms=float(sim.get("warmup_ms", 300.0)),
        seed=int(sim.get("seed", 0)),
        mode=str(sim.get("mode", "statistics")),
        learning_rate=float(hp.get("learning_rate", 0.03)),
        lr_decay=float(hp.get("lr_decay", 1.0)),
        targets=Targets(
            rate_e_hz=float(rates[0]),
            rate_i_hz=float(rates[1]),
            cv=float(tg.get("cvs", 1.0)),
            alpha_per_hz=float(tg.get("alpha", 1.0)),
            threshold_ratio=float(tg.get("threshold_ratio", 0.8)),
            min_isis=int(tg.get("min_isis", 2)),
        ),
        weights=LossWeights(**{k: float(v) for k, v in lw.items()}),
        network=network,
        teacher_scales=tuple(te.get("pathway_scales", (1.0,) * 6)),
        van_rossum_tau_ms=float(te.get("van_rossum_tau_ms", 20.0)),
        teacher_rate_weight=float(te.get("rate_weight", 1.0)),
        teacher_forcing=bool(te.get("teacher_forcing", True)),
    )
    cfg.validate()
    return cfg


class Loggers:
    """tensorboard (default) and optional wandb; both get scalars and figures."""

    def __init__(self, out: Path, cfg: TrainConfig, tensorboard: bool, wandb: bool, resume: bool):
        self.tb = self.wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        if wandb:
            try:
                import wandb as wb
            except ImportError as exc:
                raise SystemExit(
                    "--wandb was given but wandb is not installed; `pip install wandb` or drop --wandb"
                ) from exc
            import os

            os.environ.setdefault("WANDB_MODE", "offline")  # no network at run time
            self.wandb = wb.init(
                project="flyenv-firing-statistics", dir=str(out), config=asdict(cfg),
                resume="allow" if resume else None,
            )  # fmt: skip

    def scalars(self, epoch: int, values: dict[str, float]) -> None:
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(k, v, epoch)
        if self.wandb:
            self.wandb.log(values, step=epoch)

    def figures(self, epoch: int, paths: list[Path]) -> None:
        if self.wandb:
            import wandb as wb

            self.wandb.log({p.stem: wb.Image(str(p)) for p in paths}, step=epoch)
        if self.tb:
            import matplotlib.image as mpimg

            for p in paths:
                img = mpimg.imread(str(p))[..., :3]
                self.tb.add_image(p.stem, img, epoch, dataformats="HWC")

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("config", type=Path, help="TOML parameters (scenarios/firing-statistics.toml)")
    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="default: runs/firing_statistics/<config stem>",
    )
    p.add_argument(
        "--resume-from", type=Path, default=None, help="checkpoint_latest.pt of a killed run"
    )
    p.add_argument("--wandb", action="store_true", help="also log to wandb (offline by default)")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--stop-after-epoch",
        type=int,
        default=None,
        help="stop (as if killed) after this epoch's checkpoint",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core CPU)"
    )
    p.add_argument(
        "--eval-ms",
        type=float,
        default=None,
        help="evaluation before/after training, ms per trial ([simulation] eval_ms, default 8000; 0 = none)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.wandb and importlib.util.find_spec("wandb") is None:  # fail before any work
        raise SystemExit(
            "--wandb was given but wandb is not installed; `pip install wandb` or drop --wandb"
        )
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    eval_ms = args.eval_ms
    if eval_ms is None:
        eval_ms = float(
            tomllib.loads(args.config.read_text()).get("simulation", {}).get("eval_ms", 8000.0)
        )
    out = args.output_dir or Path("runs/firing_statistics") / args.config.stem
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    trainer = FiringStatisticsTrainer(cfg)
    if args.resume_from is not None:
        trainer.load_payload(load_checkpoint(args.resume_from))
        print(f"Resumed from {args.resume_from} at epoch {trainer.epoch}")
    else:
        shutil.copyfile(args.config, out / "parameters.toml")
    atomic_write_json(
        out / "metadata.json",
        {
            "started_utc": datetime.now(UTC).isoformat(),
            "config_file": str(args.config),
            "resumed_from": None if args.resume_from is None else str(args.resume_from),
            "start_epoch": trainer.epoch,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "n_neurons": trainer.net.n,
            "n_recurrent_synapses": trainer.net.rec.nnz,
            "n_input_synapses": trainer.net.inp.nnz,
            "pathways": list(PATHWAYS),
            "config": asdict(cfg),
        },
    )
    loggers = Loggers(out, cfg, not args.no_tensorboard, args.wandb, args.resume_from is not None)
    from flyenv.viz.firing_statistics_plots import save_epoch_figures

    t = cfg.targets
    results_path = out / "results.json"
    results: dict[str, Any] = {}
    if args.resume_from is not None and results_path.exists():
        results = json.loads(results_path.read_text())
    if eval_ms > 0 and "initial_evaluation" not in results:
        results["initial_evaluation"] = trainer.evaluate(eval_ms)
        atomic_write_json(results_path, results)
        print("Initial network:", _fmt_eval(results["initial_evaluation"]))
    print(f"Starting training from epoch {trainer.epoch}... mode={cfg.mode}")
    print(f"Target firing rates: E {t.rate_e_hz} Hz, I {t.rate_i_hz} Hz; target CV: {t.cv}")
    plot_every = cfg.plot_interval or cfg.accumulation_interval
    t0 = time.time()
    bar = tqdm(
        range(trainer.epoch, cfg.epochs), desc="epochs", initial=trainer.epoch, total=cfg.epochs
    )
    for _ in bar:
        rec = trainer.run_epoch()
        ep, s = trainer.epoch, rec.summary
        row = trainer.history[-1]
        scalars = {f"loss/{k}": v for k, v in rec.terms.items()} | {"loss/total": rec.loss}
        scalars |= {f"stats/{k}": v for k, v in s.items()}
        scalars |= {f"scale/{p}": v for p, v in zip(PATHWAYS, row["pathway_scales"], strict=True)}
        loggers.scalars(ep, scalars)
        bar.set_postfix(
            E=f"{s['rate_E_hz']:.2f}",
            I=f"{s['rate_I_hz']:.2f}",
            cv=f"{s['cv_mean']:.2f}",
            silent=f"{s['silent_fraction']:.2f}",
        )
        if ep % cfg.accumulation_interval == 0:
            lines = [f"Epoch {ep}/{cfg.epochs}:"]
            lines += [f"  {k} loss: {v:.6f}" for k, v in rec.terms.items()]
            lines += [
                f"  Total loss: {rec.loss:.6f}",
                f"  Mean FR: E {s['rate_E_hz']:.3f} Hz, I {s['rate_I_hz']:.3f} Hz",
                f"  Mean CV: {s['cv_mean']:.3f}",
                f"  Active fraction: {1 - s['silent_fraction']:.3f}",
            ]
            if "scale_error" in row:
                lines.append(
                    "  Pathway scale error vs teacher: "
                    + ", ".join(
                        f"{p} {e:.1%}" for p, e in zip(PATHWAYS, row["scale_error"], strict=True)
                    )
                )
            tqdm.write("\n".join(lines))
            is_best = rec.loss < trainer.best_loss
            if is_best:
                trainer.best_loss = rec.loss
        if not args.no_plots and ep % plot_every == 0:
            paths = save_epoch_figures(out / "figures" / f"epoch_{ep:04d}", trainer.net, rec, t)
            loggers.figures(ep, paths)
        if ep % cfg.accumulation_interval == 0:
            payload = trainer.checkpoint_payload()
            if is_best:
                save_checkpoint(ckpt_dir / "checkpoint_best.pt", payload)
            if ep % cfg.checkpoint_interval == 0 or ep == cfg.epochs:
                save_checkpoint(ckpt_dir / "checkpoint_latest.pt", payload)
                atomic_write_json(out / "history.json", trainer.history)
        if args.stop_after_epoch is not None and ep >= args.stop_after_epoch:
            break
    loggers.close()
    atomic_write_json(out / "history.json", trainer.history)
    results["epochs_done"] = trainer.epoch
    results["train_wall_s_this_process"] = time.time() - t0
    if eval_ms > 0 and trainer.epoch >= cfg.epochs:
        results["final_evaluation"] = trainer.evaluate(eval_ms)
        print("Trained network:", _fmt_eval(results["final_evaluation"]))
    atomic_write_json(results_path, results)
    print(json.dumps({"epochs_done": trainer.epoch, "wall_s": round(time.time() - t0, 1)}))
    return results


def _fmt_eval(e: dict[str, Any]) -> str:
    s = (
        f"E {e['rate_E_hz']:.3f} Hz, I {e['rate_I_hz']:.3f} Hz, CV {e['cv_mean']:.3f}, "
        f"silent {e['silent_fraction']:.1%} ({e['duration_ms'] / 1000:.0f} s x trials)"
    )
    if "scale_error" in e:
        s += "; scale error " + ", ".join(
            f"{p} {x:.1%}" for p, x in zip(PATHWAYS, e["scale_error"], strict=True)
        )
    return s


if __name__ == "__main__":
    main()
