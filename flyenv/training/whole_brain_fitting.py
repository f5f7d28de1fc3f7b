"""Reusable pieces of the two-stage whole-brain activity fit
(docs/research_systems.md, whole-brain activity fitting).

- the data (connectome, neuropil readout, preprocessed recording) come from
  :func:`flyenv.connectome.whole_brain_data.load_whole_brain_data`;
- stage 1 (:func:`train_round1_epoch`): the spiking :class:`WholeBrainLIF` learns to map
  frame t to frame t+1 (teacher forcing; truncated BPTT, memory independent of steps);
- stage 1b (:func:`simulate_teacher_forced`): the trained net's prediction for every frame;
- stage 2 (:class:`RateDecoder`, :func:`train_round2_epoch`): LayerNorm -> GRU -> Linear ->
  ReLU turns the spiking net's output into the next frame, trained with the bin-interval
  loss (zero inside the true bin, squared distance to the bin outside it);
- :func:`closed_loop` evaluation after a teacher-forced warm-up, and the persistence and
  linear autoregressive baselines on the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from flyenv.brains.whole_brain.network import FrameState, WholeBrainLIF

LOSSES = ("mse", "mae", "huber", "cosine_distance", "log_cosh")


# --------------------------------------------------------------------------- losses
def rate_loss(pred: torch.Tensor, target: torch.Tensor, name: str = "mse") -> torch.Tensor:
    """The stage-1 losses of the original whole-brain fitting, averaged over batch and neuropils."""
    d = pred - target
    if name == "mse":
        return (d * d).mean()
    if name == "mae":
        return d.abs().mean()
    if name == "huber":
        return nn.functional.huber_loss(pred, target, delta=1.0)
    if name == "cosine_distance":
        return (1.0 - nn.functional.cosine_similarity(pred, target, dim=-1, eps=1e-8)).mean()
    if name == "log_cosh":
        return (d + nn.functional.softplus(-2.0 * d) - np.log(2.0)).mean()
    raise ValueError(f"loss_fn must be one of {LOSSES}, got {name!r}")


def bin_interval_loss(pred: torch.Tensor, target: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Zero when ``pred`` lies in the bin [lo, hi) holding ``target``, else the squared
    distance to that bin. (The original wrote ``minimum(x, 0)``, which rewards predictions
    far outside the bin; this is the intended ``maximum(x, 0)``.)"""
    idx = torch.bucketize(target, bins, right=True).clamp(1, len(bins) - 1)
    lo, hi = bins[idx - 1], bins[idx]
    return (torch.relu(lo - pred) ** 2 + torch.relu(pred - hi) ** 2).mean()


