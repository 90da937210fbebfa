"""MELD text (``data=meld data.root=PATH``): the official ``*_sent_emo.csv`` files.

``root`` holds ``train_sent_emo.csv``, ``dev_sent_emo.csv`` and ``test_sent_emo.csv``
(columns ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID,
Season, Episode, StartTime, EndTime``). Validation is dev; without a test file, test = dev
(with a warning); without a dev file, whole dialogues of train are held out.

* ``target``: ``emotion`` (7 classes, MELD's order ``neutral, surprise, fear, sadness, joy,
  disgust, anger`` spelled canonically: sad, happy, angry) or ``sentiment`` (3).
* ``context_turns`` = K > 0 gives every utterance the previous K utterances of its dialogue
  (ordered by ``Utterance_ID``) as context, each ``"Speaker: text"`` and joined with
  ``" | "``, oldest first. Turns whose label is outside the label set still serve as
  context; empty ones do not. ``speakers`` also prefixes the target utterance with its
  speaker's name.
* Mis-encoded text is repaired and counted (see :func:`emomm.data.text.repair_text`);
  empty utterances and labels outside the set are skipped with a warning naming the file
  and the ``Sr No.`` of each row.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from emomm.data.text import (TextDataModule, TextDataset, clean_text, find_column, read_table,
                             report_repairs, report_skipped)
from emomm.labels import MELD_EMOTIONS, MELD_SENTIMENTS, canonical

log = logging.getLogger(__name__)

SPLIT_FILES = {"train": "train_sent_emo.csv", "val": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
TARGETS = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}
CONTEXT_SEP = " | "
REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")


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
                  ) -> dict[str, Any]:
    """Parse one MELD CSV.

    Returns a dict with ``texts``, ``contexts`` (None when ``context_turns`` is 0),
    ``labels``, ``ids`` (``Sr No.``), ``dialogues`` (Dialogue_ID per kept sample),
    ``repairs`` (Counter) and ``skipped`` (``{reason: ["Sr No. 12", ...]}``).
    """
    if target not in TARGETS:
        raise ValueError(f"data.target must be one of {sorted(TARGETS)}, got {target!r}")
    if context_turns < 0:
        raise ValueError(f"data.context_turns must be >= 0, got {context_turns}")
    df, cp1252_bytes = read_table(path, sep=",")
    cols = {name: find_column(df, name, path, name) for name in REQUIRED}
    sr_col = next((c for c in df.columns if c.strip().lower().replace(" ", "") in ("srno.", "srno")), None)
    label_index = {canonical(n): i for i, n in enumerate(TARGETS[target])}
    label_col = cols["Emotion" if target == "emotion" else "Sentiment"]

    repairs: Counter = Counter()
    if cp1252_bytes:
        repairs["cp1252_byte"] += cp1252_bytes
    rows = []  # (dialogue, utterance_id, file order, speaker, text, label or None, row name)
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
        try:
            label = label_index.get(canonical(raw_label))
        except KeyError:
            label = None
        if not text:
            skipped["empty utterance"].append(name)
        elif label is None:
            skipped["label outside the set"].append(f"{name} ({raw_label!r})")
        rows.append((dlg, utt, pos, speaker, text, label if text else None, name))

    # Context: previous non-empty turns of the same dialogue, in Utterance_ID order.
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    texts, contexts, labels, ids, dialogues = [], [], [], [], []
    turns: list[str] = []
    current = None
    for dlg, _, _, speaker, text, label, name in rows:
        if dlg != current:
            current, turns = dlg, []
        said = f"{speaker}: {text}" if speakers and speaker else text
        if label is not None:
            texts.append(said)
            contexts.append(CONTEXT_SEP.join(turns[-context_turns:]) if context_turns else "")
            labels.append(label)
            ids.append(name)
            dialogues.append(dlg)
        if text:
            turns.append(said)
    report_repairs(repairs, str(path))
    report_skipped(skipped, str(path), len(df))
    return {"texts": texts, "contexts": contexts if context_turns else None, "labels": labels,
            "ids": ids, "dialogues": dialogues, "repairs": repairs,
            "skipped": {k: v for k, v in skipped.items() if v}}


def dialogue_split(dialogues: list[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) sample indices holding out ``fraction`` of the dialogues (whole ones, so
    no dialogue's context leaks across the split)."""
    uniq = np.unique(dialogues)
    rng = np.random.default_rng(seed)
    held_d = set(rng.choice(uniq, size=max(1, int(round(len(uniq) * fraction))), replace=False).tolist())
    held = np.array([i for i, d in enumerate(dialogues) if d in held_d], dtype=int)
    keep = np.array([i for i, d in enumerate(dialogues) if d not in held_d], dtype=int)
    return keep, held


class MeldDataModule(TextDataModule):
    """Args:
        root: folder of the MELD CSVs.
        target: ``emotion`` | ``sentiment``.
        context_turns: previous utterances of the dialogue given as context (0 = none).
        speakers: prefix utterances (context and target) with the speaker's name.
        val_fraction: dialogues of train held out when there is no dev file.
        **kwargs: :class:`~emomm.data.text.TextDataModule` / ``EmotionDataModule`` options.
    """

    def __init__(self, root: str, target: str = "emotion", context_turns: int = 0,
                 speakers: bool = True, val_fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if target not in TARGETS:
            raise ValueError(f"data.target must be one of {sorted(TARGETS)}, got {target!r}")
        self.root = Path(root).expanduser()
        self.target = target
        self.context_turns = int(context_turns)
        self.speakers = bool(speakers)
        self.val_fraction = val_fraction

    @property
    def label_names(self) -> list[str]:
        return [canonical(n) for n in TARGETS[self.target]]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"text": {**super().preprocessing["text"], "context_turns": self.context_turns,
                         "speakers": self.speakers}}

    def build_splits(self) -> dict[str, Dataset]:
        files = find_files(self.root)
        parts = {s: read_meld_csv(p, self.target, self.context_turns, self.speakers,
                                  self.repair, self.normalize) for s, p in files.items()}
        for s, part in parts.items():
            self.repairs[s] = dict(part["repairs"])
            self.skipped[s] = {k: len(v) for k, v in part["skipped"].items()}
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
            out[s] = TextDataset(p["texts"], p["labels"], p["contexts"], ids=p["ids"])
        return out
