"""Fit a connectome-constrained conductance-based E/I network to target firing statistics
(or to a teacher's spike trains) by truncated BPTT with surrogate gradients.

A readable single-file program (CleanRL style) with the TOML keys of the original
firing-statistics fitting (docs/research_systems.md, firing-statistics fitting):

    python agents/firing_statistics.py --scenario scenarios/firing_statistics.toml
    python agents/firing_statistics.py --scenario scenarios/firing_statistics_teacher.toml
    python agents/firing_statistics.py --scenario scenarios/firing_statistics.toml \\
        --output-dir runs/fs --resume-from runs/fs/checkpoints/checkpoint_latest.pt

Flags (``--help``): the fields of ``Args`` below, dashed; the original's tables as
``--simulation.epochs 10``, ``--hyperparameters.loss-weight.cv 0.5``, ... (``--eval-ms`` is
``--simulation.eval-ms``). The scenario TOML holds the same fields (its [simulation],
[targets], [hyperparameters], [network], [teacher] tables); defaults < scenario < flags.
parameters.toml in the output directory is a copy of the scenario.

Output directory: parameters.toml (copy), metadata.json, checkpoints/checkpoint_latest.pt
and checkpoint_best.pt (atomic; model, optimizer, epoch, losses, RNG states, neuron
state), figures/epoch_XXXX/*.png every accumulation interval, tb/ (tensorboard, on by
default), wandb/ with ``--wandb`` (offline unless WANDB_MODE says otherwise), and
history.json (every epoch's losses and statistics).
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from flyenv.brains.ei_assembly.conductance import ConductanceLIFConfig
from flyenv.brains.ei_assembly.network import PATHWAYS, WEIGHT_MODES, EIAssemblyConfig
from flyenv.config import cli, load_scenario
from flyenv.io import atomic_write_json
from flyenv.metrics.firing_statistics import LossWeights, Targets
from flyenv.training.checkpoint import load_checkpoint, save_checkpoint
from flyenv.training.firing_statistics_trainer import FiringStatisticsTrainer, TrainConfig


# The scenario tables of the original's parameter file ([simulation], [targets],
# [hyperparameters], [network], [teacher]), one dataclass each.
@dataclass
class Simulation:
    epochs: int = 40
    """Total training epochs."""
    accumulation_interval: int = 2
    """Update the weights (and print) every N epochs."""
    checkpoint_interval: int = 10
    """Write checkpoint_latest.pt every N epochs (a multiple of accumulation_interval)."""
    plot_interval: int = 0
    """Figures every N epochs (0: every accumulation_interval)."""
    batch_size: int = 8
    """Independent trials simulated in parallel."""
    epoch_ms: float = 2000.0
    """Simulated time per trial and epoch (ms)."""
    chunk_ms: float = 500.0
    """Truncated-BPTT chunk (ms)."""
    warmup_ms: float = 300.0
    """Unrecorded warm-up per trial (ms)."""
    seed: int = 0
    """Training seed."""
    mode: Literal["statistics", "teacher"] = "statistics"
    """Fit firing statistics, or a teacher's spike trains."""
    dt_ms: float = 1.0
    """Integration step (ms)."""
    eval_ms: float = 8000.0
    """Evaluation of the initial and trained net, ms per trial (0: none)."""


@dataclass
class TargetStatistics:
    firing_rates: float | tuple[float, float] = (0.5, 2.0)
    """Target rates (Hz): [E, I], or one number for both."""
    cvs: float = 1.0
    """Target coefficient of variation of the ISIs."""
    alpha: float = 1.0
    """Silent penalty exp(-alpha r) (1/Hz)."""
    threshold_ratio: float = 0.8
    """Target (mean V + std V - E_L) / (theta - E_L)."""
    min_isis: int = 2
    """ISIs a neuron needs for its CV to count."""


@dataclass
class Hyperparameters:
    learning_rate: float = 0.03
    """Adam step size, on log weights and log pathway scales."""
    lr_decay: float = 1.0
    """Learning rate x this after every update."""
    loss_weight: LossWeights = field(default_factory=LossWeights)
    """Weights of the loss terms."""
    surrogate_slope_per_mv: float = 0.5
    """Surrogate-gradient slope (1/mV)."""


@dataclass
class Network:
    size: Literal["cpu", "seed"] = "cpu"
    """'cpu' (500 neurons) or the original's 'seed' net (5,000); the keys below override it."""
    n_neurons: int | None = None
    """Neurons (80 % E) (None: the size's)."""
    n_assemblies: int | None = None
    """Assemblies (None: the size's)."""
    n_inputs: int | None = None
    """Poisson mitral inputs (None: the size's)."""
    input_rate_hz: float | None = None
    """Input rate (Hz) (None: the size's)."""
    weight_mode: str = "both"
    """What learns: pathway | connection | both."""
    init_pathway_scales: tuple[float, ...] | None = None
    """Initial scales of E->E E->I I->E I->I in->E in->I (None: all 1)."""
    seed: int | None = None
    """Wiring seed (None: the size's)."""


@dataclass
class Teacher:
    pathway_scales: tuple[float, ...] = (1.0,) * 6
    """The teacher's pathway scales (E->E E->I I->E I->I in->E in->I)."""
    van_rossum_tau_ms: float = 20.0
    """Van Rossum kernel time constant (ms)."""
    rate_weight: float = 1.0
    """Weight of the per-neuron rate term."""
    teacher_forcing: bool = True
    """Drive the student's recurrent synapses with the teacher's spikes."""


