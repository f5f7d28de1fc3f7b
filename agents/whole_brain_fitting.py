"""Two-stage fit of a connectome-constrained whole-brain spiking model to neuropil activity.

A single readable program with the CLI, modes, run layout and outputs of the original
whole-brain activity fitting program (docs/research_systems.md, whole-brain activity fitting):

    python agents/whole_brain_fitting.py --mode all --epoch_round1 2 --epoch_round2 2
    python agents/whole_brain_fitting.py --mode train1 --epoch_round1 20
    python agents/whole_brain_fitting.py --mode evaluate --filepath runs/whole_brain/v4_2/630#...

Stages: train1 (the spiking net maps frame t to t+1, teacher-forced), eval1 (its
prediction of every frame -> simulated_neuropil_fr.npy), train2 (LayerNorm -> GRU ->
Linear -> ReLU decoder, bin-interval loss), evaluate (closed loop after a teacher-forced
warm-up on the test frames, beside persistence and linear-AR baselines).

Stage 2 also trains the closed loop (``--rollout_frames 30``, an addition to the original):
after each teacher-forced sub-sequence the decoder runs 30 frames on its own predictions,
with the spiking net replaced by its linear fit (simulating the net inside every stage-2
step would cost a frame simulation per step). Without it (``--rollout_frames 0``, the
original's stage 2) the decoder drifts in closed loop (exposure bias). What the linear
surrogate costs is measured by fine-tuning: ``--finetune_round2 N --finetune_rollout
spiking`` adds N epochs whose rollouts run through the stateful spiking net itself
(``flyenv.training.whole_brain_fitting.SpikingNetRollout``), ``--finetune_rollout linear``
the same N epochs through the surrogate (the control with the same budget).

Stateful (``--stateful``, the default; issue 16): the spiking net carries V, I,
refractoriness and the spikes in flight from one frame into the next in training (parallel
chunks of ``--chunk_frames`` after ``--burn_in_frames``, gradient truncated at each
frame's start), in eval1 (the whole recording, state carried from frame 0) and in
evaluation (from rest at the test window's start; prediction = mean of
``--eval_replicas`` copies). ``--no-stateful`` is the original's memoryless frame map.
``--connectome shuffled|lowrank_only`` (controls): the student on a degree-preserving
shuffle of the connectome or on its learnable low-rank term alone. ``--encoder home_tied``
(with ``--n_rank 0``: a student that cannot absorb the wiring) shares the input weights
among the neurons of each home neuropil; ``--recording clean`` fits a synthetic
teacher's clean rates instead of its fluorescence; ``--init teacher`` starts the student
at the teacher's parameters (diagnostics; docs/results/whole_brain.md). ``--epoch_round2 0``
skips stage 2 and scores the spiking net alone. On a synthetic brain the student adopts
the teacher's dt and mV per synapse, and ``evaluation_stats.json`` reports ``recovery``
(Pearson r of drive weights, bias and low-rank term with the teacher's).

Data: ``--data-dir`` holds real FlyWire files + ``ito_{id}.npz``. Without it, the
synthetic brain of ``--synthetic_scale`` is generated once (cached) and used
(``neural_activity_id`` = "synthetic"); its hidden teacher gives the known answer.

CPU scale-downs (documented deviations from the original's defaults, all overridable):
``--batch_size 32`` (original 128), ``--epoch_round1 20`` (500), ``--epoch_round2 400`` (1000),
and ``--sim_ms_per_frame``: the synthetic default simulates 100 ms per frame (the original's
1/1.2 Hz = 833 ms frame is used for real data). ``--etrace_decay`` sets the truncated-BPTT
window to 1/(1 - decay) steps (0.99 -> 100 steps = 20 ms; memory does not grow with the
frame length); ``--tbptt_window`` overrides it. ``--devices`` is accepted for CLI
compatibility (CPU run; on a GPU pass ``--device cuda``).

Flags (``--help``): the fields of ``Args`` below, dashed (``--epoch-round1``), and every
published underscored spelling (``--epoch_round1``, ``--data_dir``) too; ``--scenario``
reads the same fields from a TOML file (defaults < scenario < flags; for a resumed
``--filepath``, the run's saved settings < scenario < flags).

``--stage2_input zeros|shuffled`` (a control, our addition): the stage-2 decoder is
trained and evaluated on zeros, or on the spiking net's output with its frames permuted in
time, instead of the net's output; it writes its own decoder, losses and
evaluation_stats-<kind>-input files into the same run folder (``--mode train2`` then
``--mode evaluate`` on a finished run reuses stage 1).

Outputs in ``--filepath`` (auto: runs/whole_brain/v4_2/<settings>#<time>):
first-round-checkpoint.pt, second-round-rnn-checkpoint-v1.pt (torch instead of
msgpack), simulated_neuropil_fr.npy, first-round-losses.txt (settings on its first
line: ``--filepath`` reloads them), second-round-losses.txt, evaluation_stats.txt
(+ .json), neuropil_fr_predictions.npy, images/, evaluation_plots/. Every epoch also
writes a resumable state (first-round-state.pt, second-round-rnn-state-v1.pt): a killed
run continues at the next epoch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from flyenv.brains.whole_brain.controls import (
    CONNECTOMES,
    connectome_control,
    load_teacher_parameters,
    recovery_scores,
)
from flyenv.brains.whole_brain.network import (
    WholeBrainConfig,
    WholeBrainLIF,
    window_from_etrace_decay,
)
from flyenv.config import cli, explicit_fields
from flyenv.connectome.synthetic_whole_brain import (
    SCALES,
    SYNTHETIC_ID,
    ensure_synthetic,
)
from flyenv.connectome.whole_brain_data import load_whole_brain_data
from flyenv.evaluation.whole_brain_baselines import (
    MeanBaseline,
    RidgeARSelection,
    select_ridge_ar,
)
from flyenv.io import atomic_write
from flyenv.metrics.whole_brain import all_metrics, rate_bins
from flyenv.training.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from flyenv.training.whole_brain_fitting import (
    LOSSES,
    STAGE2_INPUTS,
    LinearAR,
    RateDecoder,
    SpikingNetRollout,
    closed_loop,
    control_input,
    fit_spiking_surrogate,
    persistence_closed_loop,
    simulate_stateful,
    simulate_teacher_forced,
    teacher_forced,
    train_round1_epoch,
    train_round1_stateful_epoch,
    train_round2_epoch,
)
from flyenv.viz.whole_brain_plots import evaluation_plots, training_barplot

# settings that define the model and data: saved in first-round-losses.txt, reloaded
# from it when --filepath points at an existing run
SETTINGS = (
    "flywire_version", "neural_activity_id", "data_dir", "synthetic_scale", "bin_size",
    "max_firing_rate", "scale_factor", "n_rank", "dt", "sim_ms_per_frame",
    "sim_before_train", "seed", "split", "loss_fn", "etrace_decay", "tbptt_window",
    "input_style", "n_hidden", "warmup_frames", "noise_sigma", "seq_len", "rollout_frames",
    "stateful", "connectome", "chunk_frames", "burn_in_frames", "eval_replicas", "encoder",
    "recording", "init", "train_replicas",
)  # fmt: skip


@dataclass
class Args:
    """The original's flags (underscored spellings such as ``--epoch_round1`` are accepted
    beside tyro's dashed ``--epoch-round1``)."""

    scenario: str | None = None
    """TOML of these fields; explicit flags override it."""
    # dataset
    flywire_version: Literal["630", "783"] = "630"
    """FlyWire materialization."""
    neural_activity_id: str = "2017-10-26_1"
    """Recording id (ito_<id>.npz); the synthetic brain uses 'synthetic'."""
    bin_size: float = 0.25
    """Rate bin size (Hz)."""
    devices: str = "0"
    """GPU ids (accepted for compatibility; see --device)."""
    device: str = "cpu"
    """Torch device, e.g. cpu or cuda."""
    data_dir: str | None = None
    """Folder with the FlyWire tables and ito_<id>.npz (default: synthetic brain)."""
    synthetic_scale: str = "default"
    """Size of the synthetic brain (flyenv.connectome.synthetic_whole_brain.SCALES)."""
    # workflow
    mode: Literal["all", "train1", "eval1", "train2", "evaluate"] = "all"
    """Stages to run."""
    filepath: str | None = None
    """Run folder (default: auto-generated); an existing one reloads its settings."""
    # training
    epoch_round1: int = 20
    """Stage-1 epochs (original default 500; CPU scale-down)."""
    epoch_round2: int = 400
    """Stage-2 epochs (original default 1000; CPU scale-down)."""
    batch_size: int = 32
    """Batch size (original default 128; CPU scale-down)."""
    lr: float = 0.01
    """Stage-1 learning rate."""
    lr_round2: float = 0.001
    """Stage-2 learning rate."""
    # model
    etrace_decay: float = 0.99
    """Memory of the gradient: truncated-BPTT window = 1/(1-decay) steps; 0 = one step."""
    tbptt_window: int | None = None
    """Override the truncated-BPTT window (steps)."""
    scale_factor: float = 0.000825
    """mV per synapse."""
    n_rank: int = 20
    """Rank of the low-rank weight correction (0: none)."""
    recording: Literal["observed", "clean"] = "observed"
    """Synthetic brain only: fit and score the preprocessed fluorescence ("observed") or
    the hidden teacher's clean rates ("clean": a diagnostic with a perfect observation
    model)."""
    init: Literal["default", "teacher"] = "default"
    """Student's starting point: PyTorch's initialisation, or (synthetic brains only) the
    hidden teacher's drive weights, bias and low-rank factors (a diagnostic: does the fit
    stay at the teacher, and does the teacher's wiring then beat a shuffle?)."""
    encoder: Literal["free", "home_tied"] = "free"
    """Input weights: a row per neuron (the original's) or one row shared by the neurons of
    each home neuropil (a model choice with P x P weights the neuropil data can constrain;
    flyenv.brains.whole_brain.network)."""
    n_hidden: int = 256
    """GRU hidden units of the stage-2 decoder."""
    sim_before_train: float = 0.1
    """Simulated warm-up before training (fraction of a frame)."""
    noise_sigma: float = 0.05
    """Stage-2 input noise, in units of 10 Hz."""
    max_firing_rate: float = 100.0
    """Rate ceiling (Hz)."""
    loss_fn: str = "mse"
    """Stage-2 loss (flyenv.training.whole_brain_fitting.LOSSES)."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    # advanced
    dt: float = 0.2
    """Integration step (ms)."""
    seed: int = 2025
    """Seed."""
    input_style: Literal["v1", "v2"] = "v1"
    """How frames drive the network."""
    split: float = 0.6
    """Training fraction of the frames."""
    sim_ms_per_frame: float | None = None
    """Simulated ms per frame (default: the synthetic brain's 100 ms, else 1000/fps of the
    recording, 833 ms at 1.2 Hz)."""
    warmup_frames: int = 10
    """Teacher-forced frames before closed loop."""
    seq_len: int = 32
    """Stage-2 teacher-forced sub-sequence length."""
    rollout_frames: int = 30
    """Stage 2: frames of closed loop after each sub-sequence (through a linear surrogate
    of the spiking net)."""
    finetune_round2: int = 0
    """Stage 2: epochs after the --epoch_round2 ones whose closed-loop rollouts run through
    --finetune_rollout (at the learning rate reached by then; the checkpoint is chosen
    among these epochs only). 0: none."""
    finetune_rollout: Literal["linear", "spiking"] = "spiking"
    """Rollouts of the fine-tuning epochs: 'spiking', the stateful spiking net itself (one
    frame simulation of batch_size copies per rollout step, no gradient through the net),
    or 'linear', the same linear surrogate as before (the control with the same budget)."""
    stage2_input: str = "spiking"
    """Control: feed the stage-2 decoder zeros or the spiking output shuffled in time
    instead of the spiking net's output (training and evaluation; own decoder files)."""
    stateful: bool = True
    """Carry the spiking net's state (V, I, refractoriness, spikes in flight) from frame
    to frame in training, simulation and evaluation (--no-stateful: every frame from
    rest, the original's memoryless frame map)."""
    chunk_frames: int = 30
    """Stateful stage 1: frames per parallel training sequence (one optimiser step per
    frame; the gradient is truncated at each frame's start)."""
    burn_in_frames: int = 5
    """Stateful stage 1: teacher-forced frames without gradient that set each training
    sequence's state before it is scored."""
    train_replicas: int = 1
    """Stateful stage 1: copies of each training chunk run side by side whose mean rates
    are scored (1: one noisy sample, whose own spiking variance the loss then also
    penalises; K copies divide that term by K at K times the cost)."""
    eval_replicas: int = 8
    """Stateful simulation and evaluation: copies of the net run side by side (own Poisson
    kicks and state) whose mean rates are the prediction (1: one noisy sample)."""
    connectome: str = "true"
    """Control: the student's wiring, 'true', 'shuffled' (degree-preserving) or
    'lowrank_only' (no sparse connectome, the learnable low-rank term only)."""
    threads: int = 1
    """Torch threads."""
    progress: bool = True
    """Progress bars (--no-progress hides them)."""


