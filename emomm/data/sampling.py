"""A training sampler whose order depends only on (seed, epoch), for exact resumption.

PyTorch's ``RandomSampler`` draws its permutation from the global RNG, whose state after a
resume (kill -9, then ``ckpt_path=last``) differs from an uninterrupted run's, so the
resumed epoch saw the data in another order. :class:`EpochSeededSampler` permutes with a
generator seeded by ``seed`` and the epoch number and, when it starts an epoch, also seeds
the global ``torch`` / ``numpy`` / ``random`` RNGs from them, so augmentation and dropout in
that epoch repeat too. Resuming from a checkpoint written at an epoch end therefore replays
the next epoch exactly (with ``num_workers=0``; worker processes get their own seeds from
the DataLoader).
"""
from __future__ import annotations

import logging
import random
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


def epoch_seed(seed: int, epoch: int) -> int:
    """One 63-bit seed per (seed, epoch), far apart for neighbouring epochs."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(2, np.uint64)[0]) >> 1


def seed_epoch_globals(seed: int, epoch: int) -> int:
    """Seed ``torch``, ``numpy`` and ``random`` from ``(seed, epoch)``; returns the seed."""
    s = epoch_seed(seed, epoch)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)
    return s


class EpochSeededSampler(Sampler[int]):
    """A permutation of ``range(n)`` fixed by ``(seed, epoch)``.

    ``epoch_fn`` returns the epoch about to run (the DataModule passes its trainer's
    ``current_epoch``: Lightning may create the iterator of a resumed epoch before it calls
    ``set_epoch``); without it, the value of :meth:`set_epoch` is used.
    """

    def __init__(self, n: int, seed: int = 0, epoch_fn: Callable[[], int | None] | None = None,
                 seed_globals: bool = True) -> None:
        self.n, self.seed, self.epoch_fn, self.seed_globals = int(n), int(seed), epoch_fn, seed_globals
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def current_epoch(self) -> int:
        e = self.epoch_fn() if self.epoch_fn is not None else None
        return self.epoch if e is None else int(e)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        epoch = self.current_epoch()
        s = seed_epoch_globals(self.seed, epoch) if self.seed_globals else epoch_seed(self.seed, epoch)
        g = torch.Generator().manual_seed(s)
        log.debug("epoch %d: training order seeded with %d", epoch, s)
        return iter(torch.randperm(self.n, generator=g).tolist())
