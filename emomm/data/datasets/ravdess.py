"""RAVDESS (``data=ravdess data.root=PATH``): acted emotional speech and song, 24 actors.

File names carry everything: ``MM-VC-EE-II-SS-RR-AA.ext`` (modality 01 audio-video, 02
video-only, 03 audio-only; vocal channel 01 speech, 02 song; emotion 01..08; intensity;
statement; repetition; actor, odd = male). Files are searched recursively, so any layout
works: the official ``Audio_Speech_Actors_01-24/Actor_01/...``, a flat folder, or
``Actor_NN/`` folders at any depth. Audio-only files may be ``.wav`` (the 48 kHz release),
``.flac`` (or ogg/mp3) at any sample rate; for audio-video files (``01-...mp4``) the audio
track is read. Video-only files (``02-``) are skipped. When the audio-only file and the
audio-video file of the same recording are both present, only the audio-only one is used.

Options: ``merge_calm`` (7 classes, calm -> neutral, :data:`emomm.labels.RAVDESS_7`; else
the 8 classes of :data:`emomm.labels.RAVDESS`), ``include_song``, ``song_train_only``,
``include_audio_video``. Song (vocal channel 02) has six of the eight emotions (no disgust,
no surprise); with ``include_song`` and ``song_train_only`` (the default) the song clips of
the training actors join the training split as extra data and validation/test stay speech
only, so figures remain comparable with speech-only runs.
Every sample also carries two auxiliary labels from its name (``aux_label_names``):
``intensity`` (normal, strong) and the actor's ``sex`` (female, male), which
``model.aux_tasks={sex: 0.3}`` learns beside the emotion (multi-task training).
Splits are by actor (see :class:`emomm.data.pipelines.speech.SpeakerAudioDataModule`).
Group source (``groups=ravdess_sex``): :class:`RavdessSex`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from emomm.media.audio import MEDIA_EXTENSIONS
from emomm.media.files import walk_files
from emomm.data.core.group_sources import GroupSource, actors
from emomm.data.core.speakers import parse_ravdess_name
from emomm.data.pipelines.speech import Clip, SpeakerAudioDataModule
from emomm.labels import RAVDESS, RAVDESS_7

log = logging.getLogger(__name__)

INTENSITIES = ("normal", "strong")   # RAVDESS intensity 01, 02
SEXES = ("female", "male")           # even, odd actor
_ACTOR_DIR = re.compile(r"^actor[_\- ]?(\d+)$", re.IGNORECASE)


def media_files(root: Path) -> list[Path]:
    """Media files under ``root`` (recursively, through symlinked folders), hidden files
    (``._x.wav``) excluded."""
    return walk_files(root, MEDIA_EXTENSIONS)


class RavdessDataModule(SpeakerAudioDataModule):
    def __init__(self, root: str, merge_calm: bool = False, include_song: bool = False,
                 song_train_only: bool = True, include_audio_video: bool = True, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.merge_calm, self.include_song = merge_calm, include_song
        self.song_train_only = bool(song_train_only)
        self.include_audio_video = include_audio_video
        self.video_only = 0

    @property
    def label_names(self) -> list[str]:
        return list(RAVDESS_7 if self.merge_calm else RAVDESS)

    @property
    def aux_label_names(self) -> dict[str, list[str]]:
        """What each file name also says, for multi-task training (``model.aux_tasks``)."""
        return {"intensity": list(INTENSITIES), "sex": list(SEXES)}

    def label_of(self, emotion: str) -> int:
        if self.merge_calm and emotion == "calm":
            emotion = "neutral"
        return self.label_names.index(emotion)

    def scan(self) -> tuple[list[Clip], list[str], int]:
        files = self.media_files()
        problems: list[str] = []
        chosen: dict[tuple, tuple[int, Clip]] = {}
        self.video_only = duplicates = 0
        for path in files:
            try:
                name = parse_ravdess_name(path)
            except ValueError as err:
                problems.append(str(err))
                continue
            folder = next((int(m.group(1)) for d in path.parents
                           if (m := _ACTOR_DIR.match(d.name))), None)
            if folder is not None and folder != name.actor:
                problems.append(f"{path}: the name says actor {name.actor:02d} but the file is "
                                f"in an Actor_{folder:02d} folder")
                continue
            if name.modality == "video-only":
                self.video_only += 1
                continue
            if name.modality == "audio-video" and not self.include_audio_video:
                continue
            if name.channel == "song" and not self.include_song:
                continue
            clip = Clip(str(path), self.label_of(name.emotion), name.actor,
                        train_only=name.channel == "song" and self.song_train_only,
                        aux=(("intensity", name.intensity - 1), ("sex", SEXES.index(name.sex))))
            # One recording, several files (03- audio-only, 01- audio-video, wav and flac
            # copies): keep one, audio-only first.
            key = (name.channel, name.emotion, name.intensity, name.statement, name.repetition,
                   name.actor)
            rank = 0 if name.modality == "audio-only" else 1
            if key in chosen:
                duplicates += 1
            if key not in chosen or rank < chosen[key][0]:
                chosen[key] = (rank, clip)
        if self.video_only or duplicates:
            log.info("%s: skipped %d video-only (02-) files and %d second copies of a recording",
                     self.root, self.video_only, duplicates)
        return [c for _, c in sorted(chosen.values(), key=lambda rc: rc[1].path)], problems, len(files)


class RavdessSex(GroupSource):
    """RAVDESS actor sex: odd actor number = male, even = female (from the speaker id, else
    from the file name's last field)."""

    name = "ravdess_sex"

    def assign(self, meta, root=None):
        return [None if a is None else ("male" if a % 2 else "female") for a in actors(meta, parse_ravdess_name)]
