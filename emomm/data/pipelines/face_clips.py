"""Datasets of face crops from videos and photos, through the face-crop cache.

:class:`FaceCropDataModule` is the base of every dataset whose samples are cut out of raw
media by :mod:`emomm.faces`: it lists the files (subclass), splits them (by speaker or a
seeded stratified split), makes sure their crops are cached (building the missing ones in
parallel at setup, reported like ``python -m emomm.prepare``), leaves out files that are
unreadable or show no face (counted and named in a warning), and serves

* ``modality="video"``: ``{"video": float [T, C, H, W]}``, T <= ``num_frames`` (clips with
  fewer usable frames are shorter; the collate pads them and reports ``lengths``);
* ``modality="face"``: ``{"face": float [C, H, W]}`` (a still photo).

Frames of a clip get the same random augmentation (one draw per clip). With more cached
frames than ``num_frames``, evaluation takes them uniformly and training takes one random
frame from each of ``num_frames`` equal segments (temporal jitter).

Audio-visual: a video dataset also provides ``voice`` (``available_modalities`` is
``[video, voice]``), the audio track of the same file (or, for RAVDESS video-only ``02-`` files,
the matching ``03-`` audio file, :attr:`MediaItem.audio`). With ``voice`` in ``modalities``, every
used file's audio is decoded once at setup (thread pool, :func:`emomm.data.pipelines.waveforms.read_many`),
resampled to ``voice.sample_rate`` and kept in memory, then served like the voice datasets do
(``voice: float [T]``, :class:`~emomm.data.pipelines.waveforms.ClipOptions` crop/pad, ``voice.augment`` in
train). Files whose audio cannot be read or that have no audio track follow ``missing_audio``:
``skip`` (default: the sample is left out, counted and named in a warning) or ``omit`` (the
sample is kept without its voice; the batch's ``present`` mask says so). Without ``video`` in
``modalities`` no faces are cropped at all (``modalities=[voice]`` reads only the sound).

Landmarks: with ``landmarks`` in ``modalities``, the face mesh of every cached crop is computed
once per file and cached beside the crops (:class:`~emomm.faces.landmark_store.MeshStore`,
``landmarks.mesh``); a video sample's ``landmarks`` are ``[T, P, 3]``, the meshes of the same
frames the video input uses where the mesh was found (a photo: ``[P, 3]``). A sample none of
whose frames has a mesh lacks the modality (``present`` False); with landmarks alone it is left
out of training and scored from an empty mesh in val/test (counted in the log).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from emomm.data.pipelines.landmark_points import LandmarkTransform, clip_points, draw_flip, flip_pixels, paired_flip
from emomm.data.pipelines.waveforms import ClipOptions, WaveAugment, read_many, report_unreadable, sample_rng
from emomm.data.core.emotion_datamodule import EmotionDataModule
from emomm.data.core.splits import stratified_split, stratified_three_way
from emomm.data.core.skips import NO_AUDIO, NO_FACE, UNREADABLE
from emomm.data.core.speakers import speaker_splits
from emomm.data.pipelines.transforms import FrameTransform
from emomm.media.video import uniform_indices
from emomm.faces.cache import source_identity
from emomm.faces.crop_store import FaceCropStore, format_report
from emomm.faces.landmark_store import MeshStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaItem:
    path: Path
    label: int
    speaker: int | None = None
    audio: Path | None = None      # where the sound is when not in ``path`` (RAVDESS 02 + 03)

    @property
    def audio_source(self) -> Path:
        return self.audio or self.path


def pick_frames(n: int, k: int | None, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of the frames a sample uses out of ``n`` cached ones (see module docstring)."""
    if not k or n <= k:
        return np.arange(n)
    if not train:
        return uniform_indices(n, k)
    rng = rng or np.random.default_rng()
    edges = np.floor(np.linspace(0, n, k + 1)).astype(np.int64)
    lo, hi = edges[:-1], np.maximum(edges[1:], edges[:-1] + 1)
    return np.minimum(rng.integers(lo, hi), n - 1)


