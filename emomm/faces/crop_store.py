"""From media files to cached face crops: :class:`FaceCropStore` and the parallel build.

A store combines the ``faces`` config (detector, crop geometry, missing-face policy, cache
folder) with a frame sampling. ``store.get(path)`` returns the cached crops of a video or
still image, building the entry first when it is missing; ``store.prepare(paths)`` builds
every missing entry in parallel (one process per available core, each running its own
detector on whole clips), with a progress bar and ETA, and returns a report: clips,
frames, faces found, clips without a face, unreadable files, time.

The ``faces`` config node (``conf/faces/*.yaml``)::

    detector: mtcnn          # mtcnn | haar | none | given
    size / margin / select / align / missing / min_score    # FaceCropper
    mtcnn: {...}  haar: {...}  # options of each detector; only the chosen one is used
    cache_dir / cache_key / workers / prepare_on_setup / backend
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from emomm.media.images import is_image, read_image_rgb
from emomm.media.video import FrameSampling, VideoReadError, read_frames
from emomm.faces.cache import CropCache, CropEntry, entry_from_crops, read_meta
from emomm.faces.crop import FaceCropper
from emomm.faces.base import FaceDetector
from emomm.faces.detectors import DETECTORS, build_detector

log = logging.getLogger(__name__)

CROP_KEYS = ("size", "margin", "select", "align", "missing", "min_score")
PIPELINE_KEYS = ("cache_dir", "cache_key", "workers", "prepare_on_setup", "backend", "progress")
DEFAULT_CACHE_DIR = ".cache/faces"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class FaceCropStore:
    """Cached face crops of media files (see the module docstring).

    Args:
        faces: the ``faces`` config node (a dict); None = all defaults.
        sampling: which decoded frames of a video are cropped (``FrameSampling`` or its
            config: ``num_frames`` / ``step`` / ``fps`` / ``max_frames``); ignored for images.
        detector: an already-built detector to use instead of the configured one (tests,
            programmatic use); a store with one builds in this process only.
    """

    def __init__(self, faces: dict[str, Any] | None = None, sampling: FrameSampling | dict | None = None,
                 detector: FaceDetector | None = None) -> None:
        faces = dict(faces or {})
        self.faces_config = faces
        self.detector_name = faces.get("detector", "mtcnn")
        if self.detector_name not in DETECTORS:
            raise ValueError(f"faces.detector={self.detector_name!r} is not one of {list(DETECTORS)}")
        known = {"detector", *CROP_KEYS, *PIPELINE_KEYS, *DETECTORS}
        unknown = sorted(set(faces) - known)
        if unknown:
            raise ValueError(f"unknown faces options {unknown}; known: {sorted(known)}")
        self.detector_options = dict(faces.get(self.detector_name) or {})
        self.crop_options = {k: faces[k] for k in CROP_KEYS if k in faces}
        self.sampling = FrameSampling.from_config(sampling)
        self.backend = faces.get("backend") or "pyav"
        self.cache_dir = Path(faces.get("cache_dir") or DEFAULT_CACHE_DIR).expanduser()
        self.key_mode = faces.get("cache_key") or "stat"
        self.workers = faces.get("workers")
        self.progress = faces.get("progress", True)
        self.prepare_on_setup = faces.get("prepare_on_setup", True)
        self._detector = detector
        self._cropper: FaceCropper | None = None
        # Settings are known without building the detector (no weights loaded).
        probe = FaceCropper(detector or _SettingsOnly(self.detector_name, self.detector_options),
                            **self.crop_options)
        self.settings = {**probe.settings(), "sampling": self.sampling.describe()}
        self.cache = CropCache(self.cache_dir, self.settings, self.key_mode)

    # -- one file ------------------------------------------------------------------------
    @property
    def cropper(self) -> FaceCropper:
        if self._cropper is None:
            det = self._detector or build_detector(self.detector_name, **self.detector_options)
            self._cropper = FaceCropper(det, **self.crop_options)
        return self._cropper

    def spec(self) -> dict[str, Any]:
        """Everything a worker process needs to rebuild this store."""
        return {"faces": self.faces_config, "sampling": self.sampling.describe()}

    def compute(self, source: str | Path) -> dict[str, np.ndarray]:
        """Decode ``source`` and crop its faces (no cache involved): the entry's arrays."""
        source = Path(source)
        if is_image(source):
            frame = read_image_rgb(source)
            crops = self.cropper.crop_frames(frame[None], source=str(source), frame_indices=[0])
            times, meta = None, {"kind": "image", "width": frame.shape[1], "height": frame.shape[0]}
        else:
            fr = read_frames(source, sampling=self.sampling, backend=self.backend)
            crops = self.cropper.crop_frames(fr.frames, source=str(source), frame_indices=fr.indices.tolist())
            keep = np.isin(fr.indices, crops.frame_index)
            times = fr.times[keep]
            meta = {"kind": "video", "width": fr.info.width, "height": fr.info.height, "fps": fr.info.fps,
                    "num_decoded": fr.num_decoded, "backend": fr.backend}
        meta.update(source=str(source.resolve()), settings=self.settings)
        return entry_from_crops(crops, times, meta)

    def build(self, source: str | Path) -> CropEntry:
        """Compute and store the entry of ``source`` (overwriting any)."""
        self.cache.save(source, self.compute(source))
        entry = self.cache.load(source)
        if entry is None:  # pragma: no cover - only if the disk lies
            raise OSError(f"face-crop cache entry for {source} vanished after writing")
        return entry

    def get(self, source: str | Path) -> CropEntry:
        """The cached entry of ``source``, built first when missing."""
        entry = self.cache.load(source)
        return entry if entry is not None else self.build(source)

    def missing(self, sources: Iterable[str | Path]) -> list[Path]:
        return [Path(s) for s in sources if not self.cache.has(s)]

    # -- many files ----------------------------------------------------------------------
    def prepare(self, sources: Sequence[str | Path], workers: int | None = None,
                progress: bool | None = None, desc: str = "face crops") -> dict[str, Any]:
        """Build every missing entry of ``sources`` in parallel; return the report.

        An unreadable file is reported (``failed``), not fatal. Interrupting (Ctrl-C) keeps
        every entry finished so far; the next call builds only the rest.
        """
        start = time.time()
        sources = [Path(s) for s in sources]
        removed = self.cache.clean_temporary()
        if removed:
            log.info("removed %d temporary files of an interrupted run from %s", removed, self.cache_dir)
        todo, failed = [], {}
        for s in sources:
            try:
                if not self._entry_ok(s):
                    todo.append(s)
            except OSError as err:  # the source itself is gone / unreadable
                failed[str(s)] = f"{type(err).__name__}: {err}"
        workers = self._resolve_workers(workers, len(todo))
        show = self.progress if progress is None else progress
        built = 0
        if todo:
            log.info("building face crops of %d of %d files with %d worker(s) into %s",
                     len(todo), len(sources), max(workers, 1), self.cache_dir)
        bar = _progress(len(todo), desc, show)
        try:
            for src, err in self._run(todo, workers):
                if err is None:
                    built += 1
                else:
                    failed[src] = err
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            log.warning("interrupted after building %d of %d entries; the finished ones are kept, "
                        "run again to build the rest", built, len(todo))
            raise
        bar.close()
        return self._report(sources, failed, built, time.time() - start, workers)

    def _entry_ok(self, source: Path) -> bool:
        """Whether ``source`` has a readable entry; a damaged one is deleted (and rebuilt)."""
        path = self.cache.path(source)
        if not path.is_file():
            return False
        try:
            read_meta(path)
            return True
        except Exception as err:  # BadZipFile, ValueError, OSError, JSON errors...
            log.warning("face-crop cache entry %s of %s is damaged (%s); rebuilding it", path, source, err)
            path.unlink(missing_ok=True)
            return False

    def _resolve_workers(self, workers: int | None, n_jobs: int) -> int:
        w = self.workers if workers is None else workers
        w = available_cores() if w in (None, "auto") else int(w)
        if self._detector is not None or n_jobs <= 1:
            return 0  # an injected detector lives in this process
        return max(0, min(w, n_jobs))

    def _run(self, todo: list[Path], workers: int):
        if workers <= 1:
            for s in todo:
                yield _build_one(self, s)
            return
        ctx = mp.get_context("spawn")  # fork after torch/OpenMP initialisation can hang
        with ctx.Pool(workers, initializer=_init_worker, initargs=(self.spec(),)) as pool:
            try:
                for out in pool.imap_unordered(_worker_build, [str(s) for s in todo], chunksize=1):
                    yield out
            except BaseException:
                pool.terminate()
                raise

    def _report(self, sources: Sequence[Path], failed: dict[str, str], built: int, seconds: float,
                workers: int) -> dict[str, Any]:
        frames = faces = missing = 0
        no_face: list[str] = []
        for s in sources:
            if str(s) in failed:
                continue
            try:
                stats = read_meta(self.cache.path(s)).get("stats", {})
            except Exception as err:  # pragma: no cover - deleted/damaged while running
                failed[str(s)] = f"cache entry unreadable: {err}"
                continue
            frames += stats.get("frames", 0)
            faces += stats.get("faces_found", 0)
            missing += stats.get("frames_missing", 0)
            if stats.get("no_face"):
                no_face.append(str(s))
        return {"clips": len(sources), "built": built, "cached": len(sources) - built - len(failed),
                "failed": len(failed), "failed_files": failed, "frames": frames, "faces_found": faces,
                "frames_without_face": missing, "clips_no_face": len(no_face), "no_face_files": no_face,
                "time_s": round(seconds, 2), "workers": max(workers, 1), "cache_dir": str(self.cache_dir),
                "settings": self.settings}


