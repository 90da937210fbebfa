"""FER2013 (``data=fer2013 data.root=PATH``) in both published layouts.

* CSV: ``fer2013.csv`` with columns ``emotion, pixels, Usage`` (Training / PublicTest /
  PrivateTest), 48x48 gray pixels as space-separated integers. ``root`` may be the file
  or a folder containing it.
* Folders (the Kaggle image release): ``root/SPLIT/<class>/*.{png,jpg}`` with SPLIT in
  train / test and optionally val; class folders spelled ``angry/disgust/fear/...`` or
  ``angry/disgusted/fearful/...``.

Validation is PublicTest (or the ``val`` folder) when present, else a stratified seeded
``val_fraction`` of train. Test is PrivateTest (or ``test``); without one, test = val
(with a warning).

``modalities`` may name ``landmarks`` (``modality=landmarks``, or ``[face, landmarks]``): each
face's mesh (``landmarks.mesh``, on the 48x48 image framed by ``pad``) is computed once per split
and cached under ``mesh_cache_dir``; a face without a mesh lacks the modality (see
:func:`~emomm.data.pipelines.landmark_points.with_landmarks`; the log says how many).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from emomm.data.core.emotion_datamodule import EmotionDataModule
from emomm.data.core.splits import stratified_split
from emomm.data.pipelines.landmark_points import LandmarkTransform, occluded_landmarks, paired_flip, with_landmarks
from emomm.data.pipelines.face_images import ImageDataset, read_class_folders, report_skipped
from emomm.data.core.skips import UNREADABLE, SkipLog
from emomm.data.pipelines.text_data import parse_csv
from emomm.data.pipelines.transforms import FaceTransform
from emomm.faces.landmark_store import MeshStore
from emomm.labels import FER2013

log = logging.getLogger(__name__)

_SPLIT_DIRS = {"train": ("train", "training", "Training"),
               "val": ("val", "valid", "validation", "PublicTest"),
               "test": ("test", "testing", "PrivateTest")}
_CSV_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def find_layout(root: Path) -> tuple[str, Path]:
    """('csv', file) or ('folders', root); a clear error when neither is there."""
    if root.is_file() and root.suffix.lower() == ".csv":
        return "csv", root
    if not root.exists():
        raise FileNotFoundError(f"data.root={root} does not exist. Point it at fer2013.csv or at "
                                "the folder holding train/<class>/*.jpg.")
    for name in ("fer2013.csv", "icml_face_data.csv"):
        if (root / name).is_file():
            return "csv", root / name
    if any((root / d).is_dir() for d in _SPLIT_DIRS["train"]):
        return "folders", root
    raise FileNotFoundError(
        f"{root}: neither fer2013.csv nor a train/<class>/ folder found. Expected the Kaggle CSV "
        "(emotion,pixels,Usage) or the image release train/<class>/*.jpg (+ test/, val/).")


#: The reason recorded for a malformed FER2013 CSV row.
BAD_ROW = "malformed row"


def read_fer_csv(path: Path, skips: SkipLog | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Parse the CSV into per-split uint8 image arrays ``[N, 48, 48]`` and labels.

    Rows whose pixel string is not 2304 integers in 0..255, or whose label is outside
    0..6, are skipped and counted (and recorded in ``skips``, one entry per row). A file
    that cannot be parsed is a :class:`~emomm.data.core.emotion_datamodule.DataError` naming the line.
    """
    df = parse_csv(path, path, dtype=str, keep_default_na=False)
    df.columns = [c.strip().lower() for c in df.columns]
    need = {"emotion", "pixels"}
    if not need <= set(df.columns):
        raise ValueError(f"{path}: columns {list(df.columns)} lack {sorted(need - set(df.columns))}")
    usage = list(df["usage"].str.strip()) if "usage" in df.columns else ["Training"] * len(df)
    images, labels, splits, bad = [], [], [], 0
    for row, (emo, pix, use) in enumerate(zip(df["emotion"], df["pixels"], usage)):
        try:
            arr = np.array(pix.split(), dtype=np.int64)
            label = int(emo)
            if arr.size != 48 * 48 or arr.min() < 0 or arr.max() > 255 or not 0 <= label < 7:
                raise ValueError
            if use not in _CSV_USAGE:
                raise ValueError
        except ValueError:
            bad += 1
            if skips is not None:
                skips.add(BAD_ROW, f"{path} line {row + 2}", f"{path} line {row + 2}: not a FER2013 row (pixels "
                          "must be 2304 values in 0..255, emotion 0..6, Usage Training/PublicTest/PrivateTest); "
                          "fix or delete it", _CSV_USAGE.get(use), source=path)
            continue
        images.append(arr.astype(np.uint8).reshape(48, 48))
        labels.append(label)
        splits.append(_CSV_USAGE[use])
    if bad:
        log.warning("%s: skipped %d malformed rows (pixels must be 2304 values in 0..255, "
                    "emotion 0..6, Usage Training/PublicTest/PrivateTest)", path, bad)
    splits_arr = np.array(splits)
    imgs = np.stack(images) if images else np.zeros((0, 48, 48), np.uint8)
    lab = np.array(labels, dtype=np.int64)
    return ({s: imgs[splits_arr == s] for s in _CSV_USAGE.values()},
            {s: lab[splits_arr == s] for s in _CSV_USAGE.values()}, bad)


