"""MELD text (``data=meld data.root=PATH``): the official ``*_sent_emo.csv`` files.

``root`` holds ``train_sent_emo.csv``, ``dev_sent_emo.csv`` and ``test_sent_emo.csv``
(columns ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID,
Season, Episode, StartTime, EndTime``). Validation is dev; without a test file, test = dev
(with a warning); without a dev file, whole dialogues of train are held out.

* ``target``: ``emotion`` (7 classes, MELD's order ``neutral, surprise, fear, sadness, joy,
  disgust, anger`` spelled canonically: sad, happy, angry) or ``sentiment`` (3). Every
  sample also carries the other column as an auxiliary label (``aux_label_names``; -1 where
  it is outside its set), which ``model.aux_tasks={sentiment: 0.5}`` learns beside the
  target (multi-task training).
* ``context_turns`` = K > 0 gives every utterance the previous K utterances of its dialogue
  (ordered by ``Utterance_ID``) as context, each ``"Speaker: text"`` and joined with
  ``" | "``, oldest first. Turns whose label is outside the label set still serve as
  context; empty ones do not. ``speakers`` also prefixes the target utterance with its
  speaker's name.
* ``future_turns`` = F > 0 appends the next F utterances of the dialogue (the reactions to
  the target, often the clearest cue to its emotion) after :data:`FUTURE_SEP`, in dialogue
  order: ``"past1 | past2 || next1 | next2"`` (``"|| next1"`` without past turns). The text
  encoder keeps the whole target utterance and cuts the context from its start when the
  sample is too long, so the oldest past turns go first (see
  :func:`emomm.models.encoders.text_transformer.encode_batch`).
* Clips (``modalities`` with ``voice`` and/or ``video``): when the official MELD.Raw clip
  folders are present next to the CSVs (``train_splits/``, ``dev_splits_complete/``,
  ``output_repeated_splits_test/``, directly under ``root`` or one level down, e.g.
  ``root/train/train_splits/``), each utterance's ``dia{D}_utt{U}.mp4`` gives its voice (the
  audio track, decoded once at setup and kept in memory) and its face frames (the face-crop
  cache of :mod:`emomm.faces`, as for the video datasets). ``available_modalities`` is then
  ``[text, video, voice]``, else ``[text]``. An utterance whose clip file is absent, unreadable,
  silent or shows no face keeps its text alone (the other modalities are absent from that
  sample; counted and logged per split). Without ``text`` in ``modalities``, utterances
  without any usable clip modality are left out (counted).
* Mis-encoded text is repaired and counted (see :func:`emomm.data.pipelines.text_data.repair_text`);
  empty utterances and labels outside the set are skipped with a warning naming the file
  and the ``Sr No.`` of each row.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from emomm.data.pipelines.waveforms import ClipOptions, WaveAugment, read_many
from emomm.data.core.collate import sample_aux
from emomm.data.pipelines.face_clips import FaceClipDataset, MediaItem, clip_meshes
from emomm.data.pipelines.landmark_points import LandmarkTransform, paired_flip
from emomm.data.pipelines.transforms import FrameTransform
from emomm.faces.crop_store import FaceCropStore
from emomm.faces.landmark_store import MeshStore
from emomm.data.pipelines.text_data import (TextDataModule, TextDataset, clean_text, find_column, read_table,
                                            record_skipped, report_repairs, report_skipped)
from emomm.labels import MELD_EMOTIONS, MELD_SENTIMENTS, canonical

log = logging.getLogger(__name__)

SPLIT_FILES = {"train": "train_sent_emo.csv", "val": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
TARGETS = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}
CONTEXT_SEP = " | "
#: Between the past turns and the following ones (its own token for the tokenizers, unlike a word).
FUTURE_SEP = " || "
REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
#: The official MELD.Raw clip folders of each split (first found wins).
CLIP_DIRS = {"train": ("train_splits",), "val": ("dev_splits_complete", "dev_splits"),
             "test": ("output_repeated_splits_test", "test_splits")}
CLIP_MODALITIES = ("video", "voice", "landmarks")


#: A clip the crop cache could not use: no frames, so no mesh.
_NO_MESH = (np.zeros((0, 468, 3), np.float32), np.zeros(0, bool))
_CLIP_RE = re.compile(r"^dia(\d+)_utt(\d+)$")


def clip_name(dialogue: int, utterance: int) -> str:
    """MELD.Raw's clip file name of an utterance: ``dia{D}_utt{U}.mp4``."""
    return f"dia{int(dialogue)}_utt{int(utterance)}.mp4"