class FaceClipDataset(Dataset):
    """Samples from cached face crops of ``items`` and, with ``waves``, their decoded audio
    (see the module docstring).

    Args:
        visual: serve the face crops (``modality``); False = voice only.
        waves: one decoded waveform per item (None where the item has no usable audio), or
            None when the voice is not served.
        clip / augment: how a waveform becomes the ``voice`` input.
    """

    def __init__(self, items: Sequence[MediaItem], store: FaceCropStore, transform: FrameTransform,
                 modality: str = "video", num_frames: int | None = 8, train: bool = False,
                 visual: bool = True, waves: Sequence[np.ndarray | None] | None = None,
                 clip: ClipOptions | None = None, augment: WaveAugment | None = None,
                 meshes: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                 landmark_tf: LandmarkTransform | None = None, landmarks_alone: bool = False,
                 pair_flip: float | None = None) -> None:
        self.items = list(items)
        self.labels = [it.label for it in self.items]
        self.paths = [str(it.path) for it in self.items]
        self.speakers = [it.speaker for it in self.items]
        self.store, self.transform = store, transform
        self.modality, self.num_frames, self.train = modality, num_frames, train
        self.visual = visual
        self.waves = list(waves) if waves is not None else None
        self.clip, self.augment = clip or ClipOptions(), augment
        if self.waves is not None and len(self.waves) != len(self.items):
            raise ValueError(f"{len(self.waves)} waveforms for {len(self.items)} items")
        #: per item ``(points [F, P, 3], found [F])`` of its cached frames, when landmarks are served
        self.meshes, self.landmark_tf, self.landmarks_alone = meshes, landmark_tf, landmarks_alone
        #: frames and landmarks flip together with this probability (``paired_flip``; training only)
        self.pair_flip = pair_flip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        idx = self.frame_indices(i) if self.meshes is not None and self.modality == "video" else None
        inputs = {self.modality: self.visual_input(i, idx)} if self.visual else {}
        flip = draw_flip(self.pair_flip)
        if flip and self.modality in inputs:
            inputs[self.modality] = flip_pixels(inputs[self.modality])
        empty = {}
        if self.meshes is not None:
            pts = self.mesh_points(i, idx)
            inputs.update(self.landmarks_from(pts, flip))
            if pts is None and self.landmarks_alone:
                empty = {"empty": ["landmarks"]}   # the all-zero stand-in (collate's ``empty``)
        if self.waves is not None and self.waves[i] is not None:
            rng = sample_rng() if self.train else None
            inputs["voice"] = self.clip.to_model_input(self.waves[i], self.train, self.augment, rng)
        return {"inputs": inputs, "label": self.labels[i], "index": i, **empty}

    def frame_indices(self, i: int, n: int | None = None) -> np.ndarray:
        """The cached frames item ``i`` uses this time (random segments in training)."""
        n = len(self.store.get(self.items[i].path).crops) if n is None else n
        return pick_frames(max(n, 1), self.num_frames, self.train,
                           np.random.default_rng(torch.randint(0, 2**31, ()).item()) if self.train else None)

    def visual_input(self, i: int, idx: np.ndarray | None = None) -> torch.Tensor:
        entry = self.store.get(self.items[i].path)
        crops = entry.crops
        if self.modality == "face":
            x = self.transform(crops[:1])[0]
        else:
            if len(crops) == 0:  # every frame dropped (no face): one black frame, not a crash
                size = int(self.store.settings["size"])
                crops = np.zeros((1, size, size, 3), np.uint8)
            idx = self.frame_indices(i, len(crops)) if idx is None else idx
            x = self.transform(crops[idx])
        return x

    def mesh_points(self, i: int, idx: np.ndarray | None = None) -> np.ndarray | None:
        """Item ``i``'s mesh points ``[T, P', 3]`` from the frames ``idx`` that have a mesh (a
        photo: ``[P', 3]``, its face's); None without any."""
        points, found = self.meshes[i]
        if self.modality == "face":
            return points[0] if len(found) and found[0] else None
        idx = self.frame_indices(i, len(found)) if idx is None else idx
        idx = idx[idx < len(found)]
        return clip_points([points[j] if found[j] else None for j in idx])

    def landmark_input(self, i: int, idx: np.ndarray | None = None, flip: bool | None = None
                       ) -> dict[str, torch.Tensor]:
        """``{"landmarks": [T, P, 3]}`` (a photo: ``[P, 3]``) from the frames ``idx`` that have a
        mesh (:meth:`landmarks_from` of :meth:`mesh_points`)."""
        return self.landmarks_from(self.mesh_points(i, idx), flip)

    def landmarks_from(self, pts: np.ndarray | None, flip: bool | None = None) -> dict[str, torch.Tensor]:
        """``{"landmarks": [T, P, 3]}`` (a photo: ``[P, 3]``) from :meth:`mesh_points`; ``{}``
        without any (landmarks alone: an all-zero mesh). ``flip``: mirrored or not (the frames'
        paired flip); None: the transform's own ``mirror_p``."""
        if pts is not None:
            return {"landmarks": self.landmark_tf(pts, flip=flip)}
        if not self.landmarks_alone:
            return {}
        shape = (1,) if self.modality == "video" else ()
        return {"landmarks": torch.zeros(*shape, self.landmark_tf.points, 3)}