def parse_args(argv: list[str] | None = None) -> Args:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    args = cli(Args, argv, description=__doc__, agent="whole_brain_fitting")
    for name, allowed in (
        ("synthetic_scale", sorted(SCALES)),
        ("loss_fn", list(LOSSES)),
        ("stage2_input", list(STAGE2_INPUTS)),
        ("connectome", list(CONNECTOMES)),
    ):
        if getattr(args, name) not in allowed:
            raise SystemExit(
                f"error: --{name} must be one of {allowed}, got {getattr(args, name)!r}"
            )
    args.explicit = explicit_fields(argv, Args)
    return args


# --------------------------------------------------------------------------- run folder
def auto_filepath(args: Args) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    parts = [
        args.flywire_version, args.neural_activity_id, f"{args.max_firing_rate}Hz",
        args.etrace_decay, args.loss_fn, f"{args.scale_factor:.6f}", args.n_rank,
        args.sim_before_train, args.seed, args.bin_size, stamp,
    ]  # fmt: skip
    return Path("runs/whole_brain/v4_2") / "#".join(str(p) for p in parts)


def settings_line(args: Args) -> str:
    return "# settings = " + json.dumps({k: getattr(args, k) for k in SETTINGS})


def load_settings(args: Args, run: Path) -> None:
    path = run / "first-round-losses.txt"
    if not path.exists():
        return
    first = path.read_text().splitlines()[0]
    if not first.startswith("# settings = "):
        raise ValueError(
            f"{path}: first line is not a settings line; was it written by this agent?"
        )
    saved = json.loads(first[len("# settings = ") :])
    for k, v in saved.items():
        if k in args.explicit and getattr(args, k) != v:
            print(f"note: --{k} {getattr(args, k)} overrides the run's saved {v}")
            continue
        setattr(args, k, v)
    args.loaded = tuple(saved)
    print(f"loaded settings from {path}")