def parse_clip_name(path: str | Path) -> tuple[int, int]:
    """``(dialogue, utterance)`` of ``.../diaD_uttU.mp4``; ``ValueError`` naming the file."""
    p = Path(path)
    m = _CLIP_RE.match(p.stem)
    if not m or p.suffix.lower() != ".mp4":
        raise ValueError(f"{path}: not a MELD clip name (expected dia<Dialogue_ID>_utt<Utterance_ID>.mp4, "
                         "e.g. dia12_utt3.mp4)")
    return int(m.group(1)), int(m.group(2))


def find_clip_dirs(root: Path) -> dict[str, Path]:
    """The clip folders present for each split, under ``root`` or one level below it."""
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        return {}
    out = {}
    for split, names in CLIP_DIRS.items():
        for name in names:
            found = [root / name] + sorted(root.glob(f"*/{name}"))
            hit = next((d for d in found if d.is_dir()), None)
            if hit is not None:
                out[split] = hit
                break
    return out


def find_files(root: Path) -> dict[str, Path]:
    """The split files present under ``root`` (a clear error without a train file)."""
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        raise FileNotFoundError(f"data.root={root} does not exist. Point it at the folder holding "
                                "MELD's train_sent_emo.csv, dev_sent_emo.csv (and test_sent_emo.csv).")
    found = {s: root / f for s, f in SPLIT_FILES.items() if (root / f).is_file()}
    if "train" not in found:
        raise FileNotFoundError(f"{root}: no train_sent_emo.csv. Expected MELD's official CSVs "
                                f"{list(SPLIT_FILES.values())} (the MELD.Raw release's text files).")
    return found


