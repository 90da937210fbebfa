"""CREMA-D video (``data=cremad_video``): face-crop sequences of the FLV clips.

Layout: ``ACTOR_SENTENCE_EMOTION_LEVEL.flv`` (e.g. ``1001_DFA_ANG_XX.flv``) anywhere under
``data.root`` (the release keeps them in ``VideoFlash/``); the FLVs hold VP6 video and MP3
audio, decoded with PyAV. Labels: the 6 CREMA-D emotions. Splits are speaker-independent
(by actor, 1001-1091), with the rules of the voice datasets: ``fold`` of ``n_folds``, or
explicit ``train_speakers`` / ``val_speakers`` / ``test_speakers``; neither = fold 0 of 5.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from emomm.data.pipelines.face_clips import FaceCropDataModule, MediaItem
from emomm.data.core.speakers import parse_cremad_name
from emomm.labels import CREMAD

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".flv", ".mp4", ".avi", ".mkv", ".webm", ".mov")


class CremadVideoDataModule(FaceCropDataModule):
    def __init__(self, root: str, suffixes: Sequence[str] = (".flv",), levels: Sequence[str] | None = None,
                 train_speakers: Sequence[int] | None = None, val_speakers: Sequence[int] | None = None,
                 test_speakers: Sequence[int] | None = None, fold: int | None = None, n_folds: int = 5,
                 **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.suffixes = tuple(s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes)
        self.levels = set(levels) if levels else None
        self.split_args = dict(train_speakers=train_speakers, val_speakers=val_speakers,
                               test_speakers=test_speakers, fold=fold, n_folds=n_folds)

    @property
    def label_names(self) -> list[str]:
        return list(CREMAD)

    def list_items(self) -> list[MediaItem]:
        self._check_root()
        index = {n: i for i, n in enumerate(self.label_names)}
        items, skipped = [], []
        for path in self.list_files(self.root):
            if path.suffix.lower() not in self.suffixes or not path.is_file():
                continue
            try:
                name = parse_cremad_name(path)
            except ValueError:
                skipped.append(str(path))
                continue
            if self.levels and name.level not in self.levels:
                continue
            items.append(MediaItem(path, index[name.emotion], name.actor))
        if skipped:
            log.warning("%d files are not CREMA-D names and were skipped: %s", len(skipped), ", ".join(skipped[:3]))
        if not items:
            raise FileNotFoundError(f"{self.root}: no CREMA-D video files (ACTOR_SENTENCE_EMOTION_LEVEL"
                                    f"{'/'.join(self.suffixes)}, e.g. 1001_DFA_ANG_XX.flv)")
        return items

    def split_items(self, items):
        return self.speaker_split(items, **self.split_args)