def log(path: Path, line: str) -> None:
    tqdm.write(line)
    with open(path, "a") as fh:
        fh.write(line + "\n")


# --------------------------------------------------------------------------- set-up
def prepare_data(args: Args):
    if args.data_dir is None:
        cfg = replace(SCALES[args.synthetic_scale], flywire_version=args.flywire_version)
        data_dir = (
            Path("runs/whole_brain/data")
            / f"synthetic_{args.synthetic_scale}_{args.flywire_version}"
        )
        ensure_synthetic(data_dir, cfg, args.progress)
        args.neural_activity_id = SYNTHETIC_ID
        args.data_dir = str(data_dir)
    data = load_whole_brain_data(
        args.data_dir, args.flywire_version, args.neural_activity_id, args.max_firing_rate
    )
    if args.recording == "clean":
        if data.teacher_rates_hz is None:
            raise SystemExit(
                "error: --recording clean needs a synthetic brain's teacher_synthetic.npz "
                f"in {args.data_dir}; real recordings have only --recording observed"
            )
        data = replace(data, rates_hz=np.clip(data.teacher_rates_hz, 0.0, args.max_firing_rate))
    if args.sim_ms_per_frame is None:
        args.sim_ms_per_frame = float(data.meta.get("frame_ms", 1000.0 / data.fps))
    if "generator_version" in data.meta:
        # a synthetic brain: the student is of the teacher's class (its integration step,
        # mV per synapse and, for a stateful teacher, no per-frame warm-up) unless a flag
        # or the run's saved settings say otherwise
        adopt = {"dt": data.meta.get("dt_ms"), "scale_factor": data.meta.get("scale_factor_mv")}
        if data.meta.get("stateful"):
            adopt["sim_before_train"] = 0.0
        for k, v in adopt.items():
            if v is not None and k not in args.explicit and k not in getattr(args, "loaded", ()):
                setattr(args, k, v)
    if args.tbptt_window is None:
        args.tbptt_window = window_from_etrace_decay(args.etrace_decay)
    return data