@dataclass
class Args:
    scenario: str | None = None
    """Parameter TOML (scenarios/firing_statistics*.toml); explicit flags override it."""
    output_dir: Path | None = None
    """Output folder (default: runs/firing_statistics/<scenario stem>)."""
    resume_from: Path | None = None
    """checkpoint_latest.pt of a killed run."""
    wandb: bool = False
    """Also log to wandb (offline by default)."""
    no_tensorboard: bool = False
    """No tensorboard logs."""
    no_plots: bool = False
    """No figures."""
    stop_after_epoch: int | None = None
    """Stop (as if killed) after this epoch's checkpoint."""
    threads: int = 1
    """Torch threads (1 is fastest on a busy 2-core CPU)."""
    simulation: Simulation = field(default_factory=Simulation)
    targets: TargetStatistics = field(default_factory=TargetStatistics)
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    network: Network = field(default_factory=Network)
    teacher: Teacher = field(default_factory=Teacher)


ALIASES = {"--eval-ms": "--simulation.eval-ms"}
"""Flags of the earlier CLI."""


def train_config(args: Args) -> TrainConfig:
    """The trainer's config from the scenario tables; bad values raise naming the key."""
    sim, tg, hp, nw, te = (
        args.simulation, args.targets, args.hyperparameters, args.network, args.teacher
    )  # fmt: skip
    rates = tg.firing_rates
    rates = [rates, rates] if isinstance(rates, int | float) else list(rates)
    if len(rates) != 2:
        raise ValueError("[targets] firing_rates must be one number or [E, I] (Hz)")
    neuron = ConductanceLIFConfig(dt_ms=sim.dt_ms, slope_per_mv=hp.surrogate_slope_per_mv)
    if nw.size not in ("cpu", "seed"):
        raise ValueError(
            f"[network] size must be 'cpu' (500 neurons) or 'seed' (5,000), got {nw.size!r}"
        )
    base = EIAssemblyConfig.seed_size() if nw.size == "seed" else EIAssemblyConfig()
    if nw.weight_mode not in WEIGHT_MODES:
        raise ValueError(
            f"[network] weight_mode must be one of {WEIGHT_MODES}, got {nw.weight_mode!r}"
        )
    given = {
        k: getattr(nw, k)
        for k in ("n_neurons", "n_assemblies", "n_inputs", "seed", "input_rate_hz")
        if getattr(nw, k) is not None
    }
    if nw.init_pathway_scales is not None:
        given["init_pathway_scales"] = tuple(nw.init_pathway_scales)
    network = replace(base, neuron=neuron, weight_mode=nw.weight_mode, **given)
    cfg = TrainConfig(
        epochs=sim.epochs,
        accumulation_interval=sim.accumulation_interval,
        checkpoint_interval=sim.checkpoint_interval,
        plot_interval=sim.plot_interval,
        batch_size=sim.batch_size,
        epoch_ms=sim.epoch_ms,
        chunk_ms=sim.chunk_ms,
        warmup_ms=sim.warmup_ms,
        seed=sim.seed,
        mode=sim.mode,
        learning_rate=hp.learning_rate,
        lr_decay=hp.lr_decay,
        targets=Targets(
            rate_e_hz=float(rates[0]),
            rate_i_hz=float(rates[1]),
            cv=tg.cvs,
            alpha_per_hz=tg.alpha,
            threshold_ratio=tg.threshold_ratio,
            min_isis=tg.min_isis,
        ),
        weights=replace(hp.loss_weight),
        network=network,
        teacher_scales=tuple(te.pathway_scales),
        van_rossum_tau_ms=te.van_rossum_tau_ms,
        teacher_rate_weight=te.rate_weight,
        teacher_forcing=te.teacher_forcing,
    )
    cfg.validate()
    return cfg


def load_config(path: Path) -> TrainConfig:
    """Parameter TOML -> TrainConfig; unknown tables/keys and bad values raise naming the key."""
    return train_config(load_scenario(path, Args, agent="firing_statistics"))


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


def parse_args(argv: list[str] | None = None) -> Args:
    return cli(Args, argv, description=__doc__, agent="firing_statistics", aliases=ALIASES)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.wandb and importlib.util.find_spec("wandb") is None:  # fail before any work
        raise SystemExit(
            "--wandb was given but wandb is not installed; `pip install wandb` or drop --wandb"
        )
    torch.set_num_threads(args.threads)
    try:
        cfg = train_config(args)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    eval_ms = args.simulation.eval_ms
    stem = Path(args.scenario).stem if args.scenario else "default"
    out = args.output_dir or Path("runs/firing_statistics") / stem
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    trainer = FiringStatisticsTrainer(cfg)
    if args.resume_from is not None:
        trainer.load_payload(load_checkpoint(args.resume_from))
        print(f"Resumed from {args.resume_from} at epoch {trainer.epoch}")
    elif args.scenario:
        shutil.copyfile(args.scenario, out / "parameters.toml")
    atomic_write_json(
        out / "metadata.json",
        {
            "started_utc": datetime.now(UTC).isoformat(),
            "config_file": args.scenario,
            "args": json.loads(json.dumps(asdict(args), default=str)),
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
