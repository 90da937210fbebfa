"""Scoring a mean ensemble fold by fold over its members' cross-validations.

A zoo ensemble (``kind: ensemble``, e.g. ``voice-ravdess``) predicts with the mean of its
members' probabilities; its card's figures are that mean scored on each fold's test speakers,
each member's fold model giving its probabilities on the same clips
(:func:`ensemble_fold_scores`). ``python -m benchmarks.voice_cv`` scores its ensembles with the
same functions.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: The metrics :func:`scores` gives.
METRICS = ("uar", "acc", "f1_macro")


def scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """UAR, accuracy and macro F1 of ``probs`` ``[N, K]`` against ``labels`` ``[N]``."""
    pred = np.asarray(probs).argmax(1)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    recall = [float((pred[labels == c] == c).mean()) for c in classes]
    f1 = []
    for c in classes:
        tp = float(((pred == c) & (labels == c)).sum())
        denom = float((pred == c).sum() + (labels == c).sum())
        f1.append(2 * tp / denom if denom else 0.0)
    return {"uar": float(np.mean(recall)), "acc": float((pred == labels).mean()), "f1_macro": float(np.mean(f1))}


def fold_mean(members: Mapping[str, tuple[np.ndarray, np.ndarray, Sequence[str]]], fold: int | str = "?"
              ) -> tuple[np.ndarray, np.ndarray]:
    """The mean probabilities ``[N, K]`` of one fold's members (``{member: (probs [N, K],
    labels [N], clip ids [N])}``) and the labels; members tested on other clips (or in
    another order) are a ValueError: their cross-validations must split the speakers alike."""
    names = list(members)
    first = members[names[0]]
    for m in names[1:]:
        if list(members[m][2]) != list(first[2]) or not np.array_equal(members[m][1], first[1]):
            raise ValueError(f"fold {fold}: {names[0]} and {m} were tested on different clips: the "
                             "cross-validations must split the speakers the same way")
    return np.mean([members[m][0] for m in names], axis=0), np.asarray(first[1])


def ensemble_fold_scores(probs: Mapping[str, Mapping[int, tuple[np.ndarray, np.ndarray, Sequence[str]]]]
                         ) -> dict[int, dict[str, float]]:
    """``{fold: scores}`` of the mean ensemble of the members ``probs`` (``{member: {fold:
    (probs [N, K], labels [N], clip ids [N])}}``, every member over the same folds)."""
    names = list(probs)
    folds = sorted(probs[names[0]])
    for m in names[1:]:
        if sorted(probs[m]) != folds:
            raise ValueError(f"{names[0]} and {m} have different folds ({folds} vs {sorted(probs[m])}): "
                             "compare like with like")
    return {k: scores(*fold_mean({m: probs[m][k] for m in names}, k)) for k in folds}