def build_model(args: Args, data) -> WholeBrainLIF:
    torch.manual_seed(args.seed)
    cfg = WholeBrainConfig(
        dt_ms=args.dt,
        scale_factor_mv=args.scale_factor,
        n_rank=args.n_rank,
        encoder=args.encoder,
        frame_ms=args.sim_ms_per_frame,
        warmup_fraction=args.sim_before_train,
    )
    signed = connectome_control(data.signed_counts, args.connectome, args.seed + 13)
    model = WholeBrainLIF(signed, data.readout_counts, cfg)
    if args.init == "teacher":
        teacher = Path(args.data_dir) / "teacher_synthetic.npz"
        if not teacher.is_file():
            raise SystemExit(f"error: --init teacher needs {teacher} (a synthetic brain)")
        load_teacher_parameters(model, teacher)
    return model.to(args.device)


def stage2_suffix(args) -> str:
    """File-name tag of a stage-2 variant (control input, fine-tuning); '' for the default."""
    control = "" if args.stage2_input == "spiking" else f"-{args.stage2_input}-input"
    if args.finetune_round2 > 0:
        control += f"-ft{args.finetune_round2}-{args.finetune_rollout}"
    return control


def decoder_name(args, kind: str) -> str:
    return f"second-round-rnn-{kind}-{args.input_style}{stage2_suffix(args)}.pt"