# --------------------------------------------------------------------------- stage 1
def train_round1_epoch(
    model: WholeBrainLIF,
    opt: torch.optim.Optimizer,
    rates_hz: np.ndarray,
    train_frames: np.ndarray,
    batch_size: int,
    loss_fn: str,
    window_steps: int,
    grad_clip: float,
    seed: int,
    progress: bool = True,
) -> tuple[float, np.ndarray, np.ndarray]:
    """One epoch over shuffled frame pairs (t, t+1). Returns (mean loss, last batch's
    simulated rates, its targets)."""
    rng = np.random.default_rng(seed)
    dev = model.readout.device
    order = rng.permutation(train_frames)
    n_batches = max(1, len(order) // batch_size)
    losses = []
    sim = tgt = None
    params = [p for p in model.parameters() if p.requires_grad]
    for b in tqdm(range(n_batches), desc="round 1 batches", leave=False, disable=not progress):
        frames = order[b * batch_size : (b + 1) * batch_size]
        x = torch.as_tensor(rates_hz[frames], device=dev)
        y = torch.as_tensor(rates_hz[frames + 1], device=dev)
        opt.zero_grad(set_to_none=True)
        loss, sim = model.train_frame(
            x, lambda r, y=y: rate_loss(r, y, loss_fn), window_steps, seed=int(rng.integers(2**31))
        )
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        losses.append(float(loss))
        tgt = y
    return float(np.mean(losses)), sim.cpu().numpy(), tgt.cpu().numpy()


def stateful_chunks(
    n_frames: int, chunk_frames: int, burn_in: int, rng: np.random.Generator
) -> np.ndarray:
    """Start frames of the parallel training sequences of a stateful epoch: consecutive
    chunks of ``chunk_frames`` frames t (targets t+1 < ``n_frames``), shifted by a random
    offset each epoch, each preceded by ``burn_in`` frames that only set its state."""
    last = n_frames - 1  # the last frame t with a target
    offset = int(rng.integers(chunk_frames))
    starts = np.arange(burn_in + offset, last - chunk_frames + 1, chunk_frames)
    if starts.size == 0:
        starts = np.array([burn_in]) if burn_in + chunk_frames <= last else np.array([0])
    return starts


def train_round1_stateful_epoch(
    model: WholeBrainLIF,
    opt: torch.optim.Optimizer,
    rates_hz: np.ndarray,
    n_train: int,
    chunk_frames: int,
    burn_in: int,
    loss_fn: str,
    window_steps: int,
    grad_clip: float,
    seed: int,
    progress: bool = True,
    replicas: int = 1,
) -> tuple[float, np.ndarray, np.ndarray]:
    """One stateful epoch over frames 0 .. ``n_train`` - 1: the training frames cut into
    parallel chunks (:func:`stateful_chunks`, one batch element each); every chunk starts
    at rest, runs ``burn_in`` teacher-forced frames without gradient, then frame after
    frame: the net continues from its state, is fed the true frame t, and its rates of
    frame t+1 are scored against the truth (one optimiser step per frame). The state is
    carried across frames and the gradient truncated at each frame's start
    (:meth:`WholeBrainLIF.train_frame` with ``state``): memory does not grow with the
    sequence length. Returns (mean loss, last frame's simulated rates, its targets).

    ``replicas`` K > 1 runs K copies of every chunk side by side (own Poisson kicks and
    state) and scores the mean of their rates: with one copy the expected loss is
    bias^2 + the net's own spiking variance, so the fit is also pushed to make the net
    quieter rather than right; the K-copy mean divides that variance term by K (the
    evaluation scores the mean of ``eval_replicas`` copies in the same way)."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    rng = np.random.default_rng(seed)
    dev = model.readout.device
    starts = stateful_chunks(n_train, chunk_frames, burn_in, rng)
    n_chunks = len(starts)

    def frame(t: np.ndarray) -> torch.Tensor:  # (K * chunks, P): copy k of chunk b at k*B + b
        return torch.as_tensor(rates_hz[t], device=dev).repeat(replicas, 1)

    def copy_mean(r: torch.Tensor) -> torch.Tensor:
        return r.reshape(replicas, n_chunks, -1).mean(0)

    length = min(chunk_frames, n_train - 1 - int(starts.max()))
    gen = torch.Generator(device=dev).manual_seed(int(rng.integers(2**31)))
    state = None
    with torch.no_grad():
        for k in range(-min(burn_in, int(starts.min())), 0):
            _, state = model.step_frame(frame(starts + k), state, gen)
    if state is None:
        state = model.init_frame_state(n_chunks * replicas)
    params = [p for p in model.parameters() if p.requires_grad]
    losses = []
    sim = tgt = None
    for k in tqdm(range(length), desc="round 1 frames", leave=False, disable=not progress):
        x = frame(starts + k)
        y = torch.as_tensor(rates_hz[starts + k + 1], device=dev)
        opt.zero_grad(set_to_none=True)
        loss, sim, state = model.train_frame(
            x,
            lambda r, y=y: rate_loss(copy_mean(r), y, loss_fn),
            window_steps,
            seed=int(rng.integers(2**31)),
            state=state,
        )
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        losses.append(float(loss))
        tgt = y
    return float(np.mean(losses)), copy_mean(sim).detach().cpu().numpy(), tgt.cpu().numpy()


@torch.no_grad()
def simulate_stateful(
    model: WholeBrainLIF,
    rates_hz: np.ndarray,
    start: int,
    end: int,
    seed: int,
    warmup: int | None = None,
    max_firing_rate_hz: float = 100.0,
    progress: bool = True,
    replicas: int = 1,
) -> np.ndarray:
    """The stateful net from rest at frame ``start``, its state carried frame to frame.

    ``replicas`` > 1 runs that many copies side by side (batch elements, independent
    Poisson kicks, each with its own state) on the same input and predicts their mean
    rates: an estimate of the net's expected output rather than one noisy sample (one
    sample's own spiking noise adds its variance to the MSE). In closed loop the mean is
    what is fed back to every copy.

    ``warmup`` None (teacher forced): fed the true frame t for every t in start .. end-2;
    returns its predictions of frames start+1 .. end-1. ``warmup`` w (closed loop): fed the
    true frames start .. start+w-1, then its own (clamped) output; returns its predictions
    of frames start+w .. end-1. No frame after start+w-1 is read in closed loop."""
    if warmup is not None and (warmup < 1 or start + warmup >= end):
        raise ValueError(f"need warmup >= 1 and start + warmup < end ({start}, {warmup}, {end})")
    dev = model.readout.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    state = None
    x = torch.as_tensor(rates_hz[start : start + 1], device=dev)
    preds = []
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    for t in tqdm(range(start, end - 1), desc="stateful net", leave=False, disable=not progress):
        if warmup is None or t < start + warmup:
            x = torch.as_tensor(rates_hz[t : t + 1], device=dev)
        out, state = model.step_frame(x.expand(replicas, -1), state, gen)
        pred = out.mean(0, keepdim=True).clamp(0.0, max_firing_rate_hz)
        if warmup is None or t + 1 >= start + warmup:
            preds.append(pred[0].cpu().numpy())
        x = pred
    return np.stack(preds).astype(np.float32)


def simulate_teacher_forced(
    model: WholeBrainLIF,
    rates_hz: np.ndarray,
    batch_size: int,
    seed: int,
    progress: bool = True,
) -> np.ndarray:
    """(T - 1, P): row t is the net's prediction of frame t+1 from the true frame t."""
    dev = model.readout.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = []
    starts = range(0, len(rates_hz) - 1, batch_size)
    for s in tqdm(starts, desc="stage 1b simulation", leave=False, disable=not progress):
        x = torch.as_tensor(rates_hz[s : min(s + batch_size, len(rates_hz) - 1)], device=dev)
        out.append(model.simulate_frame(x, gen).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


# --------------------------------------------------------------------------- stage 2
class RateDecoder(nn.Module):
    """LayerNorm -> GRU(n_hidden) -> Linear -> ReLU: next-frame rates from the spiking
    net's output (``input_style`` v1) or from it and the current frame (v2)."""

    def __init__(self, n_neuropils: int, n_hidden: int = 256, input_style: str = "v1"):
        super().__init__()
        if input_style not in ("v1", "v2"):
            raise ValueError(f"input_style must be 'v1' or 'v2', got {input_style!r}")
        self.input_style = input_style
        n_in = n_neuropils * (1 if input_style == "v1" else 2)
        self.norm = nn.LayerNorm(n_in)
        self.gru = nn.GRU(n_in, n_hidden, batch_first=True)
        self.out = nn.Linear(n_hidden, n_neuropils)

    def features(self, simulated: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        return simulated if self.input_style == "v1" else torch.cat([simulated, current], -1)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, n_in) -> rates (B, L, P), hidden state."""
        y, h = self.gru(self.norm(x), h)
        return torch.relu(self.out(y)), h


def train_round2_epoch(
    decoder: RateDecoder,
    opt: torch.optim.Optimizer,
    simulated: np.ndarray,
    rates_hz: np.ndarray,
    train_frames: np.ndarray,
    bins: torch.Tensor,
    batch_size: int,
    seq_len: int,
    noise_hz: float,
    grad_clip: float,
    seed: int,
    rollout: int = 0,
    surrogate: LinearAR | None = None,
    net_rollout: SpikingNetRollout | None = None,
) -> float:
    """One epoch over random train sub-sequences; inputs get Gaussian noise (``noise_hz``)
    so the decoder tolerates its own closed-loop errors.

    ``rollout`` > 0 trains the closed loop too: after ``seq_len`` teacher-forced frames
    the decoder runs ``rollout`` more frames on its own predictions, with the spiking net
    replaced by ``surrogate`` (its linear fit, :func:`fit_spiking_surrogate`; simulating
    the net inside every stage-2 step would cost a frame simulation per step). With
    ``net_rollout`` (:class:`SpikingNetRollout`) the closed loop runs through the stateful
    spiking net itself instead, from its teacher-forced state at the rollout's start; no
    gradient flows through the net (it is fixed in stage 2), only through the decoder."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)  # noise drawn on the CPU, then moved
    dev = next(decoder.parameters()).device
    bins = bins.to(dev)
    if rollout > 0 and surrogate is None and net_rollout is None:
        raise ValueError("rollout > 0 needs the spiking net's linear surrogate or net_rollout")
    t0, t1 = int(train_frames[0]), int(train_frames[-1]) + 1
    total = min(seq_len + rollout, t1 - t0)
    warm = max(1, total - rollout)
    starts = rng.permutation(np.arange(t0, t1 - total + 1))
    n_batches = max(1, len(starts) // batch_size)
    if surrogate is not None:
        sa = torch.as_tensor(surrogate.a, dtype=torch.float32, device=dev)
        sb = torch.as_tensor(surrogate.b, dtype=torch.float32, device=dev)
    losses = []
    for b in range(n_batches):
        st = starts[b * batch_size : (b + 1) * batch_size]
        idx = st[:, None] + np.arange(total)[None, :]  # (B, L) frames t
        sim = torch.as_tensor(simulated[idx[:, :warm]])
        cur = torch.as_tensor(rates_hz[idx[:, :warm]])
        tgt = torch.as_tensor(rates_hz[idx + 1]).to(dev)
        sim = sim + noise_hz * torch.randn(sim.shape, generator=gen)
        cur = cur + noise_hz * torch.randn(cur.shape, generator=gen)
        sim, cur = sim.to(dev), cur.to(dev)
        pred, h = decoder(decoder.features(sim, cur))
        preds = [pred]
        x = pred[:, -1]
        if net_rollout is not None and total > warm:  # state after the last true frame
            net_state = net_rollout.start(idx[:, warm - 1])
        for _ in range(total - warm):  # closed loop through the surrogate or the net
            if net_rollout is not None:
                sim_hat, net_state = net_rollout.step(x, net_state)
            else:
                sim_hat = torch.relu(x @ sa.T + sb)
            y, h = decoder(decoder.features(sim_hat, x)[:, None, :], h)
            x = y[:, 0]
            preds.append(y)
        loss = bin_interval_loss(torch.cat(preds, 1), tgt, bins)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(decoder.parameters(), grad_clip)
        opt.step()
        losses.append(loss.item())
    return float(np.mean(losses))


class SpikingNetRollout:
    """Stage-2 closed loop through the stateful spiking net itself (not its linear fit).

    The net is run once teacher-forced from rest at frame 0 (one copy, seeded) and its
    :class:`FrameState` after every frame is kept: ``states[t]`` is the state after it was
    fed the true frame t. A rollout that starts after frame t continues from
    ``states[t]`` (:meth:`start`), and each :meth:`step` feeds the decoder's last
    prediction (detached, clamped to [0, ``max_firing_rate_hz``]) for one frame: (B, P)
    rates, no gradient. Costs one frame simulation of B copies per rollout step.
    """

    def __init__(
        self,
        model: WholeBrainLIF,
        rates_hz: np.ndarray,
        last_frame: int,
        seed: int,
        max_firing_rate_hz: float = 100.0,
    ) -> None:
        if not 0 <= last_frame < len(rates_hz):
            raise ValueError(
                f"last_frame {last_frame} outside the recording (0..{len(rates_hz) - 1})"
            )
        self.model = model
        self.max_rate = float(max_firing_rate_hz)
        dev = model.readout.device
        self.gen = torch.Generator(device=dev).manual_seed(seed)
        keep: list[FrameState] = []
        state = None
        with torch.no_grad():
            for t in range(last_frame + 1):
                x = torch.as_tensor(rates_hz[t : t + 1], device=dev)
                _, state = model.step_frame(x, state, self.gen)
                keep.append(state)
        self.v = torch.stack([st.v[:, 0] for st in keep])  # (T, N)
        self.i = torch.stack([st.i[:, 0] for st in keep])
        self.ref = torch.stack([st.ref[:, 0] for st in keep])
        # the ring of spikes in flight, rolled so that every frame's next slot is 0 (the
        # net reads slot (phase + step) % delay): states of different frames then batch
        self.ring = torch.stack(
            [torch.roll(st.ring[:, :, 0], -int(st.phase), dims=0) for st in keep]
        )  # (T, delay, N)

    def start(self, frames: np.ndarray) -> FrameState:
        """Batched state (B columns) after the true frames ``frames`` (B,)."""
        f = torch.as_tensor(np.asarray(frames, dtype=np.int64))
        if int(f.max()) >= len(self.v) or int(f.min()) < 0:
            raise ValueError(f"frames {int(f.min())}..{int(f.max())} outside 0..{len(self.v) - 1}")
        return FrameState(
            self.v[f].T.contiguous(),
            self.i[f].T.contiguous(),
            self.ref[f].T.contiguous(),
            self.ring[f].permute(1, 2, 0).contiguous(),
            0,
        )

    @torch.no_grad()
    def step(self, x: torch.Tensor, state: FrameState) -> tuple[torch.Tensor, FrameState]:
        out, state = self.model.step_frame(x.detach().clamp(0.0, self.max_rate), state, self.gen)
        return out, state


def fit_spiking_surrogate(
    simulated: np.ndarray, rates_hz: np.ndarray, train_frames: np.ndarray
) -> LinearAR:
    """Linear least-squares map frame t -> the spiking net's prediction (row t of
    ``simulated_neuropil_fr.npy``), on the training frames."""
    x, y = rates_hz[train_frames], simulated[train_frames]
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    a = np.linalg.solve(xc.T @ xc + 1e-3 * len(x) * np.eye(x.shape[1]), xc.T @ yc)
    return LinearAR(a.T, ym - a.T @ xm)


STAGE2_INPUTS = ("spiking", "zeros", "shuffled")


def control_input(simulated: np.ndarray, kind: str, seed: int) -> np.ndarray | None:
    """What the stage-2 decoder is fed instead of the spiking net's output in a control:
    None for ``"spiking"`` (the net itself), zeros for ``"zeros"``, the net's teacher-forced
    output with its frames permuted in time for ``"shuffled"`` (same values, no timing).
    Row t replaces the net's output for frame t, in training and in evaluation."""
    if kind == "spiking":
        return None
    if kind == "zeros":
        return np.zeros_like(simulated)
    if kind == "shuffled":
        return simulated[np.random.default_rng(seed).permutation(len(simulated))]
    raise ValueError(f"stage2_input must be one of {STAGE2_INPUTS}, got {kind!r}")


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def closed_loop(
    model: WholeBrainLIF,
    decoder: RateDecoder | None,
    rates_hz: np.ndarray,
    start: int,
    end: int,
    warmup: int,
    seed: int,
    max_firing_rate_hz: float = 100.0,
    progress: bool = True,
    replacement: np.ndarray | None = None,
    stateful: bool = False,
    replicas: int = 1,
) -> np.ndarray:
    """Predictions of frames ``start + warmup .. end - 1``: the net sees the true frames
    ``start .. start + warmup - 1`` (teacher-forced warm-up, the decoder's GRU state
    included), then its own predictions. Without a decoder the spiking net runs alone.
    ``replacement`` (:func:`control_input`): the decoder gets its row t instead of the
    spiking net's output at frame t (the net is not run). ``stateful``: the spiking net
    carries its state from frame to frame (from rest at ``start``) instead of restarting
    every frame; ``replicas`` (stateful only): as in :func:`simulate_stateful`."""
    if warmup < 1 or start + warmup >= end:
        raise ValueError(f"need warmup >= 1 and start + warmup < end ({start}, {warmup}, {end})")
    if replacement is not None and decoder is None:
        raise ValueError("replacement needs a decoder (it replaces the decoder's input)")
    dev = model.readout.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    h = state = None
    x = torch.as_tensor(rates_hz[start : start + 1], device=dev)
    preds = []
    for t in tqdm(range(start, end - 1), desc="closed loop", leave=False, disable=not progress):
        if t < start + warmup:
            x = torch.as_tensor(rates_hz[t : t + 1], device=dev)
        if replacement is None and stateful:  # mean of the replicas (simulate_stateful)
            out, state = model.step_frame(x.expand(replicas, -1), state, gen)
            sim = out.mean(0, keepdim=True)
        elif replacement is None:
            sim = model.simulate_frame(x, gen)
        else:
            sim = torch.as_tensor(replacement[t : t + 1], dtype=x.dtype, device=dev)
        if decoder is not None:
            y, h = decoder(decoder.features(sim, x)[:, None, :], h)
            pred = y[:, 0]
        else:
            pred = sim
        pred = pred.clamp(0.0, max_firing_rate_hz)
        if t + 1 >= start + warmup:
            preds.append(pred[0].cpu().numpy())
        x = pred
    return np.stack(preds).astype(np.float32)


@torch.no_grad()
def teacher_forced(
    model: WholeBrainLIF,
    decoder: RateDecoder | None,
    rates_hz: np.ndarray,
    frames: np.ndarray,
    seed: int,
    batch_size: int = 64,
    replacement: np.ndarray | None = None,
    stateful: bool = False,
    replicas: int = 1,
) -> np.ndarray:
    """One-step predictions of frames t+1 for consecutive t in ``frames`` (true inputs);
    ``replacement`` and ``stateful`` (from rest at ``frames[0]``) as in :func:`closed_loop`."""
    if replacement is not None:
        if decoder is None:
            raise ValueError("replacement needs a decoder (it replaces the decoder's input)")
        sim = np.asarray(replacement[frames], np.float32)
    elif stateful:
        sim = simulate_stateful(
            model, rates_hz, int(frames[0]), int(frames[-1]) + 2, seed, progress=False,
            replicas=replicas,
        )  # fmt: skip
    else:
        sim = simulate_teacher_forced(
            model, rates_hz[frames[0] : frames[-1] + 2], batch_size, seed, False
        )
    if decoder is None:
        return sim
    dev = next(decoder.parameters()).device
    x = decoder.features(
        torch.as_tensor(sim, device=dev), torch.as_tensor(rates_hz[frames], device=dev)
    )
    y, _ = decoder(x[None])
    return y[0].cpu().numpy()


def persistence_closed_loop(rates_hz: np.ndarray, start: int, end: int, warmup: int) -> np.ndarray:
    """r_{t+1} = r_t from the last warm-up frame on: a constant prediction."""
    n = end - (start + warmup)
    return np.repeat(rates_hz[start + warmup - 1][None], n, axis=0)


@dataclass
class LinearAR:
    """r_{t+1} = A r_t + b, ridge least squares on the training pairs."""

    a: np.ndarray
    b: np.ndarray

    @classmethod
    def fit(cls, rates_hz: np.ndarray, train_frames: np.ndarray, ridge: float = 1e-3) -> LinearAR:
        x, y = rates_hz[train_frames], rates_hz[train_frames + 1]
        xm, ym = x.mean(0), y.mean(0)
        xc, yc = x - xm, y - ym
        a = np.linalg.solve(xc.T @ xc + ridge * len(x) * np.eye(x.shape[1]), xc.T @ yc)
        return cls(a.T, ym - a.T @ xm)

    def step(self, r: np.ndarray) -> np.ndarray:
        return r @ self.a.T + self.b

    def closed_loop(
        self, rates_hz: np.ndarray, start: int, end: int, warmup: int, max_rate: float = 100.0
    ) -> np.ndarray:
        r = rates_hz[start + warmup - 1]
        out = []
        for _ in range(end - (start + warmup)):
            r = np.clip(self.step(r), 0.0, max_rate)
            out.append(r)
        return np.stack(out).astype(np.float32)