def read_meld_csv(path: Path, target: str = "emotion", context_turns: int = 0,
                  speakers: bool = True, repair: bool = True, normalize: bool = True,
                  future_turns: int = 0) -> dict[str, Any]:
    """Parse one MELD CSV.

    Returns a dict with ``texts``, ``contexts`` (None when ``context_turns`` and
    ``future_turns`` are 0),
    ``labels``, ``other_labels`` (the other column of emotion / sentiment, -1 outside its
    set), ``ids`` (``Sr No.``), ``dialogues`` / ``utterances`` (Dialogue_ID /
    Utterance_ID per kept sample),
    ``repairs`` (Counter) and ``skipped`` (``{reason: ["Sr No. 12", ...]}``).
    """
    if target not in TARGETS:
        raise ValueError(f"data.target must be one of {sorted(TARGETS)}, got {target!r}")
    if context_turns < 0 or future_turns < 0:
        raise ValueError(f"data.context_turns and data.future_turns must be >= 0, got "
                         f"{context_turns} and {future_turns}")
    df, cp1252_bytes = read_table(path, sep=",")
    cols = {name: find_column(df, name, path, name) for name in REQUIRED}
    sr_col = next((c for c in df.columns if c.strip().lower().replace(" ", "") in ("srno.", "srno")), None)
    label_index = {canonical(n): i for i, n in enumerate(TARGETS[target])}
    label_col = cols["Emotion" if target == "emotion" else "Sentiment"]
    other = other_target(target)
    other_index = {canonical(n): i for i, n in enumerate(TARGETS[other])}
    other_col = cols["Emotion" if other == "emotion" else "Sentiment"]

    repairs: Counter = Counter()
    if cp1252_bytes:
        repairs["cp1252_byte"] += cp1252_bytes
    rows = []  # (dialogue, utterance_id, file order, speaker, text, label or None, row name, other label)
    skipped: dict[str, list[str]] = {"empty utterance": [], "label outside the set": [],
                                     "bad Dialogue_ID/Utterance_ID": []}
    for pos, rec in enumerate(df.to_dict("records")):
        name = f"Sr No. {rec[sr_col]}" if sr_col is not None else f"row {pos + 2}"
        text = clean_text(rec[cols["Utterance"]], repairs, repair, normalize)
        speaker = clean_text(rec[cols["Speaker"]], repairs, repair, normalize)
        try:
            dlg, utt = int(rec[cols["Dialogue_ID"]]), int(rec[cols["Utterance_ID"]])
        except ValueError:
            skipped["bad Dialogue_ID/Utterance_ID"].append(name)
            continue
        raw_label = str(rec[label_col]).strip()
        label = _label_or(label_index, raw_label, None)
        if not text:
            skipped["empty utterance"].append(name)
        elif label is None:
            skipped["label outside the set"].append(f"{name} ({raw_label!r})")
        rows.append((dlg, utt, pos, speaker, text, label if text else None, name,
                     _label_or(other_index, rec[other_col], -1)))

    # Context: previous (and following) non-empty turns of the same dialogue, in
    # Utterance_ID order.
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    texts, contexts, labels, ids, dialogues, utterances, others = [], [], [], [], [], [], []
    said_of = [f"{r[3]}: {r[4]}" if speakers and r[3] else r[4] for r in rows]
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end][0] == rows[start][0]:
            end += 1
        spoken = [i for i in range(start, end) if rows[i][4]]   # rows with a non-empty turn
        for i in range(start, end):
            dlg, utt, _, _, _, label, name, other_label = rows[i]
            if label is None:
                continue
            past = [said_of[j] for j in spoken if j < i][-context_turns:] if context_turns else []
            future = [said_of[j] for j in spoken if j > i][:future_turns] if future_turns else []
            texts.append(said_of[i])
            contexts.append(join_context(past, future))
            labels.append(label)
            others.append(other_label)
            ids.append(name)
            dialogues.append(dlg)
            utterances.append(utt)
        start = end
    report_repairs(repairs, str(path))
    report_skipped(skipped, str(path), len(df))
    return {"texts": texts, "contexts": contexts if context_turns or future_turns else None, "labels": labels,
            "other_labels": others, "ids": ids, "dialogues": dialogues, "utterances": utterances, "repairs": repairs,
            "skipped": {k: v for k, v in skipped.items() if v}}


def other_target(target: str) -> str:
    """The column that serves as ``target``'s auxiliary label: sentiment for emotion and back."""
    return "sentiment" if target == "emotion" else "emotion"


def _label_or(index: dict[str, int], raw: Any, default: int | None) -> int | None:
    """The index of label ``raw`` (any known spelling), or ``default`` outside ``index``."""
    try:
        return index.get(canonical(str(raw).strip()), default)
    except KeyError:
        return default


def join_context(past: list[str], future: list[str]) -> str:
    """``"p1 | p2 || f1 | f2"``: past turns oldest first, then the following turns."""
    ctx = CONTEXT_SEP.join(past)
    if future:
        ctx = (ctx + FUTURE_SEP if ctx else FUTURE_SEP.lstrip()) + CONTEXT_SEP.join(future)
    return ctx


