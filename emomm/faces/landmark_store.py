"""Face meshes of a dataset's crops, computed once and cached (the ``landmarks`` modality).

:func:`build_mesh` makes the mesh model from the ``landmarks.mesh`` settings
(:class:`~emomm.faces.mesh.FaceMesh`); :func:`mesh_crops` runs it on crops, padding each by
``pad`` of its side first (ready-made tight crops such as FER2013's 48x48 faces: the model
expects the face with a margin around it, as MediaPipe's 1.5x box gives) and mapping the points
back to the crop. :class:`MeshStore` caches a whole list of crops in one ``.npz`` entry (points
``[N, P, 3]`` float16 in crop pixels, ``found [N]``), named by the hash of the sources' identity
(:func:`~emomm.faces.cache.source_identity`), the mesh settings and :data:`MESH_CACHE_VERSION`,
written atomically like the crop cache's entries.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from emomm.faces.cache import write_atomic
from emomm.faces.mesh import MESH_POINTS, FaceMesh
from emomm.utils.wheel_models import FACEMESH

log = logging.getLogger(__name__)

MESH_CACHE_VERSION = 1
#: ``landmarks.mesh`` keys and defaults (``pad``: fraction of a crop's side added on each side).
MESH_DEFAULTS = {"model_path": None, "threads": 1, "min_presence": 0.5, "pad": 0.25}


def mesh_settings(options: dict[str, Any] | None) -> dict[str, Any]:
    """``landmarks.mesh`` with defaults; an unknown key is an error naming the known ones."""
    opts = dict(options or {})
    unknown = set(opts) - set(MESH_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown landmarks.mesh options {sorted(unknown)}; known: {sorted(MESH_DEFAULTS)}")
    return {**MESH_DEFAULTS, **opts}


def build_mesh(options: dict[str, Any] | None) -> FaceMesh:
    """The face-mesh model of ``landmarks.mesh`` (a missing model file names ``make install``)."""
    s = mesh_settings(options)
    return FaceMesh(s["model_path"], threads=int(s["threads"]), min_presence=float(s["min_presence"]))


def mesh_crops(mesh: Callable[[Sequence[np.ndarray]], list], crops: Sequence[np.ndarray], pad: float = 0.0,
               batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """uint8 crops (RGB or gray, any size) -> ``(points [N, P, 3] float32 in each crop's pixels,
    found Bool [N])``; ``pad``: each crop is first framed in black by ``pad`` x its side."""
    points = np.zeros((len(crops), MESH_POINTS, 3), np.float32)
    found = np.zeros(len(crops), bool)
    for i in range(0, len(crops), batch):
        part, shifts = [], []
        for c in crops[i:i + batch]:
            c = np.asarray(c)
            k = int(round(pad * max(c.shape[:2])))
            part.append(cv2.copyMakeBorder(c, k, k, k, k, cv2.BORDER_CONSTANT, value=0) if k else c)
            shifts.append(k)
        for j, (m, k) in enumerate(zip(mesh(part), shifts)):
            if m is not None:
                points[i + j] = np.asarray(m, np.float32)[:MESH_POINTS] - np.array([k, k, 0], np.float32)
                found[i + j] = True
    return points, found


class MeshStore:
    """Cached meshes of crop lists, under ``root/<key>.npz``.

    Args:
        root: the cache folder.
        options: ``landmarks.mesh`` (see :data:`MESH_DEFAULTS`).
        mesh: the mesh model to use (tests pass a fake); default :func:`build_mesh` of ``options``,
            made only when an entry has to be computed.
    """

    def __init__(self, root: str | Path, options: dict[str, Any] | None = None,
                 mesh: Callable[[Sequence[np.ndarray]], list] | None = None) -> None:
        self.root = Path(root).expanduser()
        self.settings = mesh_settings(options)
        self._mesh = mesh

    @property
    def mesh(self) -> Callable[[Sequence[np.ndarray]], list]:
        if self._mesh is None:
            self._mesh = build_mesh(self.settings)
        return self._mesh

    def describe(self) -> dict[str, Any]:
        """What a checkpoint stores of the mesh (the model file's own path is not part of it)."""
        out = {k: v for k, v in self.settings.items() if k not in ("model_path", "threads")}
        return {**out, "mesh_model_sha256": FACEMESH.sha256}

    def path(self, identity: Any) -> Path:
        settings = {k: v for k, v in self.settings.items() if k != "threads"}
        blob = json.dumps({"v": MESH_CACHE_VERSION, "sources": identity, "mesh": settings},
                          sort_keys=True, default=str)
        return self.root / f"{hashlib.sha1(blob.encode()).hexdigest()[:32]}.npz"

    def get(self, identity: Any, crops: Callable[[], Sequence[np.ndarray]], what: str
            ) -> tuple[np.ndarray, np.ndarray]:
        """``(points [N, P, 3] float32, found Bool [N])`` of the crops that ``identity``
        (JSON-able: what the crops come from) names; ``crops()`` gives them when the entry must
        be computed. ``what`` names them in the log line (with the share found)."""
        path = self.path(identity)
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return z["points"].astype(np.float32), z["found"].astype(bool)
            except (OSError, ValueError, KeyError) as err:
                log.warning("face-mesh cache entry %s is unreadable (%s); rebuilding it", path, err)
        items = crops()
        t0 = time.time()
        points, found = mesh_crops(self.mesh, items, float(self.settings["pad"]))
        write_atomic(path, {"points": points.astype(np.float16), "found": found})
        log.info("face mesh of %s: found in %d of %d (%.1f%%), %.1f ms per face; cached in %s", what,
                 int(found.sum()), len(found), 100.0 * found.mean() if len(found) else 0.0,
                 1000 * (time.time() - t0) / max(1, len(found)), path)
        return points.astype(np.float16).astype(np.float32), found
