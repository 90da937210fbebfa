"""Speaker-independent splits and the file-name conventions of acted-emotion corpora.

RAVDESS and CREMA-D encode speaker (actor) and emotion in each file name. Every dataset
built on them (voice, video, audio-visual) splits *by actor*, never at random across
actors, because a model that has heard a speaker scores far higher on that speaker.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from emomm.labels import CREMAD_CODES, RAVDESS


# -- RAVDESS --------------------------------------------------------------------------------
_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
RAVDESS_MODALITY = {1: "audio-video", 2: "video-only", 3: "audio-only"}
RAVDESS_CHANNEL = {1: "speech", 2: "song"}


@dataclass(frozen=True)
class RavdessName:
    modality: str        # audio-video | video-only | audio-only
    channel: str         # speech | song
    emotion: str         # canonical name (RAVDESS code 01..08)
    intensity: int       # 1 normal, 2 strong
    statement: int       # 1 "Kids are talking by the door", 2 "Dogs are sitting by the door"
    repetition: int
    actor: int           # 1..24; odd = male

    @property
    def sex(self) -> str:
        return "male" if self.actor % 2 else "female"


def parse_ravdess_name(path: str | Path) -> RavdessName:
    """Parse ``MM-VC-EE-II-SS-RR-AA.ext``; ``ValueError`` names the file and the rule."""
    stem = Path(path).stem
    m = _RAVDESS_RE.match(stem)
    if not m:
        raise ValueError(f"{path}: not a RAVDESS file name (expected 7 two-digit fields "
                         "modality-channel-emotion-intensity-statement-repetition-actor, e.g. 03-01-05-01-02-01-12)")
    mo, ch, em, it, st, rp, ac = (int(x) for x in m.groups())
    if mo not in RAVDESS_MODALITY or ch not in RAVDESS_CHANNEL or not 1 <= em <= 8 or it not in (1, 2) \
            or st not in (1, 2) or rp not in (1, 2) or not 1 <= ac <= 99:
        raise ValueError(f"{path}: RAVDESS field out of range (modality 01-03, channel 01-02, "
                         "emotion 01-08, intensity 01-02, statement 01-02, repetition 01-02)")
    return RavdessName(RAVDESS_MODALITY[mo], RAVDESS_CHANNEL[ch], RAVDESS[em - 1], it, st, rp, ac)


# -- CREMA-D --------------------------------------------------------------------------------
_CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")
CREMAD_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}


@dataclass(frozen=True)
class CremadName:
    actor: int       # 1001..1091
    sentence: str    # IEO, TIE, IOM, ... (12 sentences)
    emotion: str     # canonical name
    level: str       # low | medium | high | unspecified


def parse_cremad_name(path: str | Path) -> CremadName:
    """Parse ``ACTOR_SENTENCE_EMOTION_LEVEL.ext`` (e.g. ``1001_DFA_ANG_XX.wav``)."""
    stem = Path(path).stem
    m = _CREMAD_RE.match(stem)
    if not m or m.group(3) not in CREMAD_CODES or m.group(4) not in CREMAD_LEVELS:
        raise ValueError(f"{path}: not a CREMA-D file name (expected ACTOR_SENTENCE_EMOTION_LEVEL, "
                         f"emotion one of {sorted(CREMAD_CODES)}, level LO/MD/HI/XX, e.g. 1001_DFA_ANG_XX.wav)")
    return CremadName(int(m.group(1)), m.group(2), CREMAD_CODES[m.group(3)], CREMAD_LEVELS[m.group(4)])


# -- speaker-independent splits ---------------------------------------------------------------
def kfold_speakers(speakers: Iterable[int], fold: int, n_folds: int = 5) -> dict[str, list[int]]:
    """Standard k-fold cross-validation by speaker.

    Sorted speakers are cut into ``n_folds`` contiguous groups; fold K tests on group K,
    validates on group K+1 (mod n) and trains on the rest, so over the K folds every
    speaker is tested exactly once.
    """
    spk = sorted(set(speakers))
    if not 0 <= fold < n_folds:
        raise ValueError(f"data.fold={fold} must be in 0..{n_folds - 1}")
    if len(spk) < n_folds:
        raise ValueError(f"{len(spk)} speakers cannot make {n_folds} folds")
    groups = [spk[len(spk) * i // n_folds: len(spk) * (i + 1) // n_folds] for i in range(n_folds)]
    test, val = groups[fold], groups[(fold + 1) % n_folds]
    train = [s for s in spk if s not in set(test) | set(val)]
    return {"train": train, "val": list(val), "test": list(test)}


def speaker_splits(speakers: Iterable[int], train: Sequence[int] | None = None,
                   val: Sequence[int] | None = None, test: Sequence[int] | None = None,
                   fold: int | None = None, n_folds: int = 5) -> dict[str, list[int]]:
    """Resolve the speaker lists of each split from config.

    Either ``fold`` (k-fold by speaker) or explicit lists, not both; neither means fold 0,
    the default protocol. With explicit lists, a split given as None gets the speakers no
    other split names (so ``val`` and ``test`` alone suffice); an empty test list means
    test = val; an empty val list means no held-out speakers: the data module validates on
    the training speakers (a final refit on every speaker with a fixed epoch count, whose
    validation score is a training-set score). Always disjoint (asserted).
    """
    available = sorted(set(speakers))
    lists_given = any(v is not None for v in (train, val, test))
    if fold is not None and lists_given:
        raise ValueError(f"data.fold={fold} and explicit speaker lists are both set; give one of them "
                         "(data.fold=null to use the lists)")
    if fold is None and not lists_given:
        fold = 0
    if fold is not None:
        out = kfold_speakers(available, fold, n_folds)
    else:
        given = {"train": train, "val": val, "test": test}
        named = {s for v in given.values() if v for s in v}
        rest = [s for s in available if s not in named]
        out = {k: list(v) if v is not None else rest for k, v in given.items()}
        if sum(v is None for v in given.values()) > 1:
            raise ValueError("give at least two of data.train_speakers/val_speakers/test_speakers, or data.fold")
    assert_disjoint(out)
    for k in ("train", "val"):
        if k == "val" and val is not None and not len(val):
            continue  # val=[]: validate on the training speakers (no held-out speakers)
        if not set(out[k]) & set(available):
            raise ValueError(f"{k} split has no speakers present in the data (asked for {out[k]}, "
                             f"data has {available})")
    return out


def assert_disjoint(splits: dict[str, Sequence[int]]) -> None:
    """Raise if any speaker is in two splits (test may be empty, meaning test = val)."""
    seen: dict[int, str] = {}
    for name, spk in splits.items():
        for s in spk:
            if s in seen and seen[s] != name:
                raise ValueError(f"speaker {s} is in both {seen[s]} and {name}: splits must be "
                                 "speaker-independent")
            seen[s] = name
