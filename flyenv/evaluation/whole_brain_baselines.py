"""Baselines for whole-brain next-frame prediction, fitted on training frames only.

Every predictor here sees exactly what the fitted model sees in
``agents/whole_brain_fitting.py``: the true frames of a teacher-forced warm-up, then (closed
loop) its own predictions; one step ahead, the true frame t. History a predictor would need
from before the evaluated window (lags of an AR(p) with p > warm-up) is filled with the
per-neuropil training mean, so no predictor reads a frame the model does not.

- :class:`RidgeAR`: r_{t+1} = b + sum_k A_k r_{t-k}, k < p, ridge least squares; p and the
  ridge strength are chosen on a validation split (the last ``validation_fraction`` of the
  training frames, never a test frame), then refitted on all training frames;
- :class:`MeanBaseline`: the per-neuropil training mean (a constant);
- :class:`Persistence`: r_{t+1} = r_t (closed loop: the last warm-up frame, constant);
- :class:`GRUBaseline`: the model's stage-2 GRU decoder fed the frames themselves (no
  spiking input), hidden size and epochs chosen on the validation split.

:func:`baselines_cell` is a ``flyenv sweep`` cell: it generates a small synthetic brain and
recording for the seed, fits the baselines (optionally the two-stage model with reduced
epochs) and returns their metrics.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
from dataclasses import asdict, dataclass, replace
from typing import Protocol

import numpy as np

from flyenv.metrics.whole_brain import all_metrics, rate_bins


class Predictor(Protocol):
    def predict(
        self, rates_hz: np.ndarray, start: int, end: int, warmup: int | None
    ) -> np.ndarray: ...


def _check_window(rates_hz: np.ndarray, start: int, end: int, warmup: int | None) -> None:
    if not 0 <= start < end - 1 or end > len(rates_hz):
        raise ValueError(f"need 0 <= start < end - 1 <= len(rates) - 1, got {start}, {end}")
    if warmup is not None and not 1 <= warmup < end - start:
        raise ValueError(f"warmup must be in [1, {end - start - 1}], got {warmup}")


@dataclass
class RidgeAR:
    """r_{t+1} = b + W [r_t, r_{t-1}, ..., r_{t-p+1}] (ridge least squares).

    ``ridge`` is relative: the penalty is ``ridge * trace(X^T X) / n_features`` (X the
    centred lag features), so one grid of strengths suits any rate scale."""

    order: int
    ridge: float
    w: np.ndarray  # (P, order * P): lag k occupies columns k*P .. (k+1)*P - 1
    b: np.ndarray  # (P,)
    fill_hz: np.ndarray  # (P,) history before the window (training mean)
    max_rate_hz: float = 100.0

    @staticmethod
    def lag_features(rates_hz: np.ndarray, targets: np.ndarray, order: int) -> np.ndarray:
        """(len(targets), order * P): row i holds frames targets[i]-1, ..., targets[i]-order."""
        return np.concatenate([rates_hz[targets - 1 - k] for k in range(order)], axis=1)

    @classmethod
    def fit(
        cls,
        rates_hz: np.ndarray,
        targets: np.ndarray,
        order: int,
        ridge: float,
        max_rate_hz: float = 100.0,
    ) -> RidgeAR:
        """Fit on the frames ``targets`` (each needs ``order`` earlier frames)."""
        targets = np.asarray(targets)
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        if targets.min() - order < 0:
            raise ValueError(
                f"AR order {order} needs {order} frames before target frame {targets.min()}; "
                "start the targets later or lower the order"
            )
        r = np.asarray(rates_hz, np.float64)
        x, y = cls.lag_features(r, targets, order), r[targets]
        xm, ym = x.mean(0), y.mean(0)
        xc, yc = x - xm, y - ym
        g = xc.T @ xc
        lam = ridge * np.trace(g) / g.shape[0]
        w = np.linalg.solve(g + (lam + 1e-12) * np.eye(g.shape[0]), xc.T @ yc).T
        fill = r[: targets.max() + 1].mean(0)
        return cls(order, ridge, w, ym - w @ xm, fill, max_rate_hz)

    def step(self, history: np.ndarray) -> np.ndarray:
        """Next frame from ``history`` (order, P), newest row last."""
        x = history[::-1].reshape(-1)
        return np.clip(self.w @ x + self.b, 0.0, self.max_rate_hz)

    def predict(self, rates_hz: np.ndarray, start: int, end: int, warmup: int | None) -> np.ndarray:
        """Predictions of frames start+1 .. end-1 (``warmup`` None: every input true) or of
        start+warmup .. end-1 (closed loop after true frames start .. start+warmup-1)."""
        _check_window(rates_hz, start, end, warmup)
        hist = np.repeat(self.fill_hz[None], self.order, axis=0)
        out = []
        x = rates_hz[start]
        for t in range(start, end - 1):
            if warmup is None or t < start + warmup:
                x = rates_hz[t]
            hist = np.concatenate([hist[1:], np.asarray(x, np.float64)[None]])
            x = self.step(hist)
            if warmup is None or t + 1 >= start + warmup:
                out.append(x)
        return np.asarray(out, np.float32)


@dataclass(frozen=True)
class RidgeARSelection:
    """Grid of AR orders and relative ridge strengths, and the validation split."""

    orders: tuple[int, ...] = (1, 2, 3, 5, 10, 20)
    ridges: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    validation_fraction: float = 0.2
    """Last fraction of the training frames held out for the choice."""
    criterion: str = "closed_loop"
    """'closed_loop' (MSE of a closed-loop run over the validation frames after the warm-up,
    the test protocol) or 'one_step' (one-step MSE on them)."""

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.criterion not in ("closed_loop", "one_step"):
            raise ValueError(
                f"criterion must be 'closed_loop' or 'one_step', got {self.criterion!r}"
            )
        if not self.orders or min(self.orders) < 1 or not self.ridges or min(self.ridges) < 0:
            raise ValueError("orders must be >= 1 and ridges >= 0 (non-empty)")


def select_ridge_ar(
    rates_hz: np.ndarray,
    n_train: int,
    warmup: int,
    sel: RidgeARSelection = RidgeARSelection(),
    max_rate_hz: float = 100.0,
) -> tuple[RidgeAR, dict]:
    """Choose (order, ridge) on the last part of frames 0 .. n_train-1, refit on all of them.

    Returns the refitted model and the validation scores ({"order,ridge": mse})."""
    n_val = int(round(sel.validation_fraction * n_train))
    v0 = n_train - n_val  # first validation frame
    if n_val < warmup + 2:
        raise ValueError(
            f"validation part of {n_val} frames is shorter than warmup + 2 = {warmup + 2}; "
            "raise validation_fraction or lower warmup"
        )
    train_part = rates_hz[:v0]
    scores: dict[str, float] = {}
    best, best_key = np.inf, None
    for p in sel.orders:
        if v0 - p < p + 2:  # too few fitting targets for this order
            continue
        for lam in sel.ridges:
            m = RidgeAR.fit(train_part, np.arange(p, v0), p, lam, max_rate_hz)
            if sel.criterion == "closed_loop":
                pred = m.predict(rates_hz, v0, n_train, warmup)
                truth = rates_hz[v0 + warmup : n_train]
            else:
                pred = m.predict(rates_hz, v0, n_train, None)
                truth = rates_hz[v0 + 1 : n_train]
            s = float(np.mean((pred - truth) ** 2))
            scores[f"{p},{lam:g}"] = s
            if s < best:
                best, best_key = s, (p, lam)
    if best_key is None:
        raise ValueError(f"no AR order in {sel.orders} fits {v0} fitting frames")
    p, lam = best_key
    return RidgeAR.fit(rates_hz[:n_train], np.arange(p, n_train), p, lam, max_rate_hz), scores


@dataclass
class MeanBaseline:
    """The per-neuropil mean of the training frames, predicted for every frame."""

    mean_hz: np.ndarray

    @classmethod
    def fit(cls, rates_hz: np.ndarray, n_train: int) -> MeanBaseline:
        return cls(np.asarray(rates_hz[:n_train], np.float64).mean(0))

    def predict(self, rates_hz: np.ndarray, start: int, end: int, warmup: int | None) -> np.ndarray:
        _check_window(rates_hz, start, end, warmup)
        n = end - start - (1 if warmup is None else warmup)
        return np.repeat(self.mean_hz[None], n, axis=0).astype(np.float32)


class Persistence:
    """r_{t+1} = r_t; in closed loop it holds the last warm-up frame."""

    def predict(self, rates_hz: np.ndarray, start: int, end: int, warmup: int | None) -> np.ndarray:
        _check_window(rates_hz, start, end, warmup)
        if warmup is None:
            return np.asarray(rates_hz[start : end - 1], np.float32)
        n = end - (start + warmup)
        return np.repeat(rates_hz[start + warmup - 1][None], n, axis=0).astype(np.float32)


@dataclass(frozen=True)
class GRUSelection:
    """Grid of the GRU-alone baseline: hidden sizes and epoch counts, chosen by closed-loop
    MSE on the last ``validation_fraction`` of the training frames (fitted on the rest),
    then refitted on all training frames. Training is the model's stage 2
    (:func:`flyenv.training.whole_brain_fitting.train_round2_epoch`: bin-interval loss,
    input noise, closed-loop rollouts) with the frame itself as the input."""

    hidden: tuple[int, ...] = (32, 256)
    epochs: tuple[int, ...] = (25, 50, 100, 200)
    validation_fraction: float = 0.2
    batch_size: int = 32
    seq_len: int = 32
    rollout: int = 30
    lr: float = 1e-3
    noise_hz: float = 0.5
    bin_size_hz: float = 0.25


@dataclass
class GRUBaseline:
    """The stage-2 GRU decoder alone, no spiking input: r_{t+1} = ReLU(Linear(GRU(
    LayerNorm(r_t)))), the GRU's state carried through the window (from zero at its
    start), fed the true frames (one step / warm-up) then its own predictions."""

    decoder: object  # flyenv.training.whole_brain_fitting.RateDecoder
    n_hidden: int
    epochs: int
    max_rate_hz: float = 100.0

    @classmethod
    def fit(
        cls,
        rates_hz: np.ndarray,
        n_train: int,
        n_hidden: int,
        epoch_checkpoints: tuple[int, ...],
        sel: GRUSelection = GRUSelection(),
        seed: int = 0,
        max_rate_hz: float = 100.0,
    ) -> list[GRUBaseline]:
        """Train on frames 0 .. n_train-1; a copy of the model at each epoch count of
        ``epoch_checkpoints``."""
        import copy

        import torch

        from flyenv.training.whole_brain_fitting import LinearAR, RateDecoder, train_round2_epoch

        r = np.asarray(rates_hz[:n_train], np.float32)
        p = r.shape[1]
        torch.manual_seed(seed)
        dec = RateDecoder(p, n_hidden, "v1")
        with torch.no_grad():  # start at the training mean: a ReLU output at 0 learns nothing
            dec.out.bias.copy_(torch.as_tensor(r.mean(0)))
        opt = torch.optim.Adam(dec.parameters(), lr=sel.lr)
        identity = LinearAR(np.eye(p), np.zeros(p))  # the "surrogate" of the input: itself
        bins = torch.as_tensor(
            rate_bins(r.max(), sel.bin_size_hz, max_rate_hz), dtype=torch.float32
        )
        out = []
        for epoch in range(1, max(epoch_checkpoints) + 1):
            train_round2_epoch(
                dec, opt, r, r, np.arange(0, n_train - 1), bins, sel.batch_size, sel.seq_len,
                sel.noise_hz, 1.0, seed=seed * 1000 + epoch, rollout=sel.rollout,
                surrogate=identity,
            )  # fmt: skip
            if epoch in epoch_checkpoints:
                out.append(cls(copy.deepcopy(dec).eval(), n_hidden, epoch, max_rate_hz))
        return out

    def predict(self, rates_hz: np.ndarray, start: int, end: int, warmup: int | None) -> np.ndarray:
        import torch

        _check_window(rates_hz, start, end, warmup)
        h, out = None, []
        x = torch.as_tensor(rates_hz[start : start + 1], dtype=torch.float32)
        with torch.no_grad():
            for t in range(start, end - 1):
                if warmup is None or t < start + warmup:
                    x = torch.as_tensor(rates_hz[t : t + 1], dtype=torch.float32)
                y, h = self.decoder(x[:, None, :], h)
                x = y[:, 0].clamp(0.0, self.max_rate_hz)
                if warmup is None or t + 1 >= start + warmup:
                    out.append(x[0].numpy())
        return np.asarray(out, np.float32)


def select_gru(
    rates_hz: np.ndarray,
    n_train: int,
    warmup: int,
    sel: GRUSelection = GRUSelection(),
    seed: int = 0,
    max_rate_hz: float = 100.0,
) -> tuple[GRUBaseline, dict]:
    """Choose (hidden, epochs) by closed-loop MSE on the last part of frames 0..n_train-1
    (fitted on the part before it), refit on all of them. Returns it and the scores."""
    n_val = int(round(sel.validation_fraction * n_train))
    v0 = n_train - n_val
    if n_val < warmup + 2:
        raise ValueError(f"validation part of {n_val} frames is shorter than warmup + 2")
    scores: dict[str, float] = {}
    best, best_key = np.inf, None
    for hid in sel.hidden:
        for m in GRUBaseline.fit(rates_hz, v0, hid, sel.epochs, sel, seed, max_rate_hz):
            pred = m.predict(rates_hz, v0, n_train, warmup)
            s = float(np.mean((pred - rates_hz[v0 + warmup : n_train]) ** 2))
            scores[f"{hid},{m.epochs}"] = s
            if s < best:
                best, best_key = s, (hid, m.epochs)
    hid, ep = best_key
    (model,) = GRUBaseline.fit(rates_hz, n_train, hid, (ep,), sel, seed, max_rate_hz)
    return model, scores


@dataclass
class TeacherOracle:
    """The synthetic teacher's own network (its drive weights, bias and low-rank factors
    from ``teacher_synthetic.npz``, its dt and mV per synapse) on the true connectome or a
    control wiring, run statefully from rest at the window's start and fed the frames
    (not the hidden drive), predicting the mean of ``replicas`` copies (as the student is
    scored): what a student that recovered every parameter exactly would predict. A diagnostic ceiling, not a baseline: it is given the answer."""

    model: object  # WholeBrainLIF
    seed: int
    max_rate_hz: float = 100.0
    replicas: int = 8

    @classmethod
    def load(
        cls, data_dir, data, connectome: str, seed: int, max_rate_hz: float = 100.0, replicas=8
    ):
        import dataclasses

        from flyenv.brains.whole_brain.controls import connectome_control, load_teacher_parameters
        from flyenv.brains.whole_brain.network import WholeBrainLIF
        from flyenv.connectome.synthetic_whole_brain import SyntheticBrainConfig, teacher_config

        names = {f.name for f in dataclasses.fields(SyntheticBrainConfig)}
        cfg = SyntheticBrainConfig(**{k: v for k, v in data.meta.items() if k in names})
        signed = connectome_control(data.signed_counts, connectome, seed + 13)
        model = WholeBrainLIF(signed, data.readout_counts, teacher_config(cfg))
        load_teacher_parameters(model, pathlib.Path(data_dir) / "teacher_synthetic.npz")
        return cls(model, seed, max_rate_hz, replicas)

    def predict(self, rates_hz: np.ndarray, start: int, end: int, warmup: int | None) -> np.ndarray:
        from flyenv.training.whole_brain_fitting import simulate_stateful

        _check_window(rates_hz, start, end, warmup)
        return simulate_stateful(
            self.model, np.asarray(rates_hz, np.float32), start, end, self.seed + 7, warmup,
            self.max_rate_hz, progress=False, replicas=self.replicas,
        )  # fmt: skip


def evaluate_predictor(
    pred: Predictor, rates_hz: np.ndarray, start: int, end: int, warmup: int, bins: np.ndarray
) -> dict[str, dict[str, float]]:
    """Metrics one step ahead (frames start+1 .. end-1 from true inputs) and in closed loop
    (frames start+warmup .. end-1), the frames the fitted model is scored on."""
    one = pred.predict(rates_hz, start, end, None)
    cl = pred.predict(rates_hz, start, end, warmup)
    return {
        "one_step": all_metrics(one, rates_hz[start + 1 : end], bins),
        "closed_loop": all_metrics(cl, rates_hz[start + warmup : end], bins),
    }


def fit_baselines(
    rates_hz: np.ndarray,
    n_train: int,
    warmup: int,
    max_rate_hz: float = 100.0,
    sel: RidgeARSelection = RidgeARSelection(),
    gru: GRUSelection | None = None,
) -> dict[str, tuple[Predictor, dict]]:
    """{name: (predictor, facts about its fit)}, everything from frames 0 .. n_train-1
    (``gru``: also the GRU-alone baseline, chosen on the same validation split)."""
    ar, scores = select_ridge_ar(rates_hz, n_train, warmup, sel, max_rate_hz)
    ar1 = RidgeAR.fit(rates_hz[:n_train], np.arange(1, n_train), 1, 1e-3, max_rate_hz)
    out = {
        "ridge_ar": (ar, {"order": ar.order, "ridge": ar.ridge, "n_candidates": len(scores)}),
        "linear_ar1": (ar1, {"order": 1, "ridge": 1e-3}),
        "train_mean": (MeanBaseline.fit(rates_hz, n_train), {}),
        "persistence": (Persistence(), {}),
    }
    if gru is not None:
        g, _ = select_gru(rates_hz, n_train, warmup, gru, 0, max_rate_hz)
        out["gru_alone"] = (g, {"n_hidden": g.n_hidden, "epochs": g.epochs})
    return out


# --------------------------------------------------------------------------- sweep cell
SMALL_BRAIN: dict = {}
"""Overrides of the synthetic ``default`` scale for the cell (none: 2,000 neurons, 24
neuropils, 400 frames of 100 ms, generated in ~6 s; the seed replaces its seed 0)."""


def _synthetic_data(config: dict, seed: int):
    from flyenv.connectome.synthetic_whole_brain import SCALES, SYNTHETIC_ID, ensure_synthetic
    from flyenv.connectome.whole_brain_data import load_whole_brain_data
    from flyenv.envs.offline.whole_brain_activity import default_cache_dir

    brain = {**SMALL_BRAIN, **config.get("brain", {})}
    syn = replace(SCALES["default"], seed=int(seed), **brain)
    key = hashlib.sha1(json.dumps(asdict(syn), sort_keys=True).encode()).hexdigest()[:10]
    data_dir = default_cache_dir() / f"sweep_seed{seed}_{key}"
    ensure_synthetic(data_dir, syn, progress=False)
    max_rate = float(config.get("max_firing_rate_hz", 100.0))
    return data_dir, load_whole_brain_data(data_dir, syn.flywire_version, SYNTHETIC_ID, max_rate)


def baselines_cell(config: dict, seed: int, run_dir: pathlib.Path) -> dict:
    """One predictor (``config["predictor"]``) on the synthetic brain of ``seed``.

    ``predictor``: ridge_ar | linear_ar1 | train_mean | persistence | gru_alone (the
    stage-2 GRU on the frames alone, :func:`select_gru`) | model (the two-stage fit of
    ``agents/whole_brain_fitting.py`` with ``epoch_round1`` / ``epoch_round2`` epochs) |
    student (the stateful spiking net alone on ``connectome`` true | shuffled |
    lowrank_only, ``epoch_round1`` epochs, with ``recovery.*`` of the teacher's
    parameters) | teacher_oracle (:class:`TeacherOracle`: the teacher's own parameters,
    fed the frames, on ``connectome``). ``data``: observed (the preprocessed recording,
    default) or clean (the teacher's clean rates: a diagnostic). Other keys: ``split`` (0.6), ``warmup_frames`` (10), ``bin_size_hz`` (0.25),
    ``brain`` (overrides of :data:`SMALL_BRAIN`), ``ar_criterion``. Returns
    ``one_step.*`` and ``closed_loop.*`` metrics (see :func:`all_metrics`)."""
    import torch

    torch.set_num_threads(1)
    name = config.get("predictor", config.get("name"))
    split = float(config.get("split", 0.6))
    warmup = int(config.get("warmup_frames", 10))
    max_rate = float(config.get("max_firing_rate_hz", 100.0))
    data_dir, data = _synthetic_data(config, seed)
    source = config.get("data", "observed")
    if source not in ("observed", "clean"):
        raise ValueError(f"data must be 'observed' or 'clean', got {source!r}")
    # "clean": the teacher's own rates instead of the preprocessed fluorescence (a
    # diagnostic of the observation model; the teacher is fed these, plus its drive)
    rates = np.clip(data.rates_hz if source == "observed" else data.teacher_rates_hz, 0.0, max_rate)
    train_frames, test_frames = data.split(split)
    n_train = int(train_frames[-1]) + 2  # frames 0 .. n_train-1 are training frames
    start, end = int(test_frames[0]), data.n_frames
    bins = rate_bins(rates.max(), float(config.get("bin_size_hz", 0.25)), max_rate)
    if name == "model":
        return _model_metrics(config, seed, run_dir, data_dir, warmup, split)
    if name == "student":
        return _student_metrics(config, seed, run_dir, data_dir, warmup, split)
    if name == "teacher_oracle":
        kind = str(config.get("connectome", "true"))
        oracle = TeacherOracle.load(data_dir, data, kind, seed, max_rate)
        return evaluate_predictor(oracle, rates, start, end, warmup, bins)
    sel = RidgeARSelection(criterion=config.get("ar_criterion", "closed_loop"))
    gru = GRUSelection() if name == "gru_alone" else None
    fitted = fit_baselines(rates, n_train, warmup, max_rate, sel, gru)
    if name not in fitted:
        known = sorted(fitted) + ["gru_alone", "model", "student", "teacher_oracle"]
        raise ValueError(f"predictor must be one of {known}, got {name!r}")
    pred, facts = fitted[name]
    out = evaluate_predictor(pred, rates, start, end, warmup, bins)
    return {**out, **{k: v for k, v in facts.items() if isinstance(v, (int, float))}}


def _load_agent():
    from flyenv.agent_scripts import load_agent

    return load_agent("whole_brain_fitting")


def _student_metrics(
    config: dict,
    seed: int,
    run_dir: pathlib.Path,
    data_dir: pathlib.Path,
    warmup: int,
    split: float,
) -> dict:
    """The stateful spiking student (stage 1 of ``agents/whole_brain_fitting.py``) on the
    ``connectome`` of the config (true | shuffled | lowrank_only), scored by the agent,
    with the recovery of the teacher's drive weights and low-rank term.

    ``data`` (observed | clean) is the agent's ``--recording``, ``init`` (default |
    teacher) its ``--init``, ``train_replicas`` its ``--train_replicas``. ``encoder`` (free |
    home_tied) and ``n_rank`` (default: the agent's 20) set the
    student's input weights and low-rank term. ``epoch_round2`` (default 0: the spiking
    net alone) > 0 adds the stage-2 GRU decoder,
    ``finetune_round2`` / ``finetune_rollout`` its fine-tuning epochs (the agent's flags).
    ``stage1_from`` (a folder, ``{seed}`` filled in): copy stage 1 (checkpoint, losses
    with the settings line, state, teacher-forced simulation) from an earlier run of the
    same settings instead of training it again; the rows ``spiking_alone.*`` then repeat
    that run's spiking-net-alone score."""
    agent = _load_agent()
    e1 = int(config.get("epoch_round1", 20))
    e2 = int(config.get("epoch_round2", 0))
    kind = str(config.get("connectome", "true"))
    fit = run_dir / "fit"
    argv = [
        "--data-dir", str(data_dir), "--neural_activity_id", "synthetic",
        "--epoch_round1", str(e1), "--epoch_round2", str(e2), "--connectome", kind,
        "--warmup_frames", str(warmup), "--split", str(split), "--seed", str(seed),
        "--filepath", str(fit), "--no-progress",
        "--finetune_round2", str(int(config.get("finetune_round2", 0))),
        "--finetune_rollout", str(config.get("finetune_rollout", "spiking")),
        "--encoder", str(config.get("encoder", "free")),
        "--recording", str(config.get("data", "observed")),
        "--init", str(config.get("init", "default")),
        "--train_replicas", str(int(config.get("train_replicas", 1))),
    ]  # fmt: skip
    if "n_rank" in config:
        argv += ["--n_rank", str(int(config["n_rank"]))]
    source = config.get("stage1_from")
    if source is not None:
        src = pathlib.Path(str(source).replace("{seed}", str(seed)))
        fit.mkdir(parents=True, exist_ok=True)
        for name in STAGE1_FILES:
            if not (src / name).is_file():
                raise FileNotFoundError(
                    f"stage1_from: {src / name} is missing; run the sweep that trains stage 1 "
                    "first (scenarios/sweeps/whole_brain_connectome.toml)"
                )
            if not (fit / name).is_file():
                shutil.copyfile(src / name, fit / name)
        agent.main(["--mode", "train2", *argv])
        stats = agent.main(["--mode", "evaluate", *argv])
    else:
        stats = agent.main(["--mode", "all", *argv])
    (run_dir / "evaluation_stats.json").write_text(json.dumps(stats, indent=2))
    key = stats["main_predictor"]
    out = {
        "one_step": stats["teacher_forced_one_step"][key],
        "closed_loop": stats["closed_loop"][key],
        "recovery": stats.get("recovery", {}),
        "recovery_untrained": stats.get("recovery_untrained", {}),
        "epoch_round1": e1,
    }
    if e2 > 0:
        out["spiking_alone"] = {
            "closed_loop": stats["closed_loop"]["spiking net alone"],
            "one_step": stats["teacher_forced_one_step"]["spiking net alone"],
        }
    return out


# what stage 1 leaves in a run folder (copied by ``stage1_from``)
STAGE1_FILES = (
    "first-round-checkpoint.pt",
    "first-round-losses.txt",
    "first-round-state.pt",
    "simulated_neuropil_fr.npy",
)


def _model_metrics(
    config: dict,
    seed: int,
    run_dir: pathlib.Path,
    data_dir: pathlib.Path,
    warmup: int,
    split: float,
) -> dict:
    """The two-stage fit (spiking net + GRU) via the agent's CLI, scored by the agent.

    Stage 1 is fitted once per (brain, epochs) into the cache folder and shared by the
    ``stage2_input`` controls (run cells of one seed one after another, not in parallel)."""
    from flyenv.envs.offline.whole_brain_activity import default_cache_dir

    agent = _load_agent()
    e1, e2 = int(config.get("epoch_round1", 4)), int(config.get("epoch_round2", 100))
    fit_dir = default_cache_dir() / f"fit_{data_dir.name}_r1-{e1}_r2-{e2}_w{warmup}_s{split}"
    argv = [
        "--data-dir", str(data_dir), "--neural_activity_id", "synthetic",
        "--epoch_round1", str(e1), "--epoch_round2", str(e2),
        "--warmup_frames", str(warmup), "--split", str(split),
        "--filepath", str(fit_dir), "--no-progress",
    ]  # fmt: skip
    if not (fit_dir / "simulated_neuropil_fr.npy").is_file():
        agent.main(["--mode", "train1", *argv])
        agent.main(["--mode", "eval1", *argv])
    kind = ["--stage2_input", str(config.get("stage2_input", "spiking"))]
    agent.main(["--mode", "train2", *argv, *kind])
    stats = agent.main(["--mode", "evaluate", *argv, *kind])
    (run_dir / "evaluation_stats.json").write_text(json.dumps(stats, indent=2))
    key = stats["main_predictor"]
    return {
        "one_step": stats["teacher_forced_one_step"][key],
        "closed_loop": stats["closed_loop"][key],
        "epoch_round1": e1,
        "epoch_round2": e2,
    }
