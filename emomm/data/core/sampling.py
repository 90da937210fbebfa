"""Training data whose order and randomness depend only on the position in the run, for
exact resumption from any point.

A run's position is ``(epoch, batch)``. Everything random in training is seeded from it:

* the order of an epoch: :class:`EpochSeededSampler` permutes with a generator seeded by
  ``(seed, epoch)`` (PyTorch's ``RandomSampler`` draws from the global RNG, whose state after
  a resume differs from an uninterrupted run's);
* each training sample's augmentation: the sampler hands the loader ``(index, seed)`` pairs,
  the seed fixed by ``(seed, epoch, position in the epoch)``, and :class:`SeededSamples` seeds
  the global ``torch`` / ``numpy`` / ``random`` RNGs with it before loading the sample, in
  whichever process loads it (the main one, or a DataLoader worker);
* each training step (dropout, mixup, random crops of callbacks): the DataModule seeds the
  global RNGs from :func:`step_seed` ``(seed, epoch, batch)`` when the batch arrives, before
  any hook or ``training_step`` sees it (``EmotionDataModule.on_after_batch_transfer``).

So nothing random carries over from one position to the next, and resuming only has to
start at the right position: :class:`ResumableDataLoader` saves ``(epoch, batches done)`` with
each checkpoint (Lightning saves a loader's ``state_dict`` and gives it back before the
resumed run's first batch), and the sampler of the resumed epoch skips the batches done. A
run stopped anywhere (SIGTERM mid-epoch, kill -9 after an epoch-end checkpoint) and resumed
ends with the same weights as one never stopped, on the same machine and software.

Group-balanced training (``+data.balance_groups=<name>``, a fairness mitigation) draws the
epoch with replacement under :func:`balanced_sample_weights`.
"""
from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from emomm.data.core.group_sources import build_source, sample_meta
from emomm.data.core.splits import dataset_labels

log = logging.getLogger(__name__)

_SAMPLES, _STEPS = 1, 2  # separate seed streams: per-sample loading, per-step training


def epoch_seed(seed: int, epoch: int) -> int:
    """One 63-bit seed per (seed, epoch), far apart for neighbouring epochs."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(2, np.uint64)[0]) >> 1


def sample_seeds(seed: int, epoch: int, n: int) -> np.ndarray:
    """``[n]`` 63-bit seeds, one per position of an epoch's training order."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), _SAMPLES])
    return ss.generate_state(max(int(n), 1), np.uint64)[:n] >> np.uint64(1)


def step_seed(seed: int, epoch: int, batch: int) -> int:
    """The seed of training step ``batch`` of ``epoch``."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), _STEPS, int(batch)])
    return int(ss.generate_state(1, np.uint64)[0]) >> 1


def seed_globals(s: int, devices: bool = True) -> None:
    """Seed ``torch`` (with ``devices``: the GPUs' generators too, ~80 us), ``numpy`` and ``random``."""
    if devices:
        torch.manual_seed(s)
    else:
        torch.default_generator.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)


def seed_epoch_globals(seed: int, epoch: int) -> int:
    """Seed ``torch``, ``numpy`` and ``random`` from ``(seed, epoch)``; returns the seed."""
    s = epoch_seed(seed, epoch)
    seed_globals(s)
    return s


class ResumePoint:
    """Mixin of the training samplers: where the first iteration after a resume starts.

    :meth:`resume_at` ``(epoch, start)`` (from :meth:`ResumableDataLoader.load_state_dict`)
    makes the next iteration of ``epoch`` begin at ``start`` (samples or batches, as the
    sampler counts); it applies once, and not to another epoch (a checkpoint written at an
    epoch's end resumes with the next epoch, from its beginning)."""

    _resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, start: int) -> None:
        self._resume = (int(epoch), int(start))

    def _start(self, epoch: int) -> int:
        resume, self._resume = self._resume, None
        if resume is None or resume[0] != epoch:
            return 0
        log.info("resuming epoch %d at position %d of its training order", epoch, resume[1])
        return resume[1]