class Fer2013DataModule(EmotionDataModule):
    def __init__(self, root: str, image_size: int = 48, in_chans: int = 1,
                 mean: Any = 0.5, std: Any = 0.5, augment: dict | None = None,
                 val_fraction: float = 0.1, crop_size: int | None = None,
                 modalities: Any = ("face",), landmarks: dict | None = None,
                 mesh_cache_dir: str = ".cache/landmarks", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.modalities = [m for m in (modalities or ["face"]) if m in self.available_modalities] or ["face"]
        self.landmarks = dict(landmarks or {})
        self.mesh_store = MeshStore(mesh_cache_dir, self.landmarks.get("mesh"))
        self.root = Path(root).expanduser()
        self.val_fraction = val_fraction
        self.tf_args = dict(image_size=image_size, in_chans=in_chans, mean=mean, std=std, crop_size=crop_size)
        self.augment = augment
        #: per split the uint8 images its samples are made from (the occluded-mesh evaluation reads them)
        self.split_images: dict[str, list] = {}

    @property
    def skipped(self) -> int:
        """How many files or rows were left out while loading (see :attr:`skips`)."""
        return len(self.skips)

    @property
    def label_names(self) -> list[str]:
        return list(FER2013)

    @property
    def available_modalities(self) -> list[str]:
        return ["face", "landmarks"]

    @property
    def preprocessing(self) -> dict[str, Any]:
        out = {"face": FaceTransform(**self.tf_args).describe()}
        if "landmarks" in self.modalities:
            out["landmarks"] = {**LandmarkTransform(self.landmarks.get("points", 468)).describe(),
                                "mesh": self.mesh_store.describe()}
        return {m: v for m, v in out.items() if m in self.modalities}

    def _read(self) -> tuple[dict, dict, dict]:
        """Per-split images, labels and source paths (None for CSV rows)."""
        layout, path = find_layout(self.root)
        if layout == "csv":
            images, labels, _ = read_fer_csv(path, self.skips)
            return ({k: list(v) for k, v in images.items() if len(v)},
                    {k: v.tolist() for k, v in labels.items() if len(v)},
                    {k: None for k, v in images.items() if len(v)})
        images, labels, paths = {}, {}, {}
        for split, names in _SPLIT_DIRS.items():
            d = next((path / n for n in names if (path / n).is_dir()), None)
            if d is None:
                continue
            imgs, labs, files = read_class_folders(d, self.label_names, skips=self.skips, split=split)
            skipped = self.skips.select(UNREADABLE, split)
            report_skipped(skipped, f"images in {d}", len(imgs) + len(skipped))
            images[split], labels[split], paths[split] = imgs, labs, files
        return images, labels, paths

    def build_splits(self) -> dict[str, Dataset]:
        images, labels, paths = self._read()
        if "train" not in images:
            raise FileNotFoundError(f"{self.root}: no training data (Usage=Training rows or train/ folder)")
        if "val" not in images:
            keep, held = stratified_split(labels["train"], self.val_fraction, self.seed)
            for part in (images, labels, paths):
                whole = part["train"]
                part["train"] = None if whole is None else [whole[i] for i in keep]
                part["val"] = None if whole is None else [whole[i] for i in held]
            log.info("no validation split in %s: held out a stratified %.0f%% of train (seed %d)",
                     self.root, 100 * self.val_fraction, self.seed)
        if "test" not in images:
            log.warning("no test split in %s: test metrics are computed on the validation split",
                        self.root)
            for part in (images, labels, paths):
                part["test"] = part["val"]
        self.split_images = images
        # a face served with its landmarks flips with them (one draw per sample, in WithLandmarks)
        augment, pair_flip = paired_flip(self.augment, {"face", "landmarks"} <= set(self.modalities))
        train_tf = FaceTransform(train=True, augment=augment, **self.tf_args)
        eval_tf = FaceTransform(**self.tf_args)
        splits = {s: ImageDataset(images[s], labels[s], train_tf if s == "train" else eval_tf,
                                  paths=paths[s])
                  for s in ("train", "val", "test")}
        if "landmarks" not in self.modalities:
            return splits
        return with_landmarks(splits, images, self.mesh_store, self.landmarks, alone=self.modalities == ["landmarks"],
                              what=f"FER2013 ({self.root})", pair_flip=pair_flip)

    def occluded_landmarks(self, split: str, spec: Any, seed: int) -> tuple[Dataset, np.ndarray]:
        """``split`` with its meshes re-run on the faces occluded by ``spec`` (seeded per sample
        by ``seed``, as :class:`~emomm.analysis.occlusion.OccludedDataset` paints the pixels):
        ``(dataset, found Bool [N])`` (:func:`~emomm.data.pipelines.landmark_points.occluded_landmarks`)."""
        return occluded_landmarks(self.splits[split], self.split_images[split], self.mesh_store, spec, seed,
                                  f"FER2013 ({self.root}) {split}")
