"""The face-crop cache: crops computed once per source file and crop settings.

An entry is one ``.npz`` file holding a clip's (or a still image's) crops, boxes, scores,
landmarks, found-flags, frame numbers and times, plus a JSON ``meta`` record (source,
settings, counts). Its name is a hash of

* the source file's identity: absolute path, size and modification time (``key=stat``,
  the default), or a SHA-1 of its bytes (``key=content``: survives moves and copies);
* the cropper's settings (detector and its options, crop size, margin, alignment, choice
  of face, missing-face policy) and the frame sampling;
* :data:`CACHE_VERSION`.

so any change to the file or the settings makes a new entry, and equal settings share it.
Entries are written to a temporary file in the same folder and renamed into place
(``os.replace``, atomic on POSIX), so an interrupted run leaves complete entries or none;
leftover temporary files of dead processes are removed at the next run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emomm.faces.crop import ClipCrops
from emomm.utils.atomic import atomic_open

log = logging.getLogger(__name__)

CACHE_VERSION = 1
KEY_MODES = ("stat", "content")
_ARRAYS = ("crops", "boxes", "scores", "landmarks", "found", "frame_index", "times")


def source_identity(path: str | Path, mode: str = "stat") -> dict[str, Any]:
    """What identifies a source file's content for the cache."""
    path = Path(path).resolve()
    if mode == "stat":
        st = path.stat()
        return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if mode == "content":
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return {"sha1": h.hexdigest(), "size": path.stat().st_size}
    raise ValueError(f"faces.cache_key={mode!r} is not one of {list(KEY_MODES)}")


@dataclass
class CropEntry:
    """A loaded cache entry."""
    crops: np.ndarray          # [T, S, S, 3] uint8
    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    found: np.ndarray
    frame_index: np.ndarray
    times: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def no_face(self) -> bool:
        return bool(self.meta.get("stats", {}).get("no_face", not self.found.any()))


def entry_from_crops(crops: ClipCrops, times: np.ndarray | None, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    t = np.zeros(len(crops), np.float64) if times is None else np.asarray(times, np.float64)
    return {"crops": crops.crops, "boxes": crops.boxes, "scores": crops.scores,
            "landmarks": crops.landmarks, "found": crops.found,
            "frame_index": crops.frame_index.astype(np.int64), "times": t,
            "meta": np.frombuffer(json.dumps({**meta, "stats": crops.stats}).encode(), np.uint8)}


class CropCache:
    """Entries under ``root/<key[:2]>/<key>.npz``.

    Args:
        root: the cache folder (created when needed).
        settings: the crop settings the entries depend on (``FaceCropper.settings()`` plus
            the frame sampling); part of every key.
        key_mode: ``stat`` or ``content`` (see the module docstring).
    """

    def __init__(self, root: str | Path, settings: dict[str, Any], key_mode: str = "stat") -> None:
        if key_mode not in KEY_MODES:
            raise ValueError(f"faces.cache_key={key_mode!r} is not one of {list(KEY_MODES)}")
        self.root = Path(root).expanduser()
        self.settings = settings
        self.key_mode = key_mode
        self._settings_json = json.dumps(settings, sort_keys=True, default=str)
        self._keys: dict[tuple, str] = {}

    def key(self, source: str | Path) -> str:
        p = Path(source)
        st = p.stat()
        memo = (str(p), st.st_size, st.st_mtime_ns)
        if memo not in self._keys:
            ident = source_identity(p, self.key_mode)
            blob = json.dumps({"v": CACHE_VERSION, "source": ident}, sort_keys=True) + self._settings_json
            self._keys[memo] = hashlib.sha1(blob.encode()).hexdigest()[:32]
        return self._keys[memo]

    def path(self, source: str | Path) -> Path:
        k = self.key(source)
        return self.root / k[:2] / f"{k}.npz"

    def has(self, source: str | Path) -> bool:
        return self.path(source).is_file()

    def load(self, source: str | Path) -> CropEntry | None:
        """The entry of ``source``, or None when absent; an unreadable entry is deleted
        (with a warning) and reported absent, so it gets rebuilt."""
        path = self.path(source)
        if not path.is_file():
            return None
        return load_entry(path, delete_corrupt=True)

    def save(self, source: str | Path, arrays: dict[str, np.ndarray]) -> Path:
        path = self.path(source)
        write_atomic(path, arrays)
        return path

    def clean_temporary(self) -> int:
        """Remove temporary files left by processes that no longer run; returns the count."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for tmp in self.root.glob("*/.*.tmp"):
            try:
                pid = int(tmp.name.split(".")[-3])
            except (ValueError, IndexError):
                pid = -1
            if pid > 0 and _alive(pid) and time.time() - tmp.stat().st_mtime < 3600:
                continue
            try:
                tmp.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` to a temporary file in the same folder, fsync, rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:  # temporary .<stem>.<token>.<pid>.npz.tmp, see clean_temporary
        np.savez(f, **arrays)


def load_entry(path: Path, delete_corrupt: bool = False) -> CropEntry | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in (*_ARRAYS, "meta") if k not in z.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            arrays = {k: z[k] for k in _ARRAYS}
            meta = json.loads(bytes(z["meta"]).decode())
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        if not delete_corrupt:
            raise
        log.warning("face-crop cache entry %s is unreadable (%s); deleting it, it will be rebuilt", path, err)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return None
    return CropEntry(meta=meta, **arrays)


def read_meta(path: Path) -> dict[str, Any]:
    """Only the meta record of an entry (cheap: the crops are not read)."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(bytes(z["meta"]).decode())
