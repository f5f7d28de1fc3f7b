"""Offline whole-brain activity prediction (no body): ``flyenv/WholeBrainActivity-v0``."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flyenv.metrics.whole_brain import bin_accuracy, rate_bins

_OPTION_KEYS = {"split", "mode", "warmup_frames"}


def default_cache_dir() -> Path:
    """Where generated synthetic brains are kept ($FLYENV_CACHE or ~/.cache/flyenv)."""
    return Path(os.environ.get("FLYENV_CACHE", Path.home() / ".cache" / "flyenv")) / "whole_brain"


@dataclass(frozen=True)
class WholeBrainActivityConfig:
    """Data source and evaluation protocol."""

    data_dir: str | None = None
    """Folder with FlyWire tables + ``ito_{id}.npz``; None: a synthetic brain (generated
    once into the cache folder, see :func:`default_cache_dir`)."""
    synthetic_scale: str = "default"
    flywire_version: str = "630"
    neural_activity_id: str = "synthetic"
    split: float = 0.6
    max_firing_rate_hz: float = 100.0
    bin_size_hz: float = 0.25
    warmup_frames: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.split < 1:
            raise ValueError(f"split must be in (0, 1), got {self.split}")
        if self.warmup_frames < 1:
            raise ValueError(f"warmup_frames must be >= 1, got {self.warmup_frames}")
        if not self.max_firing_rate_hz > 0 or not self.bin_size_hz > 0:
            raise ValueError("max_firing_rate_hz and bin_size_hz must be > 0")


def load_env_data(cfg: WholeBrainActivityConfig):
    """WholeBrainData of the configured source (synthetic brains are generated once)."""
    from flyenv.connectome.synthetic_whole_brain import SCALES, SYNTHETIC_ID, ensure_synthetic
    from flyenv.connectome.whole_brain_data import load_whole_brain_data

    data_dir, rec_id = cfg.data_dir, cfg.neural_activity_id
    if data_dir is None:
        if cfg.synthetic_scale not in SCALES:
            raise ValueError(f"synthetic_scale must be one of {sorted(SCALES)}")
        syn = replace(SCALES[cfg.synthetic_scale], flywire_version=cfg.flywire_version)
        if syn.n_frames < 1:
            raise ValueError(f"synthetic_scale {cfg.synthetic_scale!r} has no recording")
        data_dir = default_cache_dir() / f"synthetic_{cfg.synthetic_scale}_{cfg.flywire_version}"
        ensure_synthetic(data_dir, syn)
        rec_id = SYNTHETIC_ID
    return load_whole_brain_data(data_dir, cfg.flywire_version, rec_id, cfg.max_firing_rate_hz)


class WholeBrainActivityEnv(gym.Env):
    """
    ## Description
    Predict the next frame of a whole-brain calcium recording, neuropil by neuropil
    (docs/research_systems.md, whole-brain activity fitting). The recording
    (``ito_{id}.npz``, preprocessed to firing rates: dF/F,
    0.01 Hz high-pass, Savitzky-Golay, non-negative deconvolution, x100 Hz) is split in
    time into a train and a test part (``split``). Each step the agent sees the rates of
    frame t and answers with its prediction of frame t+1. Without ``data_dir`` the env uses
    a synthetic brain in the FlyWire formats whose recording comes from a hidden teacher
    network (:mod:`flyenv.connectome.synthetic_whole_brain`).

    Two protocols, chosen at reset:
    - ``"teacher_forced"``: every observation is the true frame t;
    - ``"closed_loop"``: the first ``warmup_frames`` observations are true frames
      (warm-up), after that each observation is the agent's own previous prediction, as
      in the original's evaluation. The reward always scores against the true frame.

    ## Action Space
    `Box(0, max_firing_rate_hz, (P,), float32)`, P = number of recorded neuropils.

    | Num    | Action                                      | Min | Max              | Unit |
    | ------ | ------------------------------------------- | --- | ---------------- | ---- |
    | 0..P-1 | predicted rate of neuropil i at frame t+1   | 0   | max_firing_rate_hz | Hz |

    Actions outside the box are clipped to it; a wrong shape or a NaN raises.

    ## Observation Space
    `Box(0, max_firing_rate_hz, (P,), float32)`.

    | Num    | Observation                                                     | Min | Max | Unit |
    | ------ | --------------------------------------------------------------- | --- | --- | ---- |
    | 0..P-1 | rate of neuropil i at frame t (true, or the agent's own prediction after the closed-loop warm-up) | 0 | max_firing_rate_hz | Hz |

    ## Rewards
    ``reward = -mean_i (action_i - r_i(t+1))^2`` (minus the MSE in Hz^2 against the true
    next frame).

    ## Starting State
    The first frame of the chosen split. ``options``: ``split`` ("train" | "test",
    default "train"), ``mode`` ("teacher_forced" | "closed_loop", default
    "teacher_forced"), ``warmup_frames`` (closed loop; default from the config). The
    data are fixed, so the env is deterministic (the seed only seeds the spaces).

    ## Episode End
    - Termination: the last frame of the split has been predicted (train: n_train - 1
      steps; test: n_frames - n_train - 1 steps).
    - Truncation: never.

    ## Info
    ``frame`` (index of the answered frame t+1), ``bin_accuracy`` (fraction of neuropils
    whose predicted rate falls in the true 0.25 Hz bin; bins as in
    docs/research_systems.md), ``mse`` (=
    -reward), ``split``, ``mode``, ``observation_is_true`` (False once the closed loop
    feeds predictions back), ``neuropils`` (reset only). ``true_next`` (the true rates of
    frame t+1, (P,)) is given only when the next observation is that true frame anyway
    (teacher-forced mode, closed-loop warm-up): in closed loop after the warm-up the true
    frames stay hidden until the episode ends, when ``episode_true_frames`` ((n, P), the
    true frames of every step of the episode, in order) comes with the terminating step.
    """

    metadata = {"render_modes": [], "render_fps": 1}

    def __init__(
        self,
        config: WholeBrainActivityConfig | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        if render_mode is not None:
            raise ValueError(f"WholeBrainActivityEnv has no rendering; got {render_mode!r}")
        if config is not None and kwargs:
            raise ValueError("pass either config or keyword overrides, not both")
        self.config = cfg = config or WholeBrainActivityConfig(**kwargs)
        self.render_mode = None
        data = load_env_data(cfg)
        self.neuropils = data.neuropils
        self.rates = np.clip(data.rates_hz, 0.0, cfg.max_firing_rate_hz).astype(np.float32)
        self.train_frames, self.test_frames = data.split(cfg.split)
        self.bins = rate_bins(self.rates.max(), cfg.bin_size_hz, cfg.max_firing_rate_hz)
        p = self.rates.shape[1]
        box = spaces.Box(0.0, cfg.max_firing_rate_hz, (p,), np.float32)
        self.observation_space = box
        self.action_space = spaces.Box(0.0, cfg.max_firing_rate_hz, (p,), np.float32)
        self._frames: np.ndarray | None = None
        self._k = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        opts = dict(options or {})
        unknown = set(opts) - _OPTION_KEYS
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; use {sorted(_OPTION_KEYS)}"
            )
        split = opts.get("split", "train")
        mode = opts.get("mode", "teacher_forced")
        if split not in ("train", "test"):
            raise ValueError(f"options['split'] must be 'train' or 'test', got {split!r}")
        if mode not in ("teacher_forced", "closed_loop"):
            raise ValueError(
                f"options['mode'] must be 'teacher_forced' or 'closed_loop', got {mode!r}"
            )
        warmup = int(opts.get("warmup_frames", self.config.warmup_frames))
        frames = self.train_frames if split == "train" else self.test_frames
        if warmup < 1 or (mode == "closed_loop" and warmup >= len(frames)):
            raise ValueError(f"warmup_frames must be in [1, {len(frames) - 1}], got {warmup}")
        self._frames, self._split, self._mode, self._warmup = frames, split, mode, warmup
        self._k = 0
        obs = self.rates[frames[0]].copy()
        return obs, {"frame": int(frames[0]), "split": split, "mode": mode,
                     "observation_is_true": True, "neuropils": self.neuropils}  # fmt: skip

    def step(self, action):
        if self._frames is None:
            raise RuntimeError("call reset() before step()")
        if self._k >= len(self._frames):
            raise RuntimeError("episode has ended; call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape} (one rate per neuropil), "
                f"got {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError("action contains NaN or inf")
        a = np.clip(a, 0.0, self.config.max_firing_rate_hz).astype(np.float32)
        t = int(self._frames[self._k])
        true_next = self.rates[t + 1]
        err = float(np.mean((a.astype(np.float64) - true_next) ** 2))
        self._k += 1
        terminated = self._k >= len(self._frames)
        feed_true = self._mode == "teacher_forced" or self._k < self._warmup
        obs = (true_next if feed_true else a).astype(np.float32).copy()
        info = {
            "frame": t + 1,
            "bin_accuracy": bin_accuracy(a, true_next, self.bins),
            "mse": err,
            "split": self._split,
            "mode": self._mode,
            "observation_is_true": bool(feed_true),
        }
        # closed loop: the true frame would let an agent feed itself the truth instead of
        # its own prediction, so it is shown only once it is the next observation anyway
        if feed_true:
            info["true_next"] = true_next.copy()
        if terminated and self._mode == "closed_loop":
            info["episode_true_frames"] = self.rates[self._frames + 1].copy()
        return obs, -err, terminated, False, info


def export_minari(
    dataset_id: str = "flyenv/whole-brain-activity/synthetic-v0",
    splits: tuple[str, ...] = ("train", "test"),
    **env_kwargs: Any,
):
    """Write the recording as a Minari dataset: one teacher-forced episode per split, the
    action being the true next frame (an oracle "expert"); ``env_kwargs`` go to
    ``gym.make("flyenv/WholeBrainActivity-v0", ...)`` and are stored in the dataset's env
    spec. Needs the optional extra ``pip install 'flyenv[minari]'`` (minari==0.5.4; the
    episodes are built directly, so minari's jax-based collector is not needed)."""
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError as exc:
        raise ImportError(
            "export_minari needs minari: pip install 'flyenv[minari]' (minari==0.5.4)"
        ) from exc
    env = gym.make("flyenv/WholeBrainActivity-v0", **env_kwargs)
    inner: WholeBrainActivityEnv = env.unwrapped
    buffers = []
    for k, split in enumerate(splits):
        obs, _ = env.reset(seed=k, options={"split": split})
        observations, actions, rewards = [obs], [], []
        done = False
        while not done:
            action = inner.rates[int(inner._frames[inner._k]) + 1]
            obs, reward, term, trunc, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            done = term or trunc
        n = len(actions)
        buffers.append(
            EpisodeBuffer(
                id=k,
                seed=k,
                options={"split": split},
                observations=np.asarray(observations, np.float32),
                actions=np.asarray(actions, np.float32),
                rewards=list(map(float, rewards)),
                terminations=[False] * (n - 1) + [True],
                truncations=[False] * n,
                infos={},
            )
        )
    return minari.create_dataset_from_buffers(
        dataset_id=dataset_id,
        buffer=buffers,
        env=env,
        eval_env=env.spec,
        author="flyenv",
        algorithm_name="oracle next frame",
        description="flyenv WholeBrainActivity-v0: neuropil rates; action = true next frame",
    )
