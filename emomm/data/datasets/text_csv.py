"""Any labelled text table (``data=text_csv data.path=FILE``): CSV, TSV or ``;``-separated.

One row = one text and one label; the column names (or 0-based indices for files without
a header) come from the config. Covers, for example:

* ISEAR-style CSVs: ``text_column=SIT label_column=EMOT`` (names or codes);
* dair-ai/emotion ``train.txt`` (``text;label``, no header): ``header=false
  text_column=0 label_column=1``;
* GoEmotions TSV (``text<TAB>ids<TAB>id``, no header): ``header=false text_column=0
  label_column=1 label_names=[admiration,...]``; multi-label rows are skipped (counted).

Labels: ``label_names`` in the config (their order is the model's class order; integer
labels in the file are indices into it), or read from the data (sorted). Names known to
:mod:`emomm.labels` are stored canonically (joy -> happy) so models compare across
datasets; other names are kept as written (lower-cased). Rows whose label is not in the set,
empty texts and multi-label rows are skipped with a warning naming the file and lines.

Splits: a ``split_column`` (values train/val/test and their usual synonyms) when the file
has one; ``path`` may also be a folder with ``train.*``, ``val.*``/``dev.*``/
``validation.*`` and ``test.*`` files. Otherwise a seeded stratified split
(``val_fraction``, ``test_fraction``). A missing val is carved from train; a missing test
is the validation split (with a warning).
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import Dataset

from emomm.data.core.emotion_datamodule import DataError
from emomm.data.core.splits import stratified_split, stratified_three_way
from emomm.data.pipelines.text_data import (TextDataModule, TextDataset, clean_text, find_column, read_table,
                                            record_skipped, report_repairs, report_skipped)
from emomm.labels import canonical

log = logging.getLogger(__name__)

SPLIT_NAMES = {
    "train": ("train", "training", "trn"),
    "val": ("val", "valid", "validation", "dev", "development", "publictest"),
    "test": ("test", "testing", "tst", "privatetest"),
}
_SPLIT_OF = {v: k for k, vs in SPLIT_NAMES.items() for v in vs}
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
_MULTI = re.compile(r"^\s*\S+\s*[,;|]\s*\S+")


def _canon_or_raw(name: str) -> str:
    try:
        return canonical(name)
    except KeyError:
        return str(name).strip().lower()


def _is_int(x: str) -> bool:
    return bool(re.fullmatch(r"\s*-?\d+\s*", str(x)))


def split_files(folder: Path) -> dict[str, Path]:
    """``{split: file}`` for a folder of per-split tables (train.csv, dev.tsv, test.txt...)."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES:
            split = _SPLIT_OF.get(p.stem.lower())
            if split and split not in found:
                found[split] = p
    return found