class _SettingsOnly(FaceDetector):
    """Stands in for a detector when only its settings are needed (no weights loaded)."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__()
        self.kind = name
        self._settings = build_detector(name, **options).settings()

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)


def _build_one(store: FaceCropStore, source: Path) -> tuple[str, str | None]:
    try:
        store.cache.save(source, store.compute(source))
        return str(source), None
    except (VideoReadError, OSError, ValueError) as err:
        log.warning("%s", err)
        return str(source), f"{type(err).__name__}: {err}"


_WORKER_STORE: FaceCropStore | None = None


def _init_worker(spec: dict[str, Any]) -> None:
    global _WORKER_STORE
    import torch

    torch.set_num_threads(1)  # one core per worker process
    _WORKER_STORE = FaceCropStore(spec["faces"], spec["sampling"])


def _worker_build(source: str) -> tuple[str, str | None]:
    assert _WORKER_STORE is not None
    return _build_one(_WORKER_STORE, Path(source))


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, show: bool):
    if not show or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="clip", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 10.0)


def format_report(report: dict[str, Any]) -> str:
    """The report as a few human-readable lines."""
    lines = [
        f"face crops: {report['clips']} files ({report['built']} built, {report['cached']} already cached, "
        f"{report['failed']} unreadable) in {report['time_s']:.1f} s with {report['workers']} worker(s)",
        f"  frames: {report['frames']}, with a face: {report['faces_found']}, without: "
        f"{report['frames_without_face']}",
        f"  files with no face at all: {report['clips_no_face']}",
        f"  cache: {report['cache_dir']}",
    ]
    for f in report["no_face_files"][:10]:
        lines.append(f"    no face: {f}")
    for f, why in list(report["failed_files"].items())[:10]:
        lines.append(f"    unreadable: {f}: {why}")
    return "\n".join(lines)