def dialogue_split(dialogues: list[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) sample indices holding out ``fraction`` of the dialogues (whole ones, so
    no dialogue's context leaks across the split)."""
    uniq = np.unique(dialogues)
    rng = np.random.default_rng(seed)
    held_d = set(rng.choice(uniq, size=max(1, int(round(len(uniq) * fraction))), replace=False).tolist())
    held = np.array([i for i, d in enumerate(dialogues) if d in held_d], dtype=int)
    keep = np.array([i for i, d in enumerate(dialogues) if d not in held_d], dtype=int)
    return keep, held


class MeldClipDataset(TextDataset):
    """MELD utterances with, where their clip gave them, ``video`` and ``voice``.

    ``clip_index[i]`` is the row of sample ``i`` in ``clips`` (a :class:`FaceClipDataset` over
    the utterances that have a clip file) or -1; ``has[m][i]`` says whether sample ``i``
    serves clip modality ``m``.
    """

    def __init__(self, texts, labels, contexts, ids, clips: FaceClipDataset | None,
                 clip_index: list[int], has: dict[str, list[bool]], serve_text: bool = True,
                 aux: dict[str, list[int]] | None = None) -> None:
        super().__init__(texts, labels, contexts, ids=ids, aux=aux)
        self.clips, self.clip_index, self.has, self.serve_text = clips, clip_index, has, serve_text

    def __getitem__(self, i: int) -> dict[str, Any]:
        inputs = {self.modality: self.item_text(i)} if self.serve_text else {}
        j = self.clip_index[i]
        if j >= 0 and self.clips is not None:
            lm = "landmarks" in self.has and self.has["landmarks"][i]
            idx = self.clips.frame_indices(j) if lm else None
            if "video" in self.has and self.has["video"][i]:
                inputs["video"] = self.clips.visual_input(j, idx)
            if lm:
                inputs.update(self.clips.landmark_input(j, idx))
            if "voice" in self.has and self.has["voice"][i]:
                rng = np.random.default_rng(int(torch.randint(0, 2**62, ()))) if self.clips.train else None
                inputs["voice"] = self.clips.clip.to_model_input(self.clips.waves[j], self.clips.train,
                                                                 self.clips.augment, rng)
        return {"inputs": inputs, "label": self.labels[i], "index": i, **sample_aux(self.aux, i)}


class MeldDataModule(TextDataModule):
    """Args:
        root: folder of the MELD CSVs.
        target: ``emotion`` | ``sentiment``.
        context_turns: previous utterances of the dialogue given as context (0 = none).
        future_turns: following utterances of the dialogue added to the context (0 = none).
        speakers: prefix utterances (context and target) with the speaker's name.
        val_fraction: dialogues of train held out when there is no dev file.
        modalities: what to serve among text / video / voice (null = text).
        faces: the ``faces`` node (detector, crop cache) for the clips' face frames.
        video: the ``video`` node (image_size, in_chans, mean, std, num_frames, sampling, augment).
        voice: the ``voice`` node (sample_rate, duration, pad, trim_db, augment).
        load_workers: threads decoding the clips' audio.
        landmarks / mesh_cache_dir: the ``landmarks`` node and where the clips' face meshes are
            cached (``landmarks`` in modalities: per frame of each clip's cached crops, the frames
            the video input uses; a clip without any mesh gives no landmarks).
        **kwargs: :class:`~emomm.data.pipelines.text_data.TextDataModule` / ``EmotionDataModule`` options.
    """

    def __init__(self, root: str, target: str = "emotion", context_turns: int = 0,
                 speakers: bool = True, val_fraction: float = 0.1, modalities: Any = None,
                 faces: dict[str, Any] | None = None, video: dict[str, Any] | None = None,
                 voice: dict[str, Any] | None = None, load_workers: int = 4, future_turns: int = 0,
                 landmarks: dict[str, Any] | None = None, mesh_cache_dir: str = ".cache/landmarks",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.landmarks = dict(landmarks or {})
        self.mesh_store = MeshStore(mesh_cache_dir, self.landmarks.get("mesh"))
        self.modalities = list(modalities) if modalities else ["text"]
        self.faces = dict(faces or {})
        vid = dict(video or {})
        self.tf_args = dict(image_size=int(vid.get("image_size", 64)), in_chans=int(vid.get("in_chans", 3)),
                            mean=vid.get("mean", 0.5), std=vid.get("std", 0.5))
        self.video_augment = vid.get("augment")
        self.num_frames = vid.get("num_frames", 8)
        self.sampling = dict(vid.get("sampling") or {"num_frames": 16})
        v = dict(voice or {})
        self.clip = ClipOptions(sample_rate=int(v.get("sample_rate", 16000)), duration=v.get("duration", 3.0),
                                pad=bool(v.get("pad", True)), trim_db=v.get("trim_db"))
        self.voice_augment = WaveAugment.from_config(v.get("augment"))
        self.load_workers = int(load_workers)
        self.clip_counts: dict[str, dict[str, int]] = {}
        self._store = None
        if target not in TARGETS:
            raise ValueError(f"data.target must be one of {sorted(TARGETS)}, got {target!r}")
        self.root = Path(root).expanduser()
        self.target = target
        self.context_turns = int(context_turns)
        self.future_turns = int(future_turns)
        self.speakers = bool(speakers)
        self.val_fraction = val_fraction

    @property
    def label_names(self) -> list[str]:
        return [canonical(n) for n in TARGETS[self.target]]

    @property
    def aux_label_names(self) -> dict[str, list[str]]:
        other = other_target(self.target)
        return {other: [canonical(n) for n in TARGETS[other]]}

    @property
    def available_modalities(self) -> list[str]:
        return ["text", *CLIP_MODALITIES] if find_clip_dirs(self.root) else ["text"]

    @property
    def clip_modalities(self) -> list[str]:
        return [m for m in CLIP_MODALITIES if m in self.modalities]

    @property
    def store(self):
        if self._store is None:
            self._store = FaceCropStore(self.faces, self.sampling)
        return self._store

    @property
    def preprocessing(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "text" in self.modalities:
            out["text"] = {**super().preprocessing["text"], "context_turns": self.context_turns,
                           "future_turns": self.future_turns, "speakers": self.speakers}
        if "video" in self.modalities:
            out["video"] = {**FrameTransform(**self.tf_args).describe(), "faces": self.store.settings,
                            "num_frames": self.num_frames, "sampling": dict(self.sampling)}
        if "voice" in self.modalities:
            out["voice"] = self.clip.describe()
        if "landmarks" in self.modalities:
            out["landmarks"] = {**LandmarkTransform(self.landmarks.get("points", 468)).describe(),
                                "mesh": self.mesh_store.describe(), "faces": self.store.settings,
                                "num_frames": self.num_frames}
        return out

    def crop_sources(self) -> list[Path]:
        """Every clip file of the clip folders (``python -m emomm.prepare data=meld`` crops them)."""
        return sorted(p for d in find_clip_dirs(self.root).values() for p in d.glob("dia*_utt*.mp4"))

    def _clip_paths(self, part: dict[str, Any], split: str, dirs: dict[str, Path]) -> list[Path | None]:
        d = dirs.get(split)
        if d is None or not self.clip_modalities:
            return [None] * len(part["texts"])
        paths = [d / clip_name(dlg, utt) for dlg, utt in zip(part["dialogues"], part["utterances"])]
        return [p if p.is_file() else None for p in paths]

    def build_splits(self) -> dict[str, Dataset]:
        self.require_modalities(self.modalities)
        files = find_files(self.root)
        parts = {s: read_meld_csv(p, self.target, self.context_turns, self.speakers,
                                  self.repair, self.normalize, self.future_turns)
                 for s, p in files.items()}
        dirs = find_clip_dirs(self.root)
        for s, part in parts.items():   # before any dialogue split: held-out dev keeps train's clips
            part["clips"] = self._clip_paths(part, s, dirs)
        for s, part in parts.items():
            self.repairs[s] = dict(part["repairs"])
            record_skipped(self.skips, part["skipped"], files[s], s)
        if "val" not in parts:
            tr = parts["train"]
            keep, held = dialogue_split(tr["dialogues"], self.val_fraction, self.seed)
            pick = lambda idx: {k: (None if v is None else [v[i] for i in idx])  # noqa: E731
                                for k, v in tr.items() if k not in ("repairs", "skipped")}
            parts["train"], parts["val"] = pick(keep), pick(held)
            log.warning("%s: no dev_sent_emo.csv: held out %.0f%% of the training dialogues "
                        "(seed %d) for validation", self.root, 100 * self.val_fraction, self.seed)
        if "test" not in parts:
            log.warning("%s: no test_sent_emo.csv: test metrics are computed on the dev split "
                        "(the one used for model selection, so they are optimistic)", self.root)
            parts["test"] = parts["val"]
        out = {}
        for s in ("train", "val", "test"):
            p = parts[s]
            if not p["texts"]:
                raise ValueError(f"{files.get(s, self.root)}: no usable utterances for split {s!r}")
            if not self.clip_modalities:
                out[s] = TextDataset(p["texts"], p["labels"], p["contexts"], ids=p["ids"], aux=self._aux(p))
                continue
            if s == "test" and parts["test"] is parts["val"]:
                out[s] = out["val"]
                continue
            out[s] = self._with_clips(p, s, train=s == "train")
        return out

    def _with_clips(self, p: dict[str, Any], split: str, train: bool) -> Dataset:
        """The split's utterances with the video / voice of their clips (module docstring)."""
        n = len(p["texts"])
        clip_paths = p["clips"]
        present = sorted({c for c in clip_paths if c is not None})
        has = {m: [c is not None for c in clip_paths] for m in self.clip_modalities}
        waves: dict[Path, Any] = {}
        if "voice" in has and present:
            decoded, _ = read_many(present, self.clip, self.load_workers)
            waves = dict(zip(present, decoded))
            has["voice"] = [c is not None and waves.get(c) is not None for c in clip_paths]
        meshes = None
        if ("video" in has or "landmarks" in has) and present and self.store.prepare_on_setup:
            report = self.store.prepare(present)
            bad = set(report["failed_files"]) | set(report["no_face_files"])
            for m in ("video", "landmarks"):
                if m in has:
                    has[m] = [c is not None and str(c) not in bad for c in clip_paths]
            if "landmarks" in has:
                meshes = clip_meshes([c for c in present if str(c) not in bad], self.store, self.mesh_store)
                has["landmarks"] = [ok and meshes[c][1].any() for ok, c in zip(has["landmarks"], clip_paths)]
        elif "landmarks" in has and present:   # crops built on first use
            meshes = clip_meshes(present, self.store, self.mesh_store)
            has["landmarks"] = [c is not None and meshes[c][1].any() for c in clip_paths]
        counts = {"utterances": n, "with_clip": sum(c is not None for c in clip_paths),
                  **{f"with_{m}": sum(v) for m, v in has.items()}}
        self.clip_counts[split] = counts
        level = logging.WARNING if counts["with_clip"] < n else logging.INFO
        log.log(level, "MELD %s: %d of %d utterances have a clip file; %s; the others keep their text "
                "alone", split, counts["with_clip"], n,
                ", ".join(f"{counts[f'with_{m}']} give {m}" for m in has))
        keep = list(range(n))
        if "text" not in self.modalities:   # a sample needs at least one modality
            keep = [i for i in range(n) if any(v[i] for v in has.values())]
            if len(keep) < n:
                log.warning("MELD %s: left out %d utterances without a usable clip (text is not served)",
                            split, n - len(keep))
            if not keep:
                raise ValueError(f"MELD {split}: no utterance has a usable clip for {self.clip_modalities}; "
                                 "check the clip folders (dia{D}_utt{U}.mp4) or add text to modalities")
        sel = lambda v: None if v is None else [v[i] for i in keep]  # noqa: E731
        clip_rows = sorted({clip_paths[i] for i in keep if clip_paths[i] is not None})
        row = {c: j for j, c in enumerate(clip_rows)}
        # frames served with their landmarks flip with them (one draw per clip)
        augment, pair_flip = paired_flip(self.video_augment, train and {"video", "landmarks"} <= set(self.modalities))
        tf = FrameTransform(train=train, augment=augment if train else None, **self.tf_args)
        clips = FaceClipDataset([MediaItem(c, 0) for c in clip_rows], self.store, tf, "video",
                                self.num_frames, train, waves=[waves.get(c) for c in clip_rows],
                                clip=self.clip, augment=self.voice_augment if train else None,
                                meshes=[meshes.get(c, _NO_MESH) for c in clip_rows] if meshes is not None else None,
                                landmark_tf=LandmarkTransform(self.landmarks.get("points", 468), train=train,
                                                              augment=self.landmarks.get("augment") if train else None),
                                pair_flip=pair_flip)
        return MeldClipDataset(sel(p["texts"]), sel(p["labels"]), sel(p["contexts"]), sel(p["ids"]), clips,
                               [row.get(clip_paths[i], -1) for i in keep],
                               {m: sel(v) for m, v in has.items()}, serve_text="text" in self.modalities,
                               aux={k: sel(v) for k, v in self._aux(p).items()})

    def _aux(self, part: dict[str, Any]) -> dict[str, list[int]]:
        """The auxiliary labels of a parsed split (``{other target: [int]}``)."""
        return {other_target(self.target): part["other_labels"]}
