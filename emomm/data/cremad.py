"""CREMA-D (``data=cremad data.root=PATH``): 7,442 clips of 91 actors (1001-1091), 6 emotions.

File names are ``ACTOR_SENTENCE_EMOTION_LEVEL.ext`` (e.g. ``1001_DFA_ANG_XX.wav``; emotions
ANG DIS FEA HAP NEU SAD; level LO/MD/HI/XX). Files are searched recursively: the release's
``AudioWAV/`` (16 kHz WAV), ``AudioMP3/`` and ``VideoFlash/`` (FLV, audio track read with
PyAV) all work, as does any folder of such files; when one clip exists in several formats,
one copy is used (WAV, then FLAC, then MP3/OGG, then video). Splits are by actor
(see :class:`emomm.data.speech.SpeakerAudioDataModule`); the default is fold 0 of the
5-fold cross-validation by actor.
"""
from __future__ import annotations

import logging

from emomm.data.ravdess import media_files
from emomm.data.speakers import parse_cremad_name
from emomm.data.speech import Clip, SpeakerAudioDataModule
from emomm.labels import CREMAD

log = logging.getLogger(__name__)

_FORMAT_RANK = {".wav": 0, ".flac": 1, ".mp3": 2, ".ogg": 2}


class CremadDataModule(SpeakerAudioDataModule):
    @property
    def label_names(self) -> list[str]:
        return list(CREMAD)

    def scan(self) -> tuple[list[Clip], list[str], int]:
        files = media_files(self.root)
        problems: list[str] = []
        chosen: dict[str, tuple[int, Clip]] = {}
        duplicates = 0
        for path in files:
            try:
                name = parse_cremad_name(path)
            except ValueError as err:
                problems.append(str(err))
                continue
            clip = Clip(str(path), CREMAD.index(name.emotion), name.actor)
            rank = _FORMAT_RANK.get(path.suffix.lower(), 3)
            if path.stem in chosen:
                duplicates += 1
            if path.stem not in chosen or rank < chosen[path.stem][0]:
                chosen[path.stem] = (rank, clip)
        if duplicates:
            log.info("%s: %d clips exist in several formats; one copy of each is used", self.root,
                     duplicates)
        return [c for _, c in sorted(chosen.values(), key=lambda rc: rc[1].path)], problems, len(files)
