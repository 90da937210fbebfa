"""`EmotionDataModule`: what every dataset shares (splits, loaders, sizes, class counts).

A dataset subclass implements two things:

* ``label_names`` - the ordered canonical label names (known from config alone, before
  ``setup``, so the model can be built with the right head);
* ``build_splits()`` - a dict ``{"train"|"val"|"test": Dataset}`` of datasets that yield
  samples in the :mod:`emomm.data.core.collate` format and expose an integer ``labels`` array.

and may override ``aux_label_names`` (``{task: [names]}``: auxiliary labels its samples carry
under ``"aux"``, which a model can learn beside the emotion; see ``EmotionModule``'s
``aux_tasks``), ``preprocessing`` (stored in checkpoints so prediction can reproduce it; one
entry per modality the datamodule serves) and ``available_modalities`` (what the dataset can
provide at all; the default is the modalities of ``preprocessing``). Training calls
:meth:`EmotionDataModule.require_modalities` with the model's ``modalities`` so a modality the
data lacks is a clear error instead of a model input that never arrives.

What a dataset leaves out while loading (unreadable files, folders it cannot list, malformed
rows) goes into the DataModule's :class:`~emomm.data.core.skips.SkipLog` (``skips``). ``setup``
then checks that the data can serve the stage (:meth:`EmotionDataModule.data_problems`): a
split that came out empty, a class without any training sample and folders that could not
be read are a :class:`DataError` naming the split, the folders and the fix, unless
``allow_missing_classes`` / ``allow_unreadable_folders`` say they are wanted (then a warning).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from emomm.data.core.collate import collate_samples
from emomm.data.core.sampling import (EpochSeededSampler, ResumableDataLoader, SeededSamples,
                                      balanced_sample_weights, seed_globals, step_seed)
from emomm.data.core.skips import UNREADABLE_FOLDER, Skip, SkipLog
from emomm.data.core.splits import SPLITS, dataset_aux, dataset_labels, limit_split, pooled_fold_splits
from emomm.media.files import walk_files

log = logging.getLogger(__name__)

#: The splits each Lightning stage reads (``setup(stage)`` checks these; None: all of them).
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class DataError(ValueError):
    """Data that cannot serve the run as asked. The message names the split, the files or
    folders and the fix; ``python -m emomm.train`` prints it without a traceback and
    ``python -m emomm.validate`` lists it among the report's problems."""


