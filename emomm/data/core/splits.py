"""Splits of a dataset: labels through ``Subset`` wrappers, seeded stratified splits and
k-fold cross-validation, and the per-split size limit of quick runs.

Pure functions over datasets that expose an integer ``labels`` array (and optionally
``aux``); no DataModule machinery, so analyses and tools can use them without Lightning.
Speaker-independent splits are in :mod:`emomm.data.core.speakers`.
"""
from __future__ import annotations

import copy
import logging
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def dataset_labels(ds: Dataset) -> Sequence[int]:
    """Integer labels of a dataset, looking through ``Subset`` wrappers."""
    if isinstance(ds, torch.utils.data.Subset):
        parent = dataset_labels(ds.dataset)
        return [parent[i] for i in ds.indices]
    return ds.labels  # type: ignore[attr-defined]


def dataset_aux(ds: Dataset) -> dict[str, Sequence[int]]:
    """Auxiliary labels ``{task: [int]}`` of a dataset, looking through ``Subset`` wrappers."""
    if isinstance(ds, torch.utils.data.Subset):
        return {t: [v[i] for i in ds.indices] for t, v in dataset_aux(ds.dataset).items()}
    return getattr(ds, "aux", None) or {}


def stratified_split(
    labels: Sequence[int], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out) with ``fraction`` of every class held out.

    Deterministic for a given seed; every class with at least two samples keeps at least
    one sample on each side, and two or more samples never give an empty held-out side.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            n = min(max(n, 1), len(idx) - 1)
        held.append(idx[:n])
    held_idx = np.sort(np.concatenate(held)) if held else np.array([], dtype=int)
    if len(held_idx) == 0 and len(labels) >= 2:
        # Tiny data (every class a singleton, or rounding to 0 everywhere): an empty
        # held-out split would make validation silently score nothing, so hold out one
        # sample of the most frequent class.
        classes, counts = np.unique(labels, return_counts=True)
        big = np.flatnonzero(labels == classes[counts.argmax()])
        held_idx = np.array([rng.choice(big)])
    keep_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    return keep_idx, held_idx


def stratified_three_way(labels: Sequence[int], val_fraction: float, test_fraction: float,
                         seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified (train, val, test) indices; both fractions are of the *whole*
    data. ``test_fraction=0`` gives an empty test split."""
    labels = np.asarray(labels)
    if test_fraction:
        rest, test = stratified_split(labels, test_fraction, seed)
    else:
        rest, test = np.arange(len(labels)), np.array([], dtype=int)
    train, val = stratified_split(labels[rest], val_fraction / (1.0 - test_fraction), seed + 1)
    return rest[train], rest[val], test


def stratified_kfold(labels: Sequence[int], fold: int, n_folds: int = 5,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified k-fold (train, val, test) indices, as ``kfold_speakers`` does for
    speakers: each class is shuffled and dealt round-robin into ``n_folds`` folds; fold K
    tests on fold K, validates on fold K+1 (mod n) and trains on the rest, so over the K
    folds every sample is tested exactly once."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"cv fold={fold} must be in 0..{n_folds - 1}")
    if n_folds < 3:
        raise ValueError(f"cv needs at least 3 folds (train, val, test), got {n_folds}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    which = np.empty(len(labels), dtype=int)
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        # Continue the deal where the last class stopped, so fold sizes stay balanced.
        which[idx] = (offset + np.arange(len(idx))) % n_folds
        offset += len(idx)
    test, val = fold, (fold + 1) % n_folds
    return (np.flatnonzero((which != test) & (which != val)), np.flatnonzero(which == val),
            np.flatnonzero(which == test))


#: Attributes that make a dataset a training or an evaluation dataset (augmentation,
#: random crops, transforms); `pooled_fold_splits` reads each sample with its new role's.
ROLE_ATTRS = ("train", "augment", "transform", "modalities")


def _with_role(ds: Dataset, role_of: Dataset) -> Dataset:
    """A shallow copy of ``ds`` that reads its samples the way ``role_of`` does (same
    transforms/augmentation settings), e.g. training images read without augmentation."""
    if ds is role_of:
        return ds
    if type(ds) is not type(role_of):
        raise ValueError(f"cross-validation pools the splits, but they are different dataset types "
                         f"({type(ds).__name__}, {type(role_of).__name__})")
    twin = copy.copy(ds)
    for a in ROLE_ATTRS:
        if hasattr(role_of, a):
            setattr(twin, a, getattr(role_of, a))
    return twin


def pooled_fold_splits(splits: dict[str, Dataset], fold: int, n_folds: int, seed: int) -> dict[str, Dataset]:
    """Pool the given splits (a split that is the same object as another counts once) and
    cut fold ``fold`` of a stratified ``n_folds``-fold CV out of them. Samples keep their
    data but take the role of their new split: those moved into val/test are read like the
    original validation split (no augmentation), those moved into train like training."""
    parts = []
    for name in SPLITS:
        if all(splits[name] is not splits[p] for p in parts):
            parts.append(name)
    labels = np.concatenate([np.asarray(dataset_labels(splits[p])) for p in parts])
    where = [(p, i) for p in parts for i in range(len(splits[p]))]
    train, val, test = stratified_kfold(labels, fold, n_folds, seed)
    role = {"train": splits["train"], "val": splits["val"], "test": splits["val"]}
    out = {}
    for name, idx in (("train", train), ("val", val), ("test", test)):
        views = {p: _with_role(splits[p], role[name]) for p in parts}
        pieces = []
        for p in parts:
            own = [i for p2, i in (where[j] for j in idx) if p2 == p]
            if own:
                pieces.append(torch.utils.data.Subset(views[p], own))
        out[name] = _Concat(pieces)
    log.info("cv fold %d/%d (stratified, seed %d) over %s: %s", fold, n_folds, seed, "+".join(parts),
             {k: len(v) for k, v in out.items()})
    return out


class _Concat(torch.utils.data.ConcatDataset):
    """A ConcatDataset that exposes ``labels`` (class counts, balanced weights need them)."""

    @property
    def labels(self) -> list[int]:
        return [int(y) for d in self.datasets for y in dataset_labels(d)]


def limit_split(ds: Dataset, n: int, seed: int) -> Dataset:
    """A seeded, stratified-ish subset of exactly ``n`` samples (all of them if there are no
    more), for quick runs."""
    if len(ds) <= n:
        return ds
    keep, held = stratified_split(dataset_labels(ds), 1.0 - n / len(ds), seed)
    # per-class rounding misses n, e.g. singleton classes all fall on the held-out side
    rng = np.random.default_rng(seed)
    if len(keep) < n:
        keep = np.concatenate([keep, rng.choice(held, n - len(keep), replace=False)])
    elif len(keep) > n:
        keep = rng.choice(keep, n, replace=False)
    return torch.utils.data.Subset(ds, np.sort(keep).tolist())
