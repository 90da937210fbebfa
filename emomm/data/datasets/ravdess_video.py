"""RAVDESS video (``data=ravdess_video``): face-crop sequences of the audio-visual recordings.

Layout: ``MM-VC-EE-II-SS-RR-AA.mp4`` files in ``Actor_NN/`` folders at any depth under
``data.root`` (the ``Video_Speech_Actor_NN.zip`` / ``Video_Song_Actor_NN.zip`` releases
unpack that way). Modality 01 (audio-video) and 02 (video-only) files show the same
performance, so by default each recording is used once (``dedupe``: the 01 file when both
exist). With ``voice`` in ``modalities`` the voice of an 01 file is its own audio track, and
that of an 02 file is the 03 (audio-only) file of the same recording (the other six name
fields equal), found anywhere under ``data.root`` (e.g. ``Audio_Speech_Actors_01-24/``
beside the video folders); an 02 file without its 03 file has no voice (``missing_audio``).
Labels: the 8 RAVDESS emotions, or 7 with calm
merged into neutral (``merge_calm``). Splits are speaker-independent (by actor), with the
same options and rules as the RAVDESS voice data: ``fold`` of ``n_folds`` or explicit
``train_speakers`` / ``val_speakers`` / ``test_speakers`` lists; neither = fold 0 of 5.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

from emomm.data.pipelines.face_clips import FaceCropDataModule, MediaItem
from emomm.data.datasets.ravdess import media_files
from emomm.data.core.speakers import parse_ravdess_name
from emomm.labels import RAVDESS, RAVDESS_7

log = logging.getLogger(__name__)

_ACTOR_DIR = re.compile(r"^Actor_(\d+)$", re.IGNORECASE)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mkv", ".mov", ".webm")


class RavdessVideoDataModule(FaceCropDataModule):
    """Args (besides :class:`FaceCropDataModule`'s):
        channels: ``speech`` and/or ``song``.
        merge_calm: 7 classes (calm -> neutral) instead of 8.
        dedupe: one file per recording (prefer 01 audio-video over 02 video-only).
        train_speakers / val_speakers / test_speakers / fold / n_folds: speaker split.
    """

    def __init__(self, root: str, channels: Sequence[str] = ("speech",), merge_calm: bool = False,
                 dedupe: bool = True, train_speakers: Sequence[int] | None = None,
                 val_speakers: Sequence[int] | None = None, test_speakers: Sequence[int] | None = None,
                 fold: int | None = None, n_folds: int = 5, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        bad = set(channels) - {"speech", "song"}
        if bad:
            raise ValueError(f"data.channels has {sorted(bad)}; use speech and/or song")
        self.channels, self.merge_calm, self.dedupe = list(channels), merge_calm, dedupe
        self.split_args = dict(train_speakers=train_speakers, val_speakers=val_speakers,
                               test_speakers=test_speakers, fold=fold, n_folds=n_folds)

    @property
    def label_names(self) -> list[str]:
        return list(RAVDESS_7 if self.merge_calm else RAVDESS)

    def list_items(self) -> list[MediaItem]:
        self._check_root()
        index = {n: i for i, n in enumerate(self.label_names)}
        chosen: dict[tuple, tuple[Path, Any]] = {}
        skipped = []
        for path in self.list_files(self.root, VIDEO_SUFFIXES):
            if path.suffix.lower() not in VIDEO_SUFFIXES or not _ACTOR_DIR.match(path.parent.name):
                continue
            try:
                name = parse_ravdess_name(path)
            except ValueError:
                skipped.append(str(path))
                continue
            if name.modality == "audio-only" or name.channel not in self.channels:
                continue
            if int(_ACTOR_DIR.match(path.parent.name).group(1)) != name.actor:
                log.warning("%s: actor %d in the name but folder %s", path, name.actor, path.parent.name)
            rec = (name.channel, name.emotion, name.intensity, name.statement, name.repetition, name.actor)
            key = rec if self.dedupe else (*rec, name.modality)
            prev = chosen.get(key)
            if prev is None or (prev[1].modality != "audio-video" and name.modality == "audio-video"):
                chosen[key] = (path, name)
        if skipped:
            log.warning("%d files in Actor_NN folders are not RAVDESS names and were skipped: %s",
                        len(skipped), ", ".join(skipped[:3]))
        if not chosen:
            raise FileNotFoundError(
                f"{self.root}: no RAVDESS video files (01-/02-…-AA.mp4 in Actor_NN/ folders, channels "
                f"{self.channels}). Unpack Video_Speech_Actor_NN.zip there.")
        audio_only = self._audio_only_files()
        items = []
        for path, name in sorted(chosen.values(), key=lambda x: str(x[0])):
            emotion = "neutral" if self.merge_calm and name.emotion == "calm" else name.emotion
            audio = audio_only.get(_recording(name)) if name.modality == "video-only" else None
            items.append(MediaItem(path, index[emotion], name.actor, audio=audio))
        return items

    def _audio_only_files(self) -> dict[tuple, Path]:
        """The 03 (audio-only) file of each recording under the root, first by path order."""
        if not self.serves_voice:
            return {}
        out: dict[tuple, Path] = {}
        for path in media_files(self.root):
            try:
                name = parse_ravdess_name(path)
            except ValueError:
                continue
            if name.modality == "audio-only":
                out.setdefault(_recording(name), path)
        return out

    def split_items(self, items):
        return self.speaker_split(items, **self.split_args)


def _recording(name) -> tuple:
    """The six fields that identify one performance (all but the file's modality)."""
    return (name.channel, name.emotion, name.intensity, name.statement, name.repetition, name.actor)
