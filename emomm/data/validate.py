"""Dataset health checks behind ``python -m emomm.validate data=...``.

:func:`validate_datamodule` builds a DataModule's splits exactly as training does, then
looks at what came out:

* per split and class counts;
* unreadable files: each file a split names is try-decoded with the media layer
  (``decode=full``: the whole file; ``header``: headers only, cheap for long audio/video;
  ``none``: existence only), plus the files the DataModule itself skipped while loading;
* files named by the data (e.g. a CSV row's clip) that do not exist;
* speakers present in two splits (datasets that record speakers);
* exact duplicates across splits and duplicates with conflicting labels: decoded pixels
  (images), normalised strings (text) or decoded samples (audio) are hashed, so a JPEG
  re-encoded to PNG with the same pixels is still a duplicate.

It returns a plain dict (JSON-ready) whose ``problems`` list says what makes a split
unusable (empty, a class with no training sample, every file unreadable); ``usable`` is
False when there is any. :func:`to_markdown` renders the same dict for people.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset, Subset

from emomm.data.base import SPLITS, dataset_labels

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
    from emomm.media.audio import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, audio_duration, load_audio
    from emomm.media.images import IMAGE_EXTENSIONS, read_image_rgb

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
            from emomm.media.video import probe, read_frames
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


def _skipped_at_load(dm: Any) -> list[str]:
    """What the DataModule itself left out while loading (its ``skipped``: a list of file
    errors, a count, or MELD's per-split ``{reason: count}``)."""
    sk = getattr(dm, "skipped", None)
    if isinstance(sk, (list, tuple)):
        return [str(x) for x in sk]
    if isinstance(sk, int) and sk:
        return [f"{sk} items skipped while loading (see the log)"] if sk else []
    if isinstance(sk, dict):
        out = []
        for split, reasons in sk.items():
            for reason, n in (reasons.items() if isinstance(reasons, dict) else [("skipped", reasons)]):
                n = len(n) if isinstance(n, (list, tuple)) else n
                if n:
                    out.append(f"{split}: {n} rows skipped ({reason})")
        return out
    return []


def validate_datamodule(dm: Any, decode: str = "full", max_list: int = 20, duplicates: bool = True,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every check on ``dm`` (an :class:`~emomm.data.base.EmotionDataModule`, not set
    up yet or set up) and return the report dict (see the module docstring)."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode={decode!r}: use one of {list(DECODE_MODES)}")
    say = progress or log.info
    start = time.time()
    problems: list[str] = []
    labels_of = list(dm.label_names)
    report: dict[str, Any] = {"dataset": type(dm).__name__.replace("DataModule", ""),
                              "root": str(getattr(dm, "root", "")), "label_names": labels_of,
                              "decode": decode}
    try:
        dm.setup("fit")
    except Exception as err:  # a dataset that cannot even be listed is unusable as a whole
        report.update(usable=False, problems=[f"the data cannot be loaded: {type(err).__name__}: {err}"],
                      time_s=round(time.time() - start, 2))
        return report
    report["setup_s"] = round(time.time() - start, 2)

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
        unreadable, missing = [], []
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
        if len(ds) == 0:
            problems.append(f"split {split} is empty")
        elif paths is not None and images is None and len(unreadable) + len(missing) == \
                sum(p is not None for p in paths) > 0:
            problems.append(f"split {split}: all {len(unreadable) + len(missing)} files are unreadable or missing")
        if split == "train":
            absent = [n for n, c in zip(labels_of, counts) if c == 0]
            if absent and len(ds):
                problems.append(f"classes {absent} have no training sample")
    report["splits"] = splits
    skipped = _skipped_at_load(dm)
    report["skipped_at_load"] = {"n": len(skipped), "first": skipped[:max_list]}

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
            report.setdefault("warnings", []).append(f"speakers in two splits: {overlap}")
    if duplicates and hash_kind:
        report["duplicates"] = _duplicates(hashes, labels_of, hash_kind, examples=min(max_list, 5))
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
        lines += ["", f"Skipped while loading: {sk['n']}"] + [f"* {x}" for x in sk["first"]]
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