class EmotionDataModule(L.LightningDataModule):
    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        limit_per_split: int | None = None,
        cv_fold: int | None = None,
        cv_folds: int = 5,
        balance_groups: Any = None,
        balance_by: str = "group",
        drop_last: bool = False,
        allow_missing_classes: bool = False,
        allow_unreadable_folders: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.limit_per_split = limit_per_split
        # Stratified k-fold CV over the pooled splits (emomm.cv, for data without speakers).
        self.cv_fold, self.cv_folds = cv_fold, cv_folds
        # Fairness mitigation (`+data.balance_groups=ravdess_sex`): the training loader draws
        # samples so that every group (`data.balance_by=group`) or (group, class) cell (`group_class`) is equally likely.
        self.balance_groups, self.balance_by = balance_groups, balance_by
        # Training batches all of batch_size: the epoch's last, partial batch is skipped (a
        # fresh shuffle each epoch, so every sample is still seen). With a mean loss a batch of
        # a few samples takes a full-sized, noisy step; under a high learning rate and fast
        # batch-norm statistics (experiment=fer2013_fast: lr 0.75, BN momentum 0.6) that one
        # step per epoch made validation swing
        # (experiments/log/2026-12-07-fer2013-with-the-whitened-cnn-the-validation-swings.md).
        self.drop_last = drop_last
        # What a user may want on purpose (a warning then, not an error): training with a
        # class that has no training sample; going on without folders that cannot be read.
        self.allow_missing_classes = bool(allow_missing_classes)
        self.allow_unreadable_folders = bool(allow_unreadable_folders)
        self.skips = SkipLog()
        self.splits: dict[str, Dataset] = {}

    # -- to implement --------------------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        raise NotImplementedError

    def build_splits(self) -> dict[str, Dataset]:
        raise NotImplementedError

    @property
    def aux_label_names(self) -> dict[str, list[str]]:
        """``{task: ordered label names}`` of the auxiliary labels the samples carry (none here)."""
        return {}

    @property
    def preprocessing(self) -> dict[str, Any]:
        """Everything a predictor needs to turn raw media into model inputs."""
        return {}

    @property
    def available_modalities(self) -> list[str]:
        """The modalities this dataset can provide (not only the ones it serves now)."""
        return list(self.preprocessing)

    # -- shared --------------------------------------------------------------------------
    @property
    def dataset_name(self) -> str:
        return type(self).__name__.replace("DataModule", "")

    def require_modalities(self, requested: Sequence[str]) -> None:
        """Raise a ``ValueError`` naming the dataset, the requested modalities it lacks and
        the ones it has, when any of ``requested`` is not available."""
        have = list(self.available_modalities)
        missing = [m for m in requested if m not in have]
        if missing:
            raise ValueError(
                f"dataset {self.dataset_name} cannot provide modalities {missing} (requested "
                f"{list(requested)}); it has {have}. Choose modalities=[...] among {have}, or a "
                "dataset that provides the others.")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def setup(self, stage: str | None = None) -> None:
        """Build the splits (once) and check that they can serve ``stage`` (Lightning's
        ``fit`` / ``validate`` / ``test`` / ``predict``; None: every split, no class check):
        a :class:`DataError` listing :meth:`data_problems` otherwise."""
        self.build()
        problems = self.data_problems(STAGE_SPLITS.get(stage or "", SPLITS), classes=stage == "fit")
        if problems:
            raise DataError("\n".join(problems))

    def build(self) -> None:
        """Build the splits once, without checking them (``python -m emomm.validate`` reports
        what :meth:`data_problems` finds instead of stopping at the first)."""
        if self.splits:
            return
        self.skips.clear()
        splits = self.build_splits()
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"{type(self).__name__}.build_splits() lacks splits {missing}")
        if self.cv_fold is not None:
            splits = pooled_fold_splits(splits, self.cv_fold, self.cv_folds, self.seed)
        if self.limit_per_split:
            splits = {k: limit_split(v, self.limit_per_split, self.seed) for k, v in splits.items()}
        self.splits = splits
        log.info("data sizes: %s", self.data_sizes)
        for warning in self.data_warnings():
            log.warning("%s", warning)

    # -- what was left out, and whether the data can still serve ------------------------
    @property
    def location(self) -> str:
        """Where the data is (its root folder or table), for messages."""
        for name in ("root", "path"):
            where = getattr(self, name, None)
            if where:
                return str(where)
        return self.dataset_name

    def list_files(self, root: str | Path, suffixes: Iterable[str] | None = None,
                   split: str | None = None) -> list[Path]:
        """:func:`~emomm.media.files.walk_files` that records each folder it cannot list
        (permissions) in :attr:`skips`, so it is counted and reported, not passed over."""
        errors: list[OSError] = []
        files = walk_files(root, suffixes, errors=errors)
        self.skips.add_folder_errors(errors, split)
        return files

    def absent_classes(self) -> list[str]:
        """Classes without any sample in the training split."""
        return [n for n, c in zip(self.label_names, self.class_counts("train")) if c == 0]

    def data_problems(self, splits: Sequence[str] = SPLITS, classes: bool = True) -> list[str]:
        """Why the data cannot serve (one message each, naming the split, folders and fix):
        any of ``splits`` empty; with ``classes``, a class without a training sample (unless
        ``allow_missing_classes``); folders that could not be read (unless
        ``allow_unreadable_folders``)."""
        empty = [s for s in splits if s in self.splits and len(self.splits[s]) == 0]
        # A split that is another one again (test = val without test data) is said once.
        out = [self._empty_split_message(s) for i, s in enumerate(empty)
               if all(self.splits[s] is not self.splits[e] for e in empty[:i])]
        if classes and not self.allow_missing_classes and len(self.splits.get("train", ())):
            absent = self.absent_classes()
            if absent:
                out.append(self._absent_classes_message(absent) + "; to train without them on purpose, "
                           "set ++data.allow_missing_classes=true")
        folders = self.skips.select(UNREADABLE_FOLDER)
        if folders and not self.allow_unreadable_folders:
            out.append(self._folders_message(folders) + "; or set ++data.allow_unreadable_folders=true to "
                       "go on without them")
        return out

    def data_warnings(self) -> list[str]:
        """What :meth:`data_problems` lets through because the config allows it."""
        out = []
        if self.allow_missing_classes and self.splits.get("train") is not None and len(self.splits["train"]):
            absent = self.absent_classes()
            if absent:
                out.append(self._absent_classes_message(absent) + " (data.allow_missing_classes=true)")
        folders = self.skips.select(UNREADABLE_FOLDER)
        if folders and self.allow_unreadable_folders:
            out.append(self._folders_message(folders) + " (data.allow_unreadable_folders=true)")
        return out

    def _empty_split_message(self, split: str) -> str:
        left = self.skips.select(split=split)
        head = f"the {split} split of {self.location} is empty"
        if not left:
            before = self.skips.select(split=None)
            note = (f" ({len(before)} items were left out before splitting: {self.skips.summary(before)}; "
                    f"first: {before[0].message})") if before else ""
            return f"{head}: no sample was found for it{note}; check the data's layout and split options"
        return (f"{head}: all {len(left)} of its items were left out while loading "
                f"({self.skips.summary(left)}) under {_common_folder(left)}; first: {left[0].message}. "
                f"Fix or replace them (python -m emomm.validate lists them all)")

    def _absent_classes_message(self, absent: list[str]) -> str:
        return (f"classes {absent} have no sample in the train split of {self.location} "
                f"({len(self.splits['train'])} samples), so the model would never learn them: add training "
                "data for them or choose a label set without them")

    def _folders_message(self, folders: list[Skip]) -> str:
        shown = ", ".join(s.item for s in folders[:5]) + (" ..." if len(folders) > 5 else "")
        return (f"{len(folders)} folder(s) under {self.location} cannot be read, so the files in them are "
                f"left out: {shown}. Make them readable (chmod -R u+rX FOLDER) or move them out of the "
                "data folder")

    @property
    def data_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}

    def class_counts(self, split: str = "train") -> np.ndarray:
        labels = np.asarray(dataset_labels(self.splits[split]))
        return np.bincount(labels, minlength=self.num_classes)

    def aux_counts(self, split: str = "train") -> dict[str, int]:
        """``{task: samples with a label}`` of the auxiliary labels a split's dataset keeps
        (``aux``; -1 = none); datasets that keep none give ``{}``."""
        return {t: sum(1 for x in v if x >= 0) for t, v in dataset_aux(self.splits[split]).items()}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset, sampler = self.splits[split], None
        if split == "train" and shuffle:
            # Order and randomness fixed by the position (seed, epoch, batch): a resumed run
            # continues exactly where it stopped (see emomm.data.core.sampling).
            dataset, sampler = SeededSamples(dataset), self._train_sampler()
        elif split != "train" and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Under DDP, Lightning's default DistributedSampler pads every shard to the same
            # length by repeating samples, which counts them twice in val/test metrics; this
            # one shards without repeats (torchmetrics syncs the uneven shards at compute).
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_samples,
            drop_last=split == "train" and self._drops_last(),
            progress_fn=self._train_progress if split == "train" else None,
        )

    def _drops_last(self) -> bool:
        """``drop_last`` for the training loader, unless the split is smaller than one batch
        (it would give no batch at all: that keeps the partial batch, with a warning)."""
        if not self.drop_last:
            return False
        n = len(self.splits["train"])
        if n < self.batch_size:
            log.warning("data.drop_last: the training split has %d samples, fewer than data.batch_size=%d; "
                        "keeping its one partial batch", n, self.batch_size)
            return False
        return True

    def _trainer_epoch(self) -> int | None:
        trainer = getattr(self, "trainer", None)
        return None if trainer is None else int(trainer.current_epoch)

    def _train_progress(self) -> tuple[int, int] | None:
        """``(epoch, training batches done in it)`` from the trainer, saved with checkpoints
        by the training loader (``processed``: a checkpoint written in ``on_train_batch_end``
        counts its batch as done, as Lightning does when it resumes)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return None
        return int(trainer.current_epoch), int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Seeds the global RNGs from the training step's position before any hook or
        ``training_step`` sees the batch: dropout, mixup and random crops of a step repeat
        exactly in a resumed run (see emomm.data.core.sampling)."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training:
            seed_globals(step_seed(self.seed, trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_idx + 1))
        return batch

    def _train_sampler(self) -> EpochSeededSampler:
        """The training order: a permutation per epoch; with ``balance_groups``, ``len(train)``
        draws with replacement, every group (or (group, class) cell) equally likely."""
        weights = None
        if self.balance_groups:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                raise ValueError("data.balance_groups is single-process only (no DDP sampler for it yet)")
            weights = balanced_sample_weights(self.splits["train"], self.balance_groups, by=self.balance_by,
                                              root=getattr(self, "root", None))
        return EpochSeededSampler(len(self.splits["train"]), self.seed, self._trainer_epoch, weights=weights,
                                  seed_samples=True)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


def _common_folder(entries: Sequence[Skip]) -> str:
    """Where ``entries`` are: their tables (rows), else the deepest folder holding them all."""
    sources = sorted({e.source for e in entries if e.source})
    if sources:
        return ", ".join(sources)
    paths = [e.item for e in entries]
    try:
        common = os.path.commonpath(paths)
    except ValueError:  # relative and absolute paths mixed
        return os.path.dirname(paths[0])
    return os.path.dirname(common) if common in paths else common
