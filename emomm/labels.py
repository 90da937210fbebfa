"""Canonical emotion labels and the label sets of each dataset.

Every dataset reads its native labels, converts them to *canonical* names with
:func:`canonical`, and exposes an ordered ``label_names`` list. Models store that list in
their checkpoint, so a model trained on one dataset can be evaluated on another whose
labels map onto it (:func:`label_mapping`).
"""
from __future__ import annotations

from typing import Iterable, Sequence

#: The canonical vocabulary. The first seven are Ekman's basic emotions plus neutral, in
#: the order most face datasets use; ``calm`` comes from RAVDESS, the sentiments from MELD.
CANONICAL = (
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm",
    "positive", "negative",
)

#: Synonyms seen in the wild (folder names, CSV values, dataset codes) -> canonical name.
SYNONYMS: dict[str, str] = {
    "anger": "angry", "angry": "angry", "ang": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust", "contempt": "disgust",
    "fear": "fear", "fearful": "fear", "fea": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "hap": "happy", "joy": "happy", "joyful": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "neutral": "neutral", "neu": "neutral",
    "calm": "calm",
    "positive": "positive", "negative": "negative",
}

#: Native label orders of the datasets (index = integer label in the official files).
FER2013 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EKMAN7 = FER2013
#: RAVDESS file-name emotion codes 01..08.
RAVDESS = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise")
#: RAVDESS with calm merged into neutral (a common 7-class protocol).
RAVDESS_7 = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
#: CREMA-D file-name emotion codes.
CREMAD_CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMAD = ("angry", "disgust", "fear", "happy", "neutral", "sad")
#: MELD's emotion and sentiment label sets as written in its CSVs.
MELD_EMOTIONS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
MELD_SENTIMENTS = ("neutral", "positive", "negative")


def canonical(name: str) -> str:
    """Canonical name for a label spelled any known way (case/space-insensitive).

    Raises ``KeyError`` naming the accepted spellings when the name is unknown.
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in SYNONYMS:
        return SYNONYMS[key]
    raise KeyError(
        f"unknown emotion label {name!r}; known spellings: {sorted(SYNONYMS)}. "
        "Add it to emomm.labels.SYNONYMS if it is a new dataset's name for one of these."
    )


def canonical_list(names: Iterable[str]) -> list[str]:
    return [canonical(n) for n in names]


def label_mapping(source: Sequence[str], target: Sequence[str]) -> dict[int, int]:
    """Map indices of ``source`` labels onto ``target`` labels by canonical name.

    Labels of ``source`` with no counterpart in ``target`` are left out of the mapping,
    so callers can count and drop them.
    """
    tgt = {canonical(n): i for i, n in enumerate(target)}
    out = {}
    for i, n in enumerate(source):
        c = canonical(n)
        if c in tgt:
            out[i] = tgt[c]
    return out
