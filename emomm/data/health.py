"""Dataset health checks behind ``python -m emomm.validate data=...``.

:func:`validate_datamodule` builds a DataModule's splits exactly as training does, then
looks at what came out:

* per split and class counts;
* unreadable files: the files the DataModule itself left out while loading (its
  :class:`~emomm.data.core.skips.SkipLog`, the same record training's warnings come from), plus
  those of the files a split still names that fail a try-decode with the media layer
  (``decode=full``: the whole file; ``header``: headers only, cheap for long audio/video;
  ``none``: existence only);
* folders that could not be listed (permissions), rows and names left out, and text that
  had to be read as cp1252 or could not be decoded;
* files named by the data (e.g. a CSV row's clip) that do not exist;
* speakers present in two splits (datasets that record speakers);
* exact duplicates across splits and duplicates with conflicting labels: decoded pixels
  (images), normalised strings (text) or decoded samples (audio) are hashed, so a JPEG
  re-encoded to PNG with the same pixels is still a duplicate.

It returns a plain dict (JSON-ready) whose ``problems`` list says what makes the data
unusable (what :meth:`~emomm.data.core.emotion_datamodule.EmotionDataModule.data_problems` finds - an empty
split, a class with no training sample, folders that cannot be read - or every file of a
split unreadable, or data that cannot be loaded at all, e.g. a CSV that does not parse);
``usable`` is False when there is any. :func:`to_markdown` renders the same dict for people.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset, Subset

from emomm.data.core.emotion_datamodule import DataError
from emomm.data.core.splits import SPLITS, dataset_labels
from emomm.media.audio import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, audio_duration, load_audio
from emomm.media.images import IMAGE_EXTENSIONS, read_image_rgb
from emomm.media.video import probe, read_frames
from emomm.data.core.skips import UNREADABLE, UNREADABLE_FOLDER, SkipLog

log = logging.getLogger(__name__)

DECODE_MODES = ("full", "header", "none")


# -- looking inside datasets ---------------------------------------------------------------
def _through_subsets(ds: Dataset) -> tuple[Dataset, list[int] | None]:
    """The innermost dataset and the indices of ``ds`` into it (None = all)."""
    idx: list[int] | None = None
    while isinstance(ds, Subset):
        inner = list(ds.indices)
        idx = inner if idx is None else [inner[i] for i in idx]
        ds = ds.dataset
    return ds, idx


def _attr(ds: Dataset, *names: str) -> list | None:
    """A per-sample attribute list (``paths``, ``speakers``...) of ``ds``, through Subsets."""
    base, idx = _through_subsets(ds)
    for n in names:
        v = getattr(base, n, None)
        if v is not None and not callable(v):
            try:
                v = list(v)
            except TypeError:
                continue
            if len(v) != len(base):  # not a per-sample attribute
                continue
            return v if idx is None else [v[i] for i in idx]
    return None


def _item_paths(ds: Dataset) -> list | None:
    """Source file of each sample: ``paths`` (images, audio) or ``items[i].path`` (video)."""
    paths = _attr(ds, "paths")
    if paths is not None:
        return paths
    items = _attr(ds, "items")
    if items is not None and all(hasattr(it, "path") for it in items):
        return [it.path for it in items]
    return None


def _item_speakers(ds: Dataset) -> list | None:
    spk = _attr(ds, "speakers")
    if spk is None:
        items = _attr(ds, "items")
        if items is not None and all(hasattr(it, "speaker") for it in items):
            spk = [it.speaker for it in items]
    if spk is None or all(s is None for s in spk):
        return None
    return spk


# -- decoding and hashing ------------------------------------------------------------------
def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p)
    return h.hexdigest()


def hash_pixels(arr: np.ndarray) -> str:
    """Hash of decoded pixels and their shape (so 48x48 and 2304x1 never collide)."""
    a = np.ascontiguousarray(arr)
    return _digest(str(a.shape).encode(), str(a.dtype).encode(), a.tobytes())


def hash_text(text: Any) -> str:
    return _digest(" ".join(str(text).split()).lower().encode("utf-8", "replace"))


def try_decode(path: str | Path, mode: str = "full") -> tuple[str | None, str | None]:
    """``(error, content_hash)`` of one media file: error is None when it decodes, the hash
    is of the decoded image pixels / audio samples (``full`` mode only; None otherwise)."""
    p = Path(path)
    if not p.is_file():
        return f"{p}: no such file", None
    if mode == "none":
        return None, None
    suffix = p.suffix.lower()
    try:
        if suffix in IMAGE_EXTENSIONS:
            arr = read_image_rgb(p)
            return None, hash_pixels(arr) if mode == "full" else None
        if suffix in AUDIO_EXTENSIONS:
            if mode == "header":
                audio_duration(p)
                return None, None
            wave, _ = load_audio(p, mono=False)
            return None, hash_pixels(wave)
        if suffix in VIDEO_EXTENSIONS:
            if mode == "header":
                probe(p)
            else:
                read_frames(p, num_frames=2)
            return None, None
    except Exception as err:  # every media error is a ValueError naming the file; be safe
        return str(err) if str(p) in str(err) else f"{p}: {type(err).__name__}: {err}", None
    return None, None


# -- the checks ------------------------------------------------------------------------------
def _duplicates(hashes: dict[str, list[tuple[str, int, str]]], label_names: Sequence[str],
                kind: str, examples: int) -> dict[str, Any]:
    """Group samples by content hash. ``hashes``: hash -> [(split, label, where)]."""
    groups = {h: v for h, v in hashes.items() if len(v) > 1}
    cross = {h: v for h, v in groups.items() if len({s for s, _, _ in v}) > 1}
    conflict = {h: v for h, v in groups.items() if len({y for _, y, _ in v}) > 1}
    pairs: dict[str, int] = defaultdict(int)
    for v in cross.values():
        ss = sorted({s for s, _, _ in v}, key=SPLITS.index)
        for i, a in enumerate(ss):
            for b in ss[i + 1:]:
                pairs[f"{a}/{b}"] += 1

    def show(g):
        return [[{"split": s, "label": label_names[y], "where": w} for s, y, w in v]
                for v in list(g.values())[:examples]]

    return {"kind": kind, "examples": show(groups), "groups": len(groups), "items_in_groups": sum(len(v) for v in groups.values()),
            "cross_split_groups": len(cross), "cross_split_pairs": dict(pairs),
            "conflicting_label_groups": len(conflict),
            "conflicting_cross_split_groups": len(set(cross) & set(conflict)),
            "examples_cross_split": show(cross), "examples_conflicting": show(conflict)}


def _same_data(a: Dataset, b: Dataset) -> bool:
    """True when ``b`` is ``a`` again (test = val when a dataset has no test split): the same
    object, or datasets over the same sample lists (FER2013 builds a second ImageDataset
    over the validation lists, with its own transform)."""
    if a is b:
        return True
    (ba, ia), (bb, ib) = _through_subsets(a), _through_subsets(b)
    if ia != ib or len(ba) != len(bb) or len(ba) == 0:
        return False
    for n in ("images", "paths", "items", "clips", "texts"):
        va, vb = getattr(ba, n, None), getattr(bb, n, None)
        if va is not None and va is vb:
            return True
    if list(dataset_labels(a)) != list(dataset_labels(b)):
        return False
    pa, pb = _item_paths(a), _item_paths(b)
    if pa is not None:
        return pa == pb
    ta, tb = _attr(a, "texts"), _attr(b, "texts")
    return ta is not None and ta == tb


def _skipped_at_load(skips: SkipLog, max_list: int) -> dict[str, Any]:
    """What the DataModule itself left out while loading (its skip log), JSON-ready."""
    return {"n": len(skips), "by_reason": dict(Counter(s.reason for s in skips)),
            "per_split": {str(k): v for k, v in skips.count_by("split").items()},
            "first": [s.message for s in list(skips)[:max_list]]}


def _text_warnings(dm: Any) -> list[str]:
    """Text tables that had bytes read as cp1252 or characters that could not be decoded."""
    out = []
    for key, counts in (getattr(dm, "repairs", None) or {}).items():
        where = key if key == dm.location or "/" in key or "\\" in key else f"{dm.location} ({key})"
        if counts.get("unrepairable"):
            out.append(f"{where}: {counts['unrepairable']} characters could not be decoded (bytes neither UTF-8 "
                       "nor cp1252, or U+FFFD in the file) and are kept as U+FFFD; re-save it as UTF-8 from its source")
        if counts.get("cp1252_byte"):
            out.append(f"{where}: {counts['cp1252_byte']} bytes are not UTF-8 and were read as cp1252; re-save "
                       "the file as UTF-8 to be sure of its text")
    return out


def validate_datamodule(dm: Any, decode: str = "full", max_list: int = 20, duplicates: bool = True,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every check on ``dm`` (an :class:`~emomm.data.core.emotion_datamodule.EmotionDataModule`, not set
    up yet or set up) and return the report dict (see the module docstring)."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode={decode!r}: use one of {list(DECODE_MODES)}")
    say = progress or log.info
    start = time.time()
    report: dict[str, Any] = {"dataset": type(dm).__name__.replace("DataModule", ""),
                              "root": str(getattr(dm, "root", "") or getattr(dm, "path", "")), "label_names": [],
                              "decode": decode}
    try:
        # The label set may come from the data itself (a text table): inside the try too.
        labels_of = report["label_names"] = list(dm.label_names)
        dm.build()
    except Exception as err:  # a dataset that cannot even be listed or parsed is unusable as a whole
        why = str(err) if isinstance(err, DataError) else f"{type(err).__name__}: {err}"
        report.update(usable=False, problems=[f"the data cannot be loaded: {why}"],
                      time_s=round(time.time() - start, 2))
        skips = getattr(dm, "skips", None)
        if skips:
            report["skipped_at_load"] = _skipped_at_load(skips, max_list)
        return report
    report["setup_s"] = round(time.time() - start, 2)
    problems: list[str] = list(dm.data_problems())
    warnings: list[str] = list(dm.data_warnings()) + _text_warnings(dm)
    skips: SkipLog = dm.skips

    # A split that is the same object as another (test = val when there is no test data).
    aliases = {s: next((p for p in SPLITS[:i] if _same_data(dm.splits[p], dm.splits[s])), None)
               for i, s in enumerate(SPLITS)}
    hashes: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    hash_kind = None
    splits: dict[str, Any] = {}
    speakers: dict[str, list] = {}
    for split in SPLITS:
        ds = dm.splits[split]
        if aliases[split]:
            splits[split] = {"same_as": aliases[split], "n": len(ds)}
            continue
        labels = [int(y) for y in dataset_labels(ds)]
        counts = np.bincount(np.asarray(labels, dtype=int), minlength=len(labels_of)) if labels else \
            np.zeros(len(labels_of), int)
        info: dict[str, Any] = {"n": len(ds), "per_class": {n: int(c) for n, c in zip(labels_of, counts)}}
        paths = _item_paths(ds)
        images = _attr(ds, "images")
        texts = _attr(ds, "texts")
        spk = _item_speakers(ds)
        if spk is not None:
            speakers[split] = sorted({s for s in spk}, key=str)
            info["speakers"] = len(speakers[split])
        # Files the DataModule left out while loading, then those the split still names.
        unreadable = [x.message for x in skips.select(UNREADABLE, split)]
        missing: list[str] = []
        if images is not None:  # decoded while loading: hash the pixels themselves
            hash_kind = "pixels"
            for i, (arr, y) in enumerate(zip(images, labels)):
                where = str(paths[i]) if paths and paths[i] is not None else f"{split}[{i}]"
                if duplicates:
                    hashes[hash_pixels(np.asarray(arr))].append((split, y, where))
        elif texts is not None:
            hash_kind = "text"
            for i, (t, y) in enumerate(zip(texts, labels)):
                if duplicates:
                    hashes[hash_text(t)].append((split, y, f"{split}[{i}]"))
        if paths is not None and images is None:
            say(f"{split}: checking {len(paths)} files (decode={decode})")
            for i, (p, y) in enumerate(zip(paths, labels)):
                if p is None:
                    continue
                if not Path(p).exists():
                    missing.append(str(p))
                    continue
                err, h = try_decode(p, decode)
                if err:
                    unreadable.append(err)
                elif h is not None and duplicates and texts is None:
                    hash_kind = hash_kind or "decoded samples"
                    hashes[h].append((split, y, str(p)))
        info.update(unreadable=len(unreadable), unreadable_files=unreadable[:max_list],
                    missing=len(missing), missing_files=missing[:max_list])
        clip_counts = (getattr(dm, "clip_counts", None) or {}).get(split)
        if clip_counts:  # MELD: rows of the CSV whose dia{D}_utt{U}.mp4 is not in the clip folders
            info["clips"] = dict(clip_counts)
            info["missing"] += clip_counts["utterances"] - clip_counts["with_clip"]
        splits[split] = info
        named = (sum(p is not None for p in paths) if paths is not None else 0) + \
            len(skips.select(UNREADABLE, split))
        if len(ds) and paths is not None and images is None and 0 < named == len(unreadable) + len(missing):
            problems.append(f"split {split}: all {named} files are unreadable or missing (the first: "
                            f"{(unreadable + missing)[0]})")
    report["splits"] = splits
    report["skipped_at_load"] = _skipped_at_load(skips, max_list)
    folders = skips.select(UNREADABLE_FOLDER)
    if folders:
        report["unreadable_folders"] = [x.item for x in folders]

    if speakers:
        overlap = {}
        names = list(speakers)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                both = sorted(set(speakers[a]) & set(speakers[b]), key=str)
                if both:
                    overlap[f"{a}/{b}"] = both
        report["speakers"] = {"per_split": speakers, "overlap": overlap}
        if overlap:
            # Not fatal: the data can still train, but its scores are not speaker-independent.
            warnings.append(f"speakers in two splits: {overlap}")
    if duplicates and hash_kind:
        report["duplicates"] = _duplicates(hashes, labels_of, hash_kind, examples=min(max_list, 5))
    if warnings:
        report["warnings"] = warnings
    report["problems"] = problems
    report["usable"] = not problems
    report["time_s"] = round(time.time() - start, 2)
    return report


def to_markdown(r: dict[str, Any]) -> str:
    """The report as Markdown (one table of counts, then the findings)."""
    lines = [f"# Data validation: {r['dataset']} ({r.get('root', '')})", "",
             f"**{'usable' if r.get('usable') else 'NOT usable'}**; decode={r.get('decode')}, "
             f"{r.get('time_s', '?')} s", ""]
    for p in r.get("problems", []):
        lines.append(f"* problem: {p}")
    for w in r.get("warnings", []):
        lines.append(f"* warning: {w}")
    splits = r.get("splits", {})
    if splits:
        labels = r["label_names"]
        lines += ["", "| split | n | " + " | ".join(labels) + " | unreadable | missing |",
                  "|---|---:|" + "---:|" * len(labels) + "---:|---:|"]
        for s, info in splits.items():
            if "same_as" in info:
                lines.append(f"| {s} | = {info['same_as']} |" + " |" * (len(labels) + 2))
                continue
            pc = info["per_class"]
            lines.append(f"| {s} | {info['n']} | " + " | ".join(str(pc[n]) for n in labels)
                         + f" | {info['unreadable']} | {info['missing']} |")
        for s, info in splits.items():
            for f in info.get("unreadable_files", []):
                lines.append(f"* {s} unreadable: {f}")
            for f in info.get("missing_files", []):
                lines.append(f"* {s} missing: {f}")
    sk = r.get("skipped_at_load", {})
    if sk.get("n"):
        reasons = ", ".join(f"{n} {why}" for why, n in sk.get("by_reason", {}).items())
        lines += ["", f"Skipped while loading: {sk['n']} ({reasons})"] + [f"* {x}" for x in sk["first"]]
    for f in r.get("unreadable_folders", []):
        lines.append(f"* unreadable folder: {f}")
    if "speakers" in r:
        sp = r["speakers"]
        lines += ["", "Speakers: " + ", ".join(f"{s}: {len(v)}" for s, v in sp["per_split"].items())
                  + (f"; overlap {sp['overlap']}" if sp["overlap"] else "; no speaker in two splits")]
    d = r.get("duplicates")
    if d:
        lines += ["", f"Duplicates (by {d['kind']}): {d['groups']} groups of identical samples "
                      f"({d['items_in_groups']} samples); {d['cross_split_groups']} groups span splits "
                      f"{d['cross_split_pairs']}; {d['conflicting_label_groups']} groups have conflicting "
                      f"labels ({d['conflicting_cross_split_groups']} of them across splits)."]
    return "\n".join(lines) + "\n"
