"""CREMA-D (``data=cremad data.root=PATH``): 7,442 clips of 91 actors (1001-1091), 6 emotions.

File names are ``ACTOR_SENTENCE_EMOTION_LEVEL.ext`` (e.g. ``1001_DFA_ANG_XX.wav``; emotions
ANG DIS FEA HAP NEU SAD; level LO/MD/HI/XX). Files are searched recursively: the release's
``AudioWAV/`` (16 kHz WAV), ``AudioMP3/`` and ``VideoFlash/`` (FLV, audio track read with
PyAV) all work, as does any folder of such files; when one clip exists in several formats,
one copy is used (WAV, then FLAC, then MP3/OGG, then video). Splits are by actor
(see :class:`emomm.data.pipelines.speech.SpeakerAudioDataModule`); the default is fold 0 of the
5-fold cross-validation by actor.

Auxiliary labels for multi-task training (``model.aux_tasks``, ``aux_label_names``): the
clip's ``level`` (low/medium/high; the ``XX`` clips, unspecified, carry none) from the file
name, and the actor's ``sex`` from the release's ``VideoDemographics.csv`` when it is found
(in the root, its ``metadata/`` folder or the folder above; :func:`find_demographics`).

Group source (``groups=cremad_sex``, ``cremad_age``, ``cremad_race``, ``cremad_ethnicity``):
:class:`CremadDemographics`, from the same table.
"""
from __future__ import annotations

import csv
import logging
from functools import cached_property
from pathlib import Path

from emomm.data.core.group_sources import GroupSource, actors, age_band
from emomm.data.core.speakers import parse_cremad_name
from emomm.data.pipelines.speech import Clip, SpeakerAudioDataModule
from emomm.labels import CREMAD

log = logging.getLogger(__name__)

_FORMAT_RANK = {".wav": 0, ".flac": 1, ".mp3": 2, ".ogg": 2}
DEMOGRAPHICS = "VideoDemographics.csv"
LEVELS = ("low", "medium", "high")
SEXES = ("female", "male")


def find_demographics(root: str | Path) -> list[Path]:
    """Where CREMA-D's ``VideoDemographics.csv`` may lie for a dataset folder ``root`` (the
    root, its ``metadata/`` folder, the folder above and its ``metadata/``), in that order."""
    root = Path(root).expanduser()
    return [d / DEMOGRAPHICS for d in (root, root / "metadata", root.parent, root.parent / "metadata")]


def read_actor_column(path: Path, column: str) -> dict[int, str]:
    """``{ActorID: value}`` of one column of ``VideoDemographics.csv``
    (``"ActorID","Age","Sex","Race","Ethnicity"``); rows without an id or a value are left out."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [c.strip() for c in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    if "ActorID" not in header or column not in header:
        raise ValueError(f"{path}: expected the columns ActorID and {column} (CREMA-D's {DEMOGRAPHICS} "
                         f"header), found {header}")
    return {int(r["ActorID"]): r[column] for r in rows if r.get("ActorID", "").isdigit() and r.get(column)}


class CremadDataModule(SpeakerAudioDataModule):
    @property
    def label_names(self) -> list[str]:
        return list(CREMAD)

    @property
    def aux_label_names(self) -> dict[str, list[str]]:
        """The clip's level always; the actor's sex where ``VideoDemographics.csv`` is found."""
        return {"level": list(LEVELS), **({"sex": list(SEXES)} if self._sex_table is not None else {})}

    @cached_property
    def _sex_table(self) -> dict[int, int] | None:
        """``{actor: index in SEXES}`` from the demographics table, or None without one (read
        once: the label names and every scan ask for it)."""
        path = next((p for p in find_demographics(self.root) if p.is_file()), None)
        if path is None:
            return None
        sexes = {a: v.lower() for a, v in read_actor_column(path, "Sex").items()}
        return {a: SEXES.index(v) for a, v in sexes.items() if v in SEXES}

    def scan(self) -> tuple[list[Clip], list[str], int]:
        files = self.media_files()
        problems: list[str] = []
        chosen: dict[str, tuple[int, Clip]] = {}
        duplicates = 0
        sex = self._sex_table or {}
        for path in files:
            try:
                name = parse_cremad_name(path)
            except ValueError as err:
                problems.append(str(err))
                continue
            aux = ((("level", LEVELS.index(name.level)),) if name.level in LEVELS else ()) + \
                ((("sex", sex[name.actor]),) if name.actor in sex else ())
            clip = Clip(str(path), CREMAD.index(name.emotion), name.actor, aux=aux)
            rank = _FORMAT_RANK.get(path.suffix.lower(), 3)
            if path.stem in chosen:
                duplicates += 1
            if path.stem not in chosen or rank < chosen[path.stem][0]:
                chosen[path.stem] = (rank, clip)
        if duplicates:
            log.info("%s: %d clips exist in several formats; one copy of each is used", self.root,
                     duplicates)
        return [c for _, c in sorted(chosen.values(), key=lambda rc: rc[1].path)], problems, len(files)


class CremadDemographics(GroupSource):
    """CREMA-D actor demographics from the official ``VideoDemographics.csv``
    (``"ActorID","Age","Sex","Race","Ethnicity"``), keyed by the speaker id (ActorID).

    Args:
        column: ``age`` (binned, ``age_bin`` years: 20-29, 30-39, ...), ``sex``, ``race`` or
            ``ethnicity``.
        path: the CSV; None looks for it in the dataset root, its ``metadata/`` folder and
            the folder above.
    """

    COLUMNS = {"age": "Age", "sex": "Sex", "race": "Race", "ethnicity": "Ethnicity"}
    FILE = DEMOGRAPHICS

    def __init__(self, column: str, path: str | None = None, age_bin: int = 10) -> None:
        if column not in self.COLUMNS:
            raise ValueError(f"groups.column={column!r}: choose one of {sorted(self.COLUMNS)}")
        self.column, self.path, self.age_bin = column, path, int(age_bin)
        self.name = f"cremad_{column}"

    def find(self, root: str | Path | None) -> Path:
        if self.path:
            return Path(self.path).expanduser()
        tried = find_demographics(root) if root is not None else []
        for path in tried:
            if path.is_file():
                return path
        raise FileNotFoundError(f"{self.FILE} not found (looked at {[str(t) for t in tried] or 'no data root'}); "
                                f"pass groups.path=/path/to/{self.FILE} (CREMA-D's official demographics table)")

    def table(self, root=None) -> dict[int, str]:
        """``{ActorID: group}`` from the CSV."""
        path = self.find(root)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such group table")
        table = read_actor_column(path, self.COLUMNS[self.column])
        if self.column == "age":
            return {a: age_band(float(v), self.age_bin) for a, v in table.items()}
        return table

    def assign(self, meta, root=None):
        table = self.table(root)
        return [None if a is None else table.get(a) for a in actors(meta, parse_cremad_name)]