class EpochSeededSampler(ResumePoint, Sampler):
    """A permutation of ``range(n)`` fixed by ``(seed, epoch)`` (with ``weights``: ``n``
    draws with replacement, each index with probability proportional to its weight).

    ``epoch_fn`` returns the epoch about to run (the DataModule passes its trainer's
    ``current_epoch``: Lightning may create the iterator of a resumed epoch before it calls
    ``set_epoch``); without it, the value of :meth:`set_epoch` is used. ``seed_globals``: seed
    the global RNGs from ``(seed, epoch)`` when an epoch starts. ``seed_samples``: yield
    ``(index, seed)`` pairs (the seed fixed by the position) for :class:`SeededSamples`.
    """

    def __init__(self, n: int, seed: int = 0, epoch_fn: Callable[[], int | None] | None = None,
                 seed_globals: bool = True, weights: Any = None, seed_samples: bool = False) -> None:
        self.n, self.seed, self.epoch_fn, self.seed_globals = int(n), int(seed), epoch_fn, seed_globals
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        if self.weights is not None and len(self.weights) != self.n:
            raise ValueError(f"EpochSeededSampler: {len(self.weights)} weights for {self.n} samples")
        self.seed_samples = seed_samples
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def current_epoch(self) -> int:
        e = self.epoch_fn() if self.epoch_fn is not None else None
        return self.epoch if e is None else int(e)

    def __len__(self) -> int:
        return self.n

    def order(self, epoch: int) -> list[int]:
        """The epoch's indices, in order."""
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        if self.weights is not None:
            return torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist()
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator:
        epoch = self.current_epoch()
        if self.seed_globals:
            seed_epoch_globals(self.seed, epoch)
        order, start = self.order(epoch), self._start(epoch)
        log.debug("epoch %d: training order seeded by (%d, %d), from position %d", epoch, self.seed, epoch, start)
        if not self.seed_samples:
            return iter(order[start:])
        seeds = sample_seeds(self.seed, epoch, len(order)).tolist()
        return iter(list(zip(order, seeds))[start:])


class SeededSamples(Dataset):
    """A dataset read with ``(index, seed)`` keys: seeds the global RNGs, then loads
    ``dataset[index]``, so the sample's augmentation depends on its position in the run
    alone (in the main process and in DataLoader workers alike). Plain indices load as is."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, s = key
            seed_globals(int(s), devices=False)  # loading runs on the CPU
            return self.dataset[index]
        return self.dataset[key]


class ResumableDataLoader(DataLoader):
    """A training DataLoader that Lightning saves with each checkpoint: its state is the
    run's position ``(epoch, batches done)`` from ``progress_fn`` (the DataModule reads it
    from its trainer: the loop, not the loader, knows what was trained, since batches are
    fetched ahead); loading it makes the sampler (``resume_at``) start the resumed epoch
    after the batches done. Lightning calls ``state_dict`` / ``load_state_dict`` on loaders
    that have them, and no longer warns that the loader is not resumable."""

    def __init__(self, *args: Any, progress_fn: Callable[[], tuple[int, int] | None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress_fn = progress_fn

    def _position_source(self):
        """The sampler that can start mid-epoch, and the samples per position it counts."""
        if self.batch_size is None:  # a batch sampler of our own (length buckets): counts batches
            return self.batch_sampler, 1
        return self.sampler, self.batch_size

    def state_dict(self) -> dict[str, Any]:
        progress = self.progress_fn() if self.progress_fn is not None else None
        if progress is None:
            return {}
        epoch, batches = progress
        return {"epoch": int(epoch), "batches": int(batches), "batch_size": self.batch_size,
                "samples": len(self.dataset)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        source, per_batch = self._position_source()
        here = {"batch_size": self.batch_size, "samples": len(self.dataset)}
        changed = {k: (state.get(k), v) for k, v in here.items() if state.get(k) != v}
        if changed or not hasattr(source, "resume_at"):
            log.warning("the training data differs from the checkpoint's (%s): epoch %d restarts from its first "
                        "batch, not after the %d batches done", changed or f"{type(source).__name__} cannot "
                        "start mid-epoch", state["epoch"], state["batches"])
            return
        source.resume_at(state["epoch"], state["batches"] * per_batch)


def balanced_sample_weights(dataset: Dataset, groups_cfg: Any, label_of: Sequence[int] | None = None,
                            by: str = "group", root: str | Path | None = None) -> np.ndarray:
    """Per-sample weights ``[N]`` that make every group (``by="group"``) or every
    (group, class) cell (``by="group_class"``) equally likely under a
    ``WeightedRandomSampler``; samples without a group get the mean weight.
    ``groups_cfg``: a ``groups`` config (:func:`~emomm.data.core.group_sources.build_source`)."""
    source, _ = build_source(groups_cfg)
    ids = source.assign(sample_meta(dataset), root)
    labels = list(label_of) if label_of is not None else list(dataset_labels(dataset))
    if by not in ("group", "group_class"):
        raise ValueError(f"balance by={by!r}: use group or group_class")
    keys = [None if g is None else (g, y if by == "group_class" else 0) for g, y in zip(ids, labels)]
    counts: dict[Any, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        raise ValueError(f"balance_groups={source.name}: no training sample has a group")
    w = np.array([1.0 / counts[key] if key is not None else np.nan for key in keys])
    w[np.isnan(w)] = np.nanmean(w)
    log.info("group-balanced sampling by %s over %s: cells %s", by, source.name,
             {f"{g}/{c}" if by == "group_class" else g: n for (g, c), n in sorted(counts.items())})
    return w / w.sum()
