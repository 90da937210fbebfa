"""Label-paired real corpora (``data=paired``): a real FER2013 face with a real RAVDESS
utterance of the same emotion.

**The two signals are independent given the label.** The face and the voice of a sample come
from different people recorded in different studios; they share only the emotion label. This
dataset therefore measures fusion *mechanics* on real signals (does the model combine two
real, individually noisy cues? does it tolerate a missing one?), not real audio-visual
co-occurrence (lip motion, synchrony, one person's expression and voice). For that, use the
audio-visual corpora (``data=cremad_video`` / ``ravdess_video``).

Construction (seeded by ``seed``):

* classes: the labels both corpora share, in FER2013's order (angry, disgust, fear, happy,
  sad, surprise, neutral). RAVDESS ``calm`` has no FER counterpart: ``calm: drop`` (default)
  leaves those utterances out, ``calm: merge`` counts them as neutral.
* voices: the RAVDESS reader (:class:`emomm.data.datasets.ravdess.RavdessDataModule`) with its
  speaker-independent split by actor (same options and defaults as ``data=ravdess``: fold 0
  of 5 unless ``fold`` or actor lists are given), decoded once and cached.
* faces: the FER2013 reader (:class:`emomm.data.datasets.fer2013.Fer2013DataModule`). Train pairs take
  faces from FER *train* only. Val and test pairs take faces from FER *val* (PublicTest), split
  into two disjoint seeded stratified halves (val half, test half), because the FER copy in
  ``/work/shared/data`` has no test split; when the FER data has its own test split
  (PrivateTest), val pairs use FER val and test pairs FER test instead. No face and no voice
  is in two splits.
* pairing: every utterance of a split is paired with ``pairs_per_clip`` faces of its class in
  training (several faces per utterance: more pairs to learn from) and ``eval_pairs_per_clip``
  in val/test. Faces of a class are drawn by cycling through a seeded shuffle of that class's
  pool, so they are used evenly before any repeats.

Face preprocessing is that of ``data=fer2013`` (48 px gray, its augment), voice that of
``data=ravdess`` (the ``voice:`` node).
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from emomm.data.pipelines.waveforms import ClipOptions
from emomm.data.core.emotion_datamodule import EmotionDataModule
from emomm.data.core.splits import dataset_labels, stratified_split
from emomm.data.datasets.fer2013 import Fer2013DataModule
from emomm.data.pipelines.face_images import ImageDataset
from emomm.data.datasets.ravdess import RavdessDataModule
from emomm.data.pipelines.transforms import FaceTransform
from emomm.labels import FER2013, RAVDESS, RAVDESS_7

log = logging.getLogger(__name__)

_SPLIT_ID = {"train": 0, "val": 1, "test": 2}


class PairedDataset(Dataset):
    """``{"face": [C,H,W], "voice": [T]}`` samples of (face, voice) index pairs.

    Args:
        faces / voices: the FER image dataset and the RAVDESS audio dataset of the split.
        face_idx / voice_idx / labels: one entry per pair (labels in the shared class list).
        modalities: which of face / voice to serve.
    """

    def __init__(self, faces: Dataset, voices: Dataset, face_idx: Sequence[int], voice_idx: Sequence[int],
                 labels: Sequence[int], modalities: Sequence[str] = ("face", "voice")) -> None:
        self.faces, self.voices = faces, voices
        self.face_idx, self.voice_idx = list(face_idx), list(voice_idx)
        self.labels = [int(x) for x in labels]
        self.modalities = list(modalities)
        self.speakers = [voices.speakers[i] for i in self.voice_idx]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        inputs = {}
        if "face" in self.modalities:
            inputs["face"] = self.faces[self.face_idx[i]]["inputs"]["face"]
        if "voice" in self.modalities:
            inputs["voice"] = self.voices[self.voice_idx[i]]["inputs"]["voice"]
        return {"inputs": inputs, "label": self.labels[i], "index": i}


class PairedDataModule(EmotionDataModule):
    """FER2013 faces x RAVDESS voices paired by label (see the module docstring).

    Args:
        fer_root / ravdess_root: the two datasets (their ``data=fer2013`` / ``data=ravdess``
            layouts).
        modalities: what to serve, a subset of ``[face, voice]`` (null = both).
        calm: ``drop`` | ``merge`` (into neutral).
        pairs_per_clip / eval_pairs_per_clip: faces per utterance in train / val and test.
        face: ``image_size``, ``in_chans``, ``mean``, ``std``, ``augment`` (as ``data=fer2013``).
        voice: the ``voice:`` node (sample_rate, duration, pad, trim_db, augment).
        include_song, fold, n_folds, train_speakers, val_speakers, test_speakers, load_workers:
            the RAVDESS options.
        fer_val_fraction: held-out share of FER train when the FER data has no val split.
    """

    def __init__(self, fer_root: str, ravdess_root: str, modalities: Sequence[str] | None = None,
                 calm: str = "drop", pairs_per_clip: int = 4, eval_pairs_per_clip: int = 1,
                 face: dict[str, Any] | None = None, voice: dict[str, Any] | None = None,
                 include_song: bool = False, fold: int | None = None, n_folds: int = 5,
                 train_speakers: Sequence[int] | None = None, val_speakers: Sequence[int] | None = None,
                 test_speakers: Sequence[int] | None = None, load_workers: int = 4,
                 fer_val_fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if calm not in ("drop", "merge"):
            raise ValueError(f"data.calm={calm!r} must be drop or merge (into neutral)")
        if pairs_per_clip < 1 or eval_pairs_per_clip < 1:
            raise ValueError("data.pairs_per_clip and data.eval_pairs_per_clip must be >= 1")
        self.fer_root, self.ravdess_root = Path(fer_root).expanduser(), Path(ravdess_root).expanduser()
        self.modalities = list(modalities) if modalities else ["face", "voice"]
        self.calm = calm
        self.pairs = {"train": int(pairs_per_clip), "val": int(eval_pairs_per_clip),
                      "test": int(eval_pairs_per_clip)}
        f = dict(face or {})
        self.face_args = dict(image_size=int(f.get("image_size", 48)), in_chans=int(f.get("in_chans", 1)),
                              mean=f.get("mean", 0.5), std=f.get("std", 0.5))
        self.face_augment = f.get("augment")
        v = dict(voice or {})
        self.clip = ClipOptions(sample_rate=int(v.get("sample_rate", 16000)), duration=v.get("duration", 3.0),
                                pad=bool(v.get("pad", True)), trim_db=v.get("trim_db"))
        self.voice_augment = v.get("augment")
        self.ravdess_args = dict(include_song=include_song, fold=fold, n_folds=n_folds,
                                 train_speakers=train_speakers, val_speakers=val_speakers,
                                 test_speakers=test_speakers, load_workers=load_workers)
        self.fer_val_fraction = fer_val_fraction
        self.pair_counts: dict[str, dict[str, int]] = {}

    @property
    def label_names(self) -> list[str]:
        voice_labels = RAVDESS_7 if self.calm == "merge" else RAVDESS
        return [c for c in FER2013 if c in voice_labels]

    @property
    def available_modalities(self) -> list[str]:
        return ["face", "voice"]

    @property
    def preprocessing(self) -> dict[str, Any]:
        out = {"face": FaceTransform(**self.face_args).describe(), "voice": self.clip.describe()}
        return {m: out[m] for m in self.modalities if m in out}

    # -- the two readers -----------------------------------------------------------------
    def _voices(self) -> tuple[dict[str, Dataset], list[str]]:
        rav = RavdessDataModule(
            str(self.ravdess_root), merge_calm=self.calm == "merge", sample_rate=self.clip.sample_rate,
            duration=self.clip.duration, pad=self.clip.pad, trim_db=self.clip.trim_db,
            augment=self.voice_augment, seed=self.seed, **self.ravdess_args)
        splits = rav.build_splits()
        self.skips.extend(rav.skips)   # what the RAVDESS reader left out is this module's too
        if splits["test"] is splits["val"]:
            log.warning("paired: RAVDESS has no test actors; test pairs reuse the validation utterances")
        return splits, rav.label_names

    def _faces(self) -> dict[str, Dataset]:
        fer = Fer2013DataModule(str(self.fer_root), augment=self.face_augment, val_fraction=self.fer_val_fraction,
                                seed=self.seed, **self.face_args)
        splits = fer.build_splits()
        self.skips.extend(fer.skips)
        # Without a test split the FER reader serves its val images again as test (the same list).
        if splits["test"].images is not splits["val"].images:
            return splits
        # No FER test split: val and test faces are two disjoint stratified halves of FER val.
        val: ImageDataset = splits["val"]
        keep, held = stratified_split(val.labels, 0.5, self.seed)
        log.info("paired: FER2013 has no test split; its val split is cut into two disjoint halves "
                 "(%d faces for val pairs, %d for test pairs)", len(keep), len(held))
        return {"train": splits["train"], "val": _subset(val, keep), "test": _subset(val, held)}

    # -- pairing ---------------------------------------------------------------------------
    def build_splits(self) -> dict[str, Dataset]:
        self.require_modalities(self.modalities)
        voices, voice_labels = self._voices()
        faces = self._faces()
        shared = {n: i for i, n in enumerate(self.label_names)}
        out: dict[str, Dataset] = {}
        for split in ("train", "val", "test"):
            vds, fds = voices[split], faces[split]
            face_labels = np.asarray(dataset_labels(fds))
            rng = np.random.default_rng([self.seed, _SPLIT_ID[split]])
            pools, cursor = {}, Counter()
            f_idx, v_idx, labels, dropped = [], [], [], 0
            for j, vl in enumerate(dataset_labels(vds)):
                name = voice_labels[vl]
                if name not in shared:   # calm, when dropped
                    dropped += 1
                    continue
                k = shared[name]
                fer_k = FER2013.index(name)
                if fer_k not in pools:
                    pool = np.flatnonzero(face_labels == fer_k)
                    if not len(pool):
                        raise ValueError(f"paired: the {split} FER2013 faces ({self.fer_root}) have no "
                                         f"{name!r} image to pair with RAVDESS utterances")
                    pools[fer_k] = rng.permutation(pool)
                for _ in range(self.pairs[split]):
                    pool = pools[fer_k]
                    f_idx.append(int(pool[cursor[fer_k] % len(pool)]))
                    cursor[fer_k] += 1
                    v_idx.append(j)
                    labels.append(k)
            if not labels:
                raise ValueError(f"paired: no {split} pairs (RAVDESS {self.ravdess_root} has no utterance "
                                 f"of the classes {self.label_names} in that split)")
            out[split] = PairedDataset(fds, vds, f_idx, v_idx, labels, self.modalities)
            counts = Counter(labels)
            self.pair_counts[split] = {n: counts.get(i, 0) for n, i in shared.items()}
            log.info("paired %s: %d pairs of %d utterances x %d faces each (%d calm utterances dropped); "
                     "per class %s", split, len(labels), len(set(v_idx)), self.pairs[split], dropped,
                     self.pair_counts[split])
        return out


def _subset(ds: ImageDataset, idx: np.ndarray) -> ImageDataset:
    return ImageDataset([ds.images[i] for i in idx], [ds.labels[i] for i in idx], ds.transform,
                        modality=ds.modality, paths=None if ds.paths is None else [ds.paths[i] for i in idx])