class TextCsvDataModule(TextDataModule):
    """Args:
        path: the table, or a folder of per-split tables.
        text_column / label_column: column names, or 0-based indices with ``header=false``.
        split_column: column holding train/val/test per row; used when present in the file.
        label_names: class names in model order; null = the sorted labels found in the data.
        sep: field separator; null = tab for .tsv, else sniffed.
        header: whether the first row names the columns.
        val_fraction / test_fraction: seeded stratified split sizes when the file has none.
    """

    def __init__(self, path: str, text_column: str | int = "text", label_column: str | int = "label",
                 split_column: str | None = "split", label_names: Sequence[str] | None = None,
                 sep: str | None = None, header: bool = True, val_fraction: float = 0.1,
                 test_fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.text_column, self.label_column, self.split_column = text_column, label_column, split_column
        self.sep, self.header = sep, header
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self._given_names = [str(n) for n in label_names] if label_names else None
        self._found_names: list[str] | None = None
        self._tables: dict[str, Any] | None = None

    skip_key = "source"   # ``skipped``: the rows left out, by table

    # -- reading --------------------------------------------------------------------------
    def _files(self) -> dict[str | None, Path]:
        if self.path.is_dir():
            files = split_files(self.path)
            if "train" not in files:
                raise FileNotFoundError(
                    f"data.path={self.path} is a folder without a train table; expected "
                    f"train.csv|tsv|txt (+ val/dev and test), or point data.path at one file")
            return dict(files)
        if not self.path.is_file():
            raise FileNotFoundError(f"data.path={self.path} does not exist. Point it at a CSV/TSV "
                                    "with a text and a label column (or a folder of train/val/test files).")
        return {None: self.path}

    def _read(self) -> dict[str, Any]:
        """Tables as raw strings, once: ``{key: (path, frame, text col, label col, split col)}``."""
        if self._tables is None:
            self._tables = {}
            for key, path in self._files().items():
                df, n_bytes = read_table(path, self.sep, self.header)
                tcol = find_column(df, self.text_column, path, "text")
                lcol = find_column(df, self.label_column, path, "label")
                scol = None
                if key is None and self.split_column is not None:
                    try:
                        scol = find_column(df, self.split_column, path, "split")
                    except ValueError:
                        log.info("%s: no split column %r: making a seeded stratified split",
                                 path, self.split_column)
                self._tables[key] = (path, df, tcol, lcol, scol, n_bytes)
        return self._tables

    @property
    def label_names(self) -> list[str]:
        if self._given_names:
            return [_canon_or_raw(n) for n in self._given_names]
        if self._found_names is None:
            raw = set()
            for path, df, _, lcol, _, _ in self._read().values():
                for v in df[lcol]:
                    v = str(v).strip()
                    if v and not _MULTI.match(v):
                        raw.add(v)
            if raw and all(_is_int(v) for v in raw):
                raise ValueError(f"{self.path}: the labels are integers {sorted(raw, key=int)[:10]}; "
                                 "give their names in order with data.label_names=[name0,name1,...]")
            names = sorted({_canon_or_raw(v) for v in raw})
            if not names:
                raise ValueError(f"{self.path}: no labels found in column {self.label_column!r}")
            self._found_names = names
            log.info("%s: label set read from the data: %s", self.path, names)
        return list(self._found_names)

    def _label_of(self, value: str, index: dict[str, int]) -> tuple[int | None, str | None]:
        v = str(value).strip()
        if not v:
            return None, "empty label"
        if _MULTI.match(v):
            return None, "multi-label row"
        if _is_int(v) and self._given_names:
            i = int(v)
            return (i, None) if 0 <= i < len(index) else (None, "label outside the set")
        i = index.get(_canon_or_raw(v))
        return (i, None) if i is not None else (None, "label outside the set")

    def _rows(self) -> dict[str, dict[str, list]]:
        names = self.label_names
        index = {n: i for i, n in enumerate(names)}
        by_split: dict[str, dict[str, list]] = {}
        for key, (path, df, tcol, lcol, scol, n_bytes) in self._read().items():
            repairs: Counter = Counter()
            if n_bytes:
                repairs["cp1252_byte"] += n_bytes
            skipped: dict[str, list[str]] = {}
            line0 = 2 if self.header else 1
            for pos, rec in enumerate(df.to_dict("records")):
                where = f"line {pos + line0}"
                text = clean_text(rec[tcol], repairs, self.repair, self.normalize)
                label, why = self._label_of(rec[lcol], index)
                if not text:
                    why = "empty text"
                split = key
                if scol is not None:
                    split = _SPLIT_OF.get(str(rec[scol]).strip().lower())
                    if split is None:
                        raise ValueError(f"{path} {where}: split value {rec[scol]!r} is not one of "
                                         f"{sorted(_SPLIT_OF)}")
                if why:
                    row = where + (f" ({rec[lcol]!r})" if "label" in why else "")
                    skipped.setdefault(why, []).append(row)
                    record_skipped(self.skips, {why: [row]}, path, split)
                    continue
                part = by_split.setdefault(split or "all", {"texts": [], "labels": [], "ids": []})
                part["texts"].append(text)
                part["labels"].append(label)
                part["ids"].append(f"{path.name}:{pos + line0}")
            report_repairs(repairs, str(path))
            report_skipped(skipped, str(path), len(df))
            self.repairs[str(path)] = dict(repairs)
        return by_split

    def build_splits(self) -> dict[str, Dataset]:
        parts = self._rows()
        if "all" in parts:  # one file, no split column: seeded stratified train/val/test
            whole = parts.pop("all")
            labels = whole["labels"]
            tr, va, te = stratified_three_way(labels, self.val_fraction, self.test_fraction, self.seed)
            for split, idx in (("train", tr), ("val", va), ("test", te)):
                if len(idx) or split != "test":   # test_fraction=0: test = val (below)
                    parts[split] = {k: [v[i] for i in idx] for k, v in whole.items()}
            log.info("%s: stratified split (seed %d): %s", self.path, self.seed,
                     {s: len(p["texts"]) for s, p in parts.items()})
        if "train" not in parts:
            left = f"; {len(self.skips)} rows were left out ({self.skips.summary()}), first: " \
                f"{self.skips.entries[0].message}" if len(self.skips) else ""
            raise DataError(f"{self.path}: no training rows (split values {sorted(parts)}){left}")
        if "val" not in parts:
            whole = parts["train"]
            keep, held = stratified_split(whole["labels"], self.val_fraction, self.seed)
            parts["train"] = {k: [v[i] for i in keep] for k, v in whole.items()}
            parts["val"] = {k: [v[i] for i in held] for k, v in whole.items()}
            log.info("%s: no validation rows: held out a stratified %.0f%% of train (seed %d)",
                     self.path, 100 * self.val_fraction, self.seed)
        out = {s: TextDataset(parts[s]["texts"], parts[s]["labels"], ids=parts[s]["ids"])
               for s in ("train", "val", "test") if s in parts}
        if "test" not in out:
            log.warning("%s: no test rows: test metrics are computed on the validation split", self.path)
            out["test"] = out["val"]
        return out