def stage2_replacement(args, sim: np.ndarray) -> np.ndarray | None:
    """The control's decoder input (None: the spiking net's output)."""
    return control_input(sim, args.stage2_input, args.seed + 11)


def main_name(args) -> str:
    if args.stage2_input == "spiking":
        return "model (spiking + GRU)"
    return f"GRU, {args.stage2_input} input"


# --------------------------------------------------------------------------- stages
def train1(args, run: Path, data, model: WholeBrainLIF) -> None:
    losses_path = run / "first-round-losses.txt"
    state_path = run / "first-round-state.pt"
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr)
    start, best = 0, float("inf")
    if state_path.exists():
        st = load_checkpoint(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        set_rng_state(st["rng"])
        start, best = st["epoch"] + 1, st["best_loss"]
        print(f"resuming round 1 at epoch {start}")
    if not losses_path.exists():
        log(losses_path, settings_line(args))
    train_frames, _ = data.split(args.split)
    bins = rate_bins(data.rates_hz.max(), args.bin_size, args.max_firing_rate)
    for epoch in tqdm(range(start, args.epoch_round1), desc="round 1", disable=not args.progress):
        t0 = time.perf_counter()
        if args.stateful:
            loss, sim, tgt = train_round1_stateful_epoch(
                model, opt, data.rates_hz, int(train_frames[-1]) + 2, args.chunk_frames,
                args.burn_in_frames, args.loss_fn, args.tbptt_window, args.grad_clip,
                seed=args.seed * 1000 + epoch, progress=args.progress,
                replicas=args.train_replicas,
            )  # fmt: skip
        else:
            loss, sim, tgt = train_round1_epoch(
                model, opt, data.rates_hz, train_frames, args.batch_size, args.loss_fn,
                args.tbptt_window, args.grad_clip, seed=args.seed * 1000 + epoch,
                progress=args.progress,
            )  # fmt: skip
        acc = all_metrics(sim, tgt, bins)["bin_accuracy"]
        log(
            losses_path,
            f"epoch = {epoch}, loss = {loss:.5f}, bin acc = {acc:.5f}, lr = {args.lr:.6f}, "
            f"time = {time.perf_counter() - t0:.2f}s",
        )
        training_barplot(
            run / "images" / f"neuropil_fr-at-epoch-{epoch}.png", sim, tgt, data.neuropils
        )
        if loss < best:
            best = loss
            save_checkpoint(run / "first-round-checkpoint.pt",
                            {"model": model.state_dict(), "epoch": epoch, "loss": loss,
                             "neuropils": data.neuropils})  # fmt: skip
        save_checkpoint(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                     "epoch": epoch, "best_loss": best, "rng": rng_state()})  # fmt: skip