def clip_meshes(paths: Sequence[Path], store: FaceCropStore, mesh_store: MeshStore, alone: bool = False
                ) -> dict[Path, tuple[np.ndarray, np.ndarray]]:
    """Each file's meshes ``(points [F, P, 3], found [F])`` of its cached crops (cached in
    ``mesh_store``); logs how many frames and files have one (``alone``: landmarks are the only
    modality, so files without any are left out of training)."""
    out = {}
    for path in paths:
        ident = {"source": source_identity(path, store.key_mode), "crops": store.settings}
        out[path] = mesh_store.get(ident, lambda path=path: list(store.get(path).crops), str(path))
    frames = sum(len(f) for _, f in out.values())
    found = sum(int(f.sum()) for _, f in out.values())
    none = [str(p) for p, (_, f) in out.items() if not f.any()]
    log.info("face mesh: found in %d of %d cached frames (%.1f%%); %d of %d files without any%s", found, frames,
             100.0 * found / max(frames, 1), len(none), len(out),
             (" (left out of training, scored from an empty mesh in val/test)" if alone else
              " (landmarks masked as missing there)") if none else "")
    return out


class FaceCropDataModule(EmotionDataModule):
    """Base of the video / face-photo datasets (see the module docstring).

    Subclasses implement ``label_names``, ``list_items()`` and ``split_items(items)``.

    Args:
        root: the dataset folder.
        faces: the ``faces`` config node (detector, crop geometry, cache).
        modality: ``video`` or ``face``.
        image_size / in_chans / mean / std / augment: model input (``FaceTransform``).
        num_frames: frames per clip given to the model (null = every cached frame).
        sampling: which frames of a video are decoded, cropped and cached
            (``num_frames`` / ``step`` / ``fps`` / ``max_frames``).
        modalities: what to serve (the config's top-level ``modalities``); null = the visual
            ``modality`` alone. Video datasets can also serve ``voice``.
        voice: the ``voice`` node (sample_rate, duration, pad, trim_db, augment).
        missing_audio: ``skip`` | ``omit`` (module docstring).
        load_workers: threads decoding audio.
        landmarks / mesh_cache_dir: the ``landmarks`` node (``points``, ``mesh``, ``augment``) and
            where the meshes are cached, when ``landmarks`` is in ``modalities``.
    """

    def __init__(self, root: str, faces: dict[str, Any] | None = None, modality: str = "video",
                 image_size: int = 64, in_chans: int = 3, mean: Any = 0.5, std: Any = 0.5,
                 augment: dict[str, Any] | None = None, num_frames: int | None = 8,
                 sampling: dict[str, Any] | None = None, modalities: Sequence[str] | None = None,
                 voice: dict[str, Any] | None = None, missing_audio: str = "skip",
                 load_workers: int = 4, landmarks: dict[str, Any] | None = None,
                 mesh_cache_dir: str = ".cache/landmarks", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if modality not in ("video", "face"):
            raise ValueError(f"modality={modality!r} must be video or face")
        if missing_audio not in ("skip", "omit"):
            raise ValueError(f"data.missing_audio={missing_audio!r} must be skip or omit")
        self.root = Path(root).expanduser()
        self.modality = modality
        self.modalities = list(modalities) if modalities else [modality]
        v = dict(voice or {})
        self.clip = ClipOptions(sample_rate=int(v.get("sample_rate", 16000)), duration=v.get("duration", 3.0),
                                pad=bool(v.get("pad", True)), trim_db=v.get("trim_db"))
        self.voice_augment = WaveAugment.from_config(v.get("augment"))
        self.missing_audio, self.load_workers = missing_audio, int(load_workers)
        self.faces = dict(faces or {})
        # Still photos have one frame: sampling does not apply (and stays out of the cache key).
        self.sampling = {} if modality == "face" else dict(sampling or {"num_frames": 16})
        self.tf_args = dict(image_size=image_size, in_chans=in_chans, mean=mean, std=std)
        self.augment = augment
        self.num_frames = num_frames
        self.prepare_report: dict[str, Any] | None = None
        self._store: FaceCropStore | None = None
        self.landmarks = dict(landmarks or {})
        self.mesh_store = MeshStore(mesh_cache_dir, self.landmarks.get("mesh"))

    @property
    def excluded(self) -> dict[str, list[str]]:
        """The files left out, by why: ``unreadable``, ``no_face``, ``no_audio`` (from :attr:`skips`)."""
        out: dict[str, list[str]] = {}
        for key, reason in (("unreadable", UNREADABLE), ("no_face", NO_FACE), ("no_audio", NO_AUDIO)):
            files = list(dict.fromkeys(s.item for s in self.skips.select(reason)))
            if files:
                out[key] = files
        return out

    def _record(self, reason: str, files: dict[str, str], splits: dict[str, list[MediaItem]],
                source=lambda it: it.path) -> None:
        """Record ``files`` (``{file: message}``) in :attr:`skips` under each split using them."""
        for split, items in splits.items():
            if split == "test" and items is splits.get("val"):
                continue   # test = val: once
            for it in items:
                key = str(source(it))
                if key in files:
                    self.skips.add(reason, key, files[key], split)

    # -- to implement ----------------------------------------------------------------------
    def list_items(self) -> list[MediaItem]:
        raise NotImplementedError

    def split_items(self, items: list[MediaItem]) -> dict[str, list[MediaItem]]:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    @property
    def available_modalities(self) -> list[str]:
        return [self.modality, "voice", "landmarks"] if self.modality == "video" else [self.modality, "landmarks"]

    @property
    def serves_landmarks(self) -> bool:
        return "landmarks" in self.modalities

    @property
    def needs_crops(self) -> bool:
        """Whether the faces are cropped (for the visual input or the landmarks)."""
        return self.serves_visual or self.serves_landmarks

    @property
    def serves_visual(self) -> bool:
        return self.modality in self.modalities

    @property
    def serves_voice(self) -> bool:
        return "voice" in self.modalities

    @property
    def store(self) -> FaceCropStore:
        if self._store is None:
            self._store = FaceCropStore(self.faces, self.sampling)
        return self._store

    def crop_sources(self) -> list[Path]:
        """Every file of the dataset (what ``python -m emomm.prepare`` crops)."""
        return [it.path for it in self.list_items()]

    def _check_root(self) -> None:
        if not self.root.exists():
            raise FileNotFoundError(f"data.root={self.root} does not exist; point it at the dataset folder")

    def speaker_split(self, items: list[MediaItem], train_speakers=None, val_speakers=None, test_speakers=None,
                      fold: int | None = None, n_folds: int = 5) -> dict[str, list[MediaItem]]:
        """Split by speaker with :func:`emomm.data.core.speakers.speaker_splits`, with the rules of
        the voice datasets: ``fold`` (k-fold by speaker) or explicit lists (one may be None =
        the remaining speakers), not both; neither = fold 0; an empty test list = test on val."""
        spk = speaker_splits([it.speaker for it in items], train_speakers, val_speakers, test_speakers,
                             fold=fold, n_folds=n_folds)
        out = {k: [it for it in items if it.speaker in set(v)] for k, v in spk.items()}
        if not out["test"]:
            log.warning("no test speakers: test metrics are computed on the validation split")
            out["test"] = out["val"]
        log.info("speaker-independent splits: %s", {k: sorted(v) for k, v in spk.items()})
        return out

    def stratified_split(self, items: list[MediaItem], val_fraction: float,
                         test_fraction: float) -> dict[str, list[MediaItem]]:
        """Seeded stratified split (for data without speaker ids); fractions of the whole."""
        idx = stratified_three_way([it.label for it in items], val_fraction, test_fraction, self.seed)
        out = {split: [items[i] for i in ix] for split, ix in zip(("train", "val", "test"), idx)}
        if not out["test"]:
            log.warning("data.test_fraction=0: test metrics are computed on the validation split")
            out["test"] = out["val"]
        return out

    def _limit(self, items: list[MediaItem]) -> list[MediaItem]:
        """Apply ``limit_per_split`` before cropping, so quick runs crop only what they use
        (same rule as the base class, which then finds nothing left to cut)."""
        n = self.limit_per_split
        if not n or len(items) <= n:
            return items
        keep, _ = stratified_split([it.label for it in items], 1.0 - n / len(items), self.seed)
        return [items[i] for i in keep]

    def _planned_splits(self) -> dict[str, list[MediaItem]]:
        self._check_root()
        items = self.list_items()
        if not items:
            raise FileNotFoundError(f"{self.root}: no media files found for {type(self).__name__}")
        return {k: self._limit(v) for k, v in self.split_items(items).items()}

    def prepare_data(self) -> None:
        """Lightning calls this once per node (local rank 0) before ``setup`` on every rank:
        the missing crops are built here, so DDP ranks do not all build them."""
        if self.needs_crops and self.store.prepare_on_setup:
            splits = self._planned_splits()
            self.store.prepare(sorted({it.path for v in splits.values() for it in v}))

    def build_splits(self) -> dict[str, Dataset]:
        self.require_modalities(self.modalities)
        splits = self._planned_splits()
        used = sorted({it.path for v in splits.values() for it in v})
        store = self.store
        bad: set[str] = set()
        if self.needs_crops and store.prepare_on_setup:
            # Builds what is missing (everything is there after prepare_data) and reports.
            self.prepare_report = report = store.prepare(used)
            if report["built"] or report["failed"]:
                log.info("%s", format_report(report))
            failed, no_face = sorted(report["failed_files"]), sorted(report["no_face_files"])
            bad = set(failed) | set(no_face)
            if bad:
                self._record(UNREADABLE, {f: f"{f}: {report['failed_files'][f]}; re-encode or delete it"
                                          for f in failed}, splits)
                self._record(NO_FACE, {f: f"{f}: no face found (faces.detector={store.detector_name}); "
                                       "check the file or try another detector" for f in no_face}, splits)
                log.warning("left out %d unreadable files and %d files without a face (of %d): %s",
                            len(failed), len(no_face), len(used), ", ".join((failed + no_face)[:5]))
                splits = {k: [it for it in v if str(it.path) not in bad] for k, v in splits.items()}
        waves = self._decode_audio(splits) if self.serves_voice else None
        if waves is not None and self.missing_audio == "skip":
            splits = {k: [it for it in v if waves.get(it.audio_source) is not None] for k, v in splits.items()}
        for k, v in splits.items():
            if not v:
                raise ValueError(f"the {k} split of {self.root} is empty after leaving out files without "
                                 f"a usable face (faces.detector={store.detector_name}) or without readable "
                                 "audio; check the data (and data.missing_audio=omit to keep silent files)")
        meshes = self._meshes(splits) if self.serves_landmarks else None
        alone = self.modalities == ["landmarks"]
        if meshes is not None and alone:   # landmarks alone: train on samples with a mesh
            splits["train"] = [it for it in splits["train"] if meshes[it.path][1].any()]
        out = {}
        for k, v in splits.items():
            train = k == "train"
            # frames served with their landmarks flip with them (one draw per clip)
            augment, pair_flip = paired_flip(self.augment, train and self.serves_visual and meshes is not None)
            tf = FrameTransform(train=train, augment=augment if train else None, **self.tf_args)
            out[k] = FaceClipDataset(
                v, store, tf, self.modality, self.num_frames, train, visual=self.serves_visual,
                waves=[waves.get(it.audio_source) for it in v] if waves is not None else None,
                clip=self.clip, augment=self.voice_augment if train else None,
                meshes=[meshes[it.path] for it in v] if meshes is not None else None,
                landmark_tf=LandmarkTransform(self.landmarks.get("points", 468), train=train,
                                              augment=self.landmarks.get("augment") if train else None),
                landmarks_alone=alone, pair_flip=pair_flip)
        return out

    def _meshes(self, splits: dict[str, list[MediaItem]]) -> dict[Path, tuple[np.ndarray, np.ndarray]]:
        used = sorted({it.path for v in splits.values() for it in v})
        return clip_meshes(used, self.store, self.mesh_store, alone=self.modalities == ["landmarks"])

    def _decode_audio(self, splits: dict[str, list[MediaItem]]) -> dict[Path, np.ndarray | None]:
        """Decode each used item's audio once (threads); unreadable ones map to None, counted."""
        sources = sorted({it.audio_source for v in splits.values() for it in v})
        waves, errors = read_many(sources, self.clip, self.load_workers)
        report_unreadable(errors, len(sources), "audio tracks" + (" (those samples are left out)"
                          if self.missing_audio == "skip" else " (those samples have no voice)"))
        if errors and self.missing_audio == "skip":
            failed = [str(p) for p, w in zip(sources, waves) if w is None]
            self._record(NO_AUDIO, dict(zip(failed, errors)), splits, source=lambda it: it.audio_source)
        return dict(zip(sources, waves))

    @property
    def preprocessing(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.serves_visual:
            prep = {**FrameTransform(**self.tf_args).describe(), "faces": self.store.settings}
            if self.modality == "video":
                prep.update(num_frames=self.num_frames, sampling=dict(self.sampling))
            out[self.modality] = prep
        if self.serves_voice:
            out["voice"] = self.clip.describe()
        if self.serves_landmarks:
            out["landmarks"] = {**LandmarkTransform(self.landmarks.get("points", 468)).describe(),
                                "mesh": self.mesh_store.describe(), "faces": self.store.settings}
            if self.modality == "video":
                out["landmarks"]["num_frames"] = self.num_frames
        return out