def load_round1(run: Path, model: WholeBrainLIF) -> None:
    model.load_state_dict(load_checkpoint(run / "first-round-checkpoint.pt")["model"])


def eval1(args, run: Path, data, model: WholeBrainLIF) -> np.ndarray:
    load_round1(run, model)
    if args.stateful:  # the whole recording teacher-forced, the state carried from frame 0
        sim = simulate_stateful(
            model, data.rates_hz, 0, data.n_frames, args.seed + 1, None,
            args.max_firing_rate, args.progress, args.eval_replicas,
        )  # fmt: skip
    else:
        sim = simulate_teacher_forced(
            model, data.rates_hz, args.batch_size, args.seed + 1, args.progress
        )

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, sim)

    atomic_write(run / "simulated_neuropil_fr.npy", write)
    print(f"wrote simulated_neuropil_fr.npy {sim.shape} (row t = prediction of frame t+1)")
    return sim


def train2(args, run: Path, data, model: WholeBrainLIF | None = None) -> None:
    sim = np.load(run / "simulated_neuropil_fr.npy")
    replacement = stage2_replacement(args, sim)
    if replacement is not None:
        sim = replacement
    torch.manual_seed(args.seed + 2)
    decoder = RateDecoder(len(data.neuropils), args.n_hidden, args.input_style).to(args.device)
    opt = torch.optim.Adam(decoder.parameters(), lr=args.lr_round2)
    sched = torch.optim.lr_scheduler.StepLR(
        opt, step_size=max(1, args.epoch_round2 // 4), gamma=0.5
    )
    state_path = run / decoder_name(args, "state")
    losses_path = run / f"second-round-losses{stage2_suffix(args)}.txt"
    start, best = 0, float("inf")
    if state_path.exists():
        st = load_checkpoint(state_path)
        decoder.load_state_dict(st["decoder"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        set_rng_state(st["rng"])
        start, best = st["epoch"] + 1, st["best_loss"]
        print(f"resuming round 2 at epoch {start}")
    train_frames, _ = data.split(args.split)
    surrogate = fit_spiking_surrogate(sim, data.rates_hz, train_frames)
    bins = torch.as_tensor(rate_bins(data.rates_hz.max(), args.bin_size, args.max_firing_rate),
                           dtype=torch.float32)  # fmt: skip
    n_epochs = args.epoch_round2 + args.finetune_round2
    net_rollout = None
    if args.finetune_round2 > 0 and args.finetune_rollout == "spiking" and start < n_epochs:
        if not args.stateful or model is None:
            raise ValueError("--finetune_rollout spiking needs the stateful spiking net")
        load_round1(run, model)
        net_rollout = SpikingNetRollout(
            model, data.rates_hz, int(train_frames[-1]), args.seed + 13, args.max_firing_rate
        )
    for epoch in tqdm(range(start, n_epochs), desc="round 2", disable=not args.progress):
        finetune = epoch >= args.epoch_round2
        if finetune and epoch == args.epoch_round2:
            best = float("inf")  # the checkpoint comes from the fine-tuning epochs
        loss = train_round2_epoch(
            decoder, opt, sim, data.rates_hz, train_frames, bins, args.batch_size, args.seq_len,
            args.noise_sigma * 10.0, args.grad_clip, seed=args.seed * 1000 + epoch,
            rollout=args.rollout_frames, surrogate=surrogate,
            net_rollout=net_rollout if finetune else None,
        )  # fmt: skip
        if not finetune:
            sched.step()
        log(losses_path, f"epoch = {epoch}, bin-interval loss = {loss:.5f}, "
                         f"lr = {sched.get_last_lr()[0]:.6f}")  # fmt: skip
        if loss < best:
            best = loss
            save_checkpoint(
                run / decoder_name(args, "checkpoint"),
                {"decoder": decoder.state_dict(), "epoch": epoch, "loss": loss},
            )
        save_checkpoint(state_path, {"decoder": decoder.state_dict(), "optimizer": opt.state_dict(),
                                     "scheduler": sched.state_dict(), "epoch": epoch,
                                     "best_loss": best, "rng": rng_state()})  # fmt: skip


def evaluate(args, run: Path, data, model: WholeBrainLIF) -> dict:
    r = data.rates_hz
    train_frames, test_frames = data.split(args.split)
    start, end, w = int(test_frames[0]), data.n_frames, args.warmup_frames
    if start + w >= end - 1:
        raise ValueError(f"--warmup_frames {w} leaves no closed-loop test frame; lower it")
    bins = rate_bins(r.max(), args.bin_size, args.max_firing_rate)
    truth = r[start + w : end]
    frames = np.arange(start + w, end)
    seed = args.seed + 7
    untrained = build_model(args, data)  # same seed -> the fitted model's initial state
    load_round1(run, model)
    decoder = None  # without stage 2 (--epoch_round2 0) the spiking net alone is scored
    if args.epoch_round2 > 0:
        decoder = RateDecoder(len(data.neuropils), args.n_hidden, args.input_style)
        state = load_checkpoint(run / decoder_name(args, "checkpoint"))["decoder"]
        decoder.load_state_dict(state)
        decoder.to(args.device).eval()
    st = args.stateful
    k = args.eval_replicas if st else 1  # mean of k copies of the stateful net
    ar = LinearAR.fit(r, train_frames)
    # baselines fitted on training frames only; ridge AR's order and strength chosen on
    # their last 20 % (flyenv.evaluation.whole_brain_baselines)
    n_train = int(train_frames[-1]) + 2
    ridge_ar, _ = select_ridge_ar(r, n_train, w, RidgeARSelection(), args.max_firing_rate)
    mean = MeanBaseline.fit(r, n_train)
    rep = None
    if args.stage2_input != "spiking":
        rep = stage2_replacement(args, np.load(run / "simulated_neuropil_fr.npy"))
    name = main_name(args) if decoder is not None else "spiking net alone"
    preds = {
        name: closed_loop(model, decoder, r, start, end, w, seed, args.max_firing_rate, args.progress, rep, st, k),
        "spiking net alone": closed_loop(model, None, r, start, end, w, seed, args.max_firing_rate, args.progress, stateful=st, replicas=k),
        "untrained spiking net": closed_loop(untrained, None, r, start, end, w, seed, args.max_firing_rate, args.progress, stateful=st, replicas=k),
        "persistence": persistence_closed_loop(r, start, end, w),
        "linear AR": ar.closed_loop(r, start, end, w, args.max_firing_rate),
        f"ridge AR({ridge_ar.order})": ridge_ar.predict(r, start, end, w),
        "training mean": mean.predict(r, start, end, w),
    }  # fmt: skip
    one_step_frames = test_frames
    one_truth = r[one_step_frames + 1]
    one_step = {
        name: teacher_forced(
            model, decoder, r, one_step_frames, seed, replacement=rep, stateful=st, replicas=k
        ),
        "spiking net alone": teacher_forced(
            model, None, r, one_step_frames, seed, stateful=st, replicas=k
        ),
        "untrained spiking net": teacher_forced(
            untrained, None, r, one_step_frames, seed, stateful=st, replicas=k
        ),
        "persistence": r[one_step_frames],
        "linear AR": ar.step(r[one_step_frames]),
        f"ridge AR({ridge_ar.order})": ridge_ar.predict(r, start, end, None),
        "training mean": mean.predict(r, start, end, None),
    }
    stats = {
        "main_predictor": name,
        "stateful": st,
        "eval_replicas": k,
        "connectome": args.connectome,
        "encoder": args.encoder,
        "recording": args.recording,
        "init": args.init,
        "train_replicas": args.train_replicas,
        "ridge_ar": {"order": ridge_ar.order, "ridge": ridge_ar.ridge},
        "closed_loop": {k: all_metrics(v, truth, bins) for k, v in preds.items()},
        "teacher_forced_one_step": {k: all_metrics(v, one_truth, bins) for k, v in one_step.items()},
        "frames": {"test_start": start, "warmup": w, "closed_loop_first": int(frames[0]),
                   "closed_loop_last": int(frames[-1]), "n_bins": len(bins)},
    }  # fmt: skip
    if data.teacher_rates_hz is not None:  # the known answer of a synthetic brain
        clean = data.teacher_rates_hz[start + w : end]
        stats["teacher_recovery_closed_loop"] = {
            k: all_metrics(v, clean, bins) for k, v in preds.items()
        }
        clean_next = data.teacher_rates_hz[one_step_frames + 1]
        stats["teacher_recovery_one_step"] = {
            k: all_metrics(v, clean_next, bins) for k, v in one_step.items()
        }
    teacher_path = Path(args.data_dir) / f"teacher_{args.neural_activity_id}.npz"
    if teacher_path.is_file():  # the synthetic teacher's parameters: score their recovery
        stats["recovery"] = recovery_scores(model, teacher_path)
        stats["recovery_untrained"] = recovery_scores(untrained, teacher_path)
    main = preds[name]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, main)

    suffix = stage2_suffix(args)
    atomic_write(run / f"neuropil_fr_predictions{suffix}.npy", write)
    lines = [f"# closed loop after {w} teacher-forced frames; frames {frames[0]}..{frames[-1]}"]
    sections = ("closed_loop", "teacher_forced_one_step", "teacher_recovery_closed_loop",
                "teacher_recovery_one_step")  # fmt: skip
    for section in sections:
        if section not in stats:
            continue
        lines.append(f"[{section}]")
        for k, m in stats[section].items():
            lines.append(f"{k:24s} bin acc = {m['bin_accuracy']:.4f} (all-zero "
                         f"{m['bin_accuracy_all_zero']:.4f}), MSE loss = {m['mse']:.4f}, "
                         f"correlation = {m['pearson']:.4f}, per-neuropil correlation = "
                         f"{m['pearson_per_neuropil']:.4f}")  # fmt: skip
    for key in ("recovery", "recovery_untrained"):
        if key in stats:
            lines.append(f"[{key}] " + ", ".join(f"{k} = {v:.4f}" for k, v in stats[key].items()))
    txt = "\n".join(lines) + "\n"
    atomic_write(run / f"evaluation_stats{suffix}.txt", lambda p: p.write_text(txt))
    js = json.dumps(stats, indent=2)
    atomic_write(run / f"evaluation_stats{suffix}.json", lambda p: p.write_text(js))
    evaluation_plots(run / f"evaluation_plots{suffix}", main, truth, data.neuropils, frames)
    print("\n".join(lines))
    return stats


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Path(args.filepath) if args.filepath else None
    if run is not None:
        load_settings(args, run)
    if args.finetune_round2 < 0:
        raise ValueError(f"--finetune_round2 must be >= 0, got {args.finetune_round2}")
    if args.finetune_round2 > 0 and args.finetune_rollout == "spiking" and not args.stateful:
        raise ValueError(
            "--finetune_rollout spiking runs the stateful spiking net; drop --no-stateful "
            "or use --finetune_rollout linear"
        )
    t0 = time.perf_counter()
    data = prepare_data(args)
    if run is None:
        run = auto_filepath(args)
    run.mkdir(parents=True, exist_ok=True)
    print(f"run folder: {run}  ({data.signed_counts.shape[0]} neurons, "
          f"{data.signed_counts.nnz} connections, {len(data.neuropils)} neuropils, "
          f"{data.n_frames} frames)")  # fmt: skip
    model = build_model(args, data)
    stats = None
    if args.mode in ("all", "train1"):
        train1(args, run, data, model)
    if args.mode in ("all", "eval1"):
        eval1(args, run, data, model)
    if args.mode in ("all", "train2"):
        train2(args, run, data, model)
    if args.mode in ("all", "evaluate"):
        stats = evaluate(args, run, data, model)
    print(f"done in {time.perf_counter() - t0:.1f} s; outputs in {run}")
    return stats


if __name__ == "__main__":
    main()
