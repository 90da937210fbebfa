"""Test footage composed from real faces, with known ground truth (issue 42).

Frames of any size (1920x1080, 640x480, ...) and short clips (5-30 frames/s) in which real
faces are pasted at known positions and sizes on a plausible background and move along known
paths, so that every frame has ground-truth face boxes and person IDs:

* **faces** (:class:`FaceSource`): CREMA-D clips (``cremad_sample/*.flv``: each a person whose
  face keeps moving and speaking, frame by frame), FER2013 faces (48x48 grey, upscaled), or,
  without any data, the astronaut photograph that ships with scikit-image in a few colourings
  (:func:`builtin_sources`, for tests). A face's box inside its source patch is MTCNN's box
  found once on the source at its own resolution (a large, frontal face: a reliable box);
  sources where it finds no single clear face are skipped.
* **scenes** (:func:`make_scene`): ``still`` (faces of sizes spread over 20-400 px, not
  moving: for detection), ``linear``, ``crossing`` (fast, passing in front of each other),
  ``zigzag``, ``occlusion`` (one face passes fully in front of another) and ``street`` (about
  seven faces of different sizes, a mix of the moving kinds, as the issue's street clip).
  Every path is a list of keyframes ``(t, cx, cy, size)`` (centre as a fraction of the frame,
  size in pixels), linearly interpolated: deterministic from the seed.
* **ground truth** (:class:`Box`): person ``id``, box ``x0, y0, x1, y1`` in frame pixels and
  the ``visible`` fraction of the box (inside the frame and not covered by a face drawn in
  front). A face's size is the geometric mean side ``sqrt(w * h)`` of its box.

:func:`compose_frame` draws one frame, :func:`compose_clip` a clip, :func:`write_clip` an mp4
(H.264 where PyAV's FFmpeg has it; optionally with an AAC track from a RAVDESS/CREMA-D
recording) with a ground-truth sidecar ``<video>.gt.json`` that :func:`load_gt` reads back.
:func:`match_boxes` pairs detections with ground truth (IoU >= 0.5).

What it can show: whether a detector finds faces of a given pixel size in a given frame
size, on a textured background, among other faces; whether a tracker keeps one ID per person
through known motion (speed, frame rate, crossing, occlusion). What it cannot: the faces are
pasted, so within a scene there is no change of lighting, pose (beyond the CREMA-D actor's own
head motion), motion blur, defocus or compression history between face and background; a
pasted patch has a feathered edge a real head has not; the CREMA-D sample has video of one
actor only (1001), so CREMA-D "people" in one scene are the same face in different clips
(fine for detection and motion trackers, useless for appearance re-identification); upscaled
FER2013 faces are blurry at large sizes; ground-truth boxes follow MTCNN's box convention, so
a detector that boxes faces differently (e.g. BlazeFace, tighter and lower) loses some IoU.

    python -m benchmarks.footage --out .cache/footage [--scenes street,crossing] \\
        [--sizes 1920x1080,640x480] [--fps 5,30] [--seconds 3] [--faces cremad,fer] [--audio auto]

writes ``<scene>_<W>x<H>_<fps>fps.mp4`` and its ``.gt.json`` per combination (``--stills N``:
also N still frames per size as PNG with their ``.gt.json``). Data is read under
``--data-root`` (default ``EMOMM_DATA_DIR``, else data/ in the checkout).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.common import DATA_DIR, ROOT

#: Patch side / face size: the context (hair, neck, background) pasted around each face.
CONTEXT = 2.0
#: Where prepared sources are cached (the CREMA-D/FER detections take a while on a CPU).
CACHE = ROOT / ".cache" / "footage"
SCENES = ("still", "linear", "crossing", "zigzag", "occlusion", "street")
CAVEATS = ("pasted real faces: no lighting, pose, blur or compression change between face and background "
           "within a scene; CREMA-D sample = one actor; ground-truth boxes follow MTCNN's box convention")


# -- ground truth ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """One face in one frame: person ``id``, box in frame pixels, visible fraction in [0, 1]."""
    id: int
    x0: float
    y0: float
    x1: float
    y1: float
    visible: float = 1.0

    @property
    def size(self) -> float:
        """Geometric mean side ``sqrt(w * h)`` in pixels."""
        return math.sqrt(max(self.x1 - self.x0, 0.0) * max(self.y1 - self.y0, 0.0))

    @property
    def xyxy(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a [N, 4]`` against ``b [M, 4]`` (x0, y0, x1, y1) -> ``[N, M]``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def match_boxes(gt: np.ndarray, pred: np.ndarray, iou: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU (highest first), pairs ``(gt_index, pred_index)`` with
    IoU >= ``iou``. ``gt [N, 4]``, ``pred [M, 4]``."""
    m = iou_matrix(gt, pred)
    pairs: list[tuple[int, int]] = []
    if m.size == 0:
        return pairs
    used_g, used_p = set(), set()
    for flat in np.argsort(-m, axis=None):
        g, p = divmod(int(flat), m.shape[1])
        if m[g, p] < iou:
            break
        if g not in used_g and p not in used_p:
            pairs.append((g, p))
            used_g.add(g)
            used_p.add(p)
    return pairs


# -- face sources ---------------------------------------------------------------------------
@dataclass
class FaceSource:
    """A person's face: square RGB patches ``[F, P, P, 3]`` (one per source video frame, F=1
    for a still) and the face box in each ``boxes [F, 4]`` (patch pixels), shown at ``fps``."""
    name: str
    patches: np.ndarray
    boxes: np.ndarray
    fps: float = 0.0

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Patch and box at scene time ``t`` seconds (a video source loops)."""
        i = int(t * self.fps) % len(self.patches) if self.fps > 0 else 0
        return self.patches[i], self.boxes[i]


def _square_patch(image: np.ndarray, box: np.ndarray, context: float = CONTEXT) -> tuple[np.ndarray, np.ndarray]:
    """Crop a square of ``context`` x the face size around ``box`` (edge-replicated where it
    leaves the image): ``(patch [P, P, 3], box in patch pixels [4])``."""
    import cv2

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = int(round(context * math.sqrt((box[2] - box[0]) * (box[3] - box[1]))))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = image[y0 + pad: y0 + pad + side, x0 + pad: x0 + pad + side]
    return np.ascontiguousarray(patch), (np.asarray(box, np.float32) - [x0, y0, x0, y0]).astype(np.float32)


def _best_face(faces) -> np.ndarray | None:
    """The single clear face of a source image (score >= 0.95, and no second face at >= half
    its size), else None."""
    if len(faces) == 0:
        return None
    sizes = np.sqrt((faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1]))
    i = int(np.argmax(sizes))
    if faces.scores[i] < 0.95 or (sizes >= sizes[i] / 2).sum() > 1:
        return None
    return faces.boxes[i]


def builtin_sources(n: int = 4) -> list[FaceSource]:
    """``n`` faces without any dataset: the astronaut photograph (Eileen Collins, NASA, public
    domain; ships with scikit-image) mirrored and recoloured. One real face, for tests."""
    import skimage.data

    img = skimage.data.astronaut()
    box = np.array([181.05, 62.16, 267.75, 172.05], np.float32)  # MTCNN's box, measured once
    patch, pbox = _square_patch(img, box)
    out = []
    tints = [(1.0, 1.0, 1.0), (1.1, 0.95, 0.85), (0.8, 0.9, 1.1), (0.95, 1.05, 0.9)]
    for k in range(n):
        p = patch[:, ::-1] if k % 2 else patch
        b = np.array([p.shape[1] - pbox[2], pbox[1], p.shape[1] - pbox[0], pbox[3]], np.float32) if k % 2 else pbox
        gain = np.asarray(tints[(k // 2) % len(tints)], np.float32) * (1.0 - 0.15 * (k // 8 % 2))
        p = np.clip(p.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        out.append(FaceSource(f"astronaut#{k}", p[None].copy(), b[None].copy()))
    return out


def _cache_path(kind: str, files: Sequence[Path], extra: str) -> Path:
    key = hashlib.sha256(("|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
                          + extra).encode()).hexdigest()[:16]
    return CACHE / f"{kind}-{key}.npz"


def _save_sources(path: Path, sources: list[FaceSource]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, s in enumerate(sources):
        arrays[f"p{i}"], arrays[f"b{i}"] = s.patches, s.boxes
    meta = [{"name": s.name, "fps": s.fps} for s in sources]
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=json.dumps(meta), **arrays)
    tmp.replace(path)


def _load_sources(path: Path) -> list[FaceSource]:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return [FaceSource(m["name"], z[f"p{i}"], z[f"b{i}"], m["fps"]) for i, m in enumerate(meta)]


def cremad_sources(root: str | Path = DATA_DIR, step: int = 2, max_clips: int | None = None) -> list[FaceSource]:
    """One source per CREMA-D video (``<root>/cremad_sample/*.flv``, 480x360): every ``step``-th
    frame, a fixed square crop around the clip's mean face with MTCNN's box per frame (frames
    without a clear face dropped). Cached under ``.cache/footage``."""
    from emomm.faces.mtcnn import MTCNNDetector
    from emomm.media.video import read_frames

    folder = Path(root) / "cremad_sample"
    files = sorted(folder.glob("*.flv"))[:max_clips]
    if not files:
        raise FileNotFoundError(f"no CREMA-D videos (*.flv) in {folder}; pass --data-root (the folder holding "
                                "cremad_sample/) or use --faces fer / builtin")
    cache = _cache_path("cremad", files, f"step{step}ctx{CONTEXT}")
    if cache.is_file():
        return _load_sources(cache)
    det = MTCNNDetector(min_face_px=40)
    out = []
    for f in files:
        fr = read_frames(f, step=step)
        faces = det.detect(fr.frames)
        keep = [(i, b) for i, b in enumerate(_best_face(x) for x in faces) if b is not None]
        if len(keep) < 2:
            continue
        boxes = np.stack([b for _, b in keep])
        centre = boxes.mean(0)
        # one crop for the whole clip (the head moves inside it, as it did on camera)
        _, ref = _square_patch(fr.frames[keep[0][0]], centre)
        off = centre - ref
        patches = np.stack([_square_patch(fr.frames[i], centre)[0] for i, _ in keep])
        out.append(FaceSource(f"cremad/{f.name}", patches, (boxes - off).astype(np.float32),
                              float(fr.info.fps or 30.0) / step))
    _save_sources(cache, out)
    return out


def fer_sources(root: str | Path = DATA_DIR, n: int = 24, seed: int = 0, split: str = "val") -> list[FaceSource]:
    """``n`` FER2013 faces (``<root>/fer2013/<split>/<class>/*.jpg``, 48x48 grey) drawn with
    ``seed`` across the classes, edge-padded and upscaled 4x; MTCNN's box on that. Faces
    without a clear box are skipped (so fewer than ``n`` may come back). Cached."""
    import cv2

    from emomm.faces.mtcnn import MTCNNDetector

    folder = Path(root) / "fer2013" / split
    files = sorted(folder.glob("*/*.jpg"))
    if not files:
        raise FileNotFoundError(f"no FER2013 images in {folder}/<class>/*.jpg; pass --data-root (the folder "
                                "holding fer2013/) or use --faces cremad / builtin")
    rng = np.random.default_rng(seed)
    pick = [files[i] for i in rng.choice(len(files), size=min(len(files), 3 * n), replace=False)]
    cache = _cache_path("fer", pick, f"n{n}ctx{CONTEXT}")
    if cache.is_file():
        return _load_sources(cache)
    det = MTCNNDetector(min_face_px=40)
    out = []
    for f in pick:
        g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if g is None:
            continue
        pad = 12  # MTCNN wants a little room around the face; the pasted patch is the image itself
        big = cv2.resize(cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_REPLICATE), None, fx=4, fy=4,
                         interpolation=cv2.INTER_CUBIC)
        rgb = np.repeat(big[..., None], 3, axis=2)
        box = _best_face(det.detect(rgb)[0])
        if box is None:
            continue
        patch = np.ascontiguousarray(rgb[4 * pad: -4 * pad, 4 * pad: -4 * pad])
        pbox = np.clip(box - 4 * pad, 0, patch.shape[0]).astype(np.float32)
        out.append(FaceSource(f"fer2013/{split}/{f.parent.name}/{f.name}", patch[None], pbox[None]))
        if len(out) == n:
            break
    _save_sources(cache, out)
    return out


def load_sources(faces: Sequence[str], root: str | Path = DATA_DIR, seed: int = 0) -> list[FaceSource]:
    """Sources by kind: ``cremad``, ``fer``, ``builtin`` (interleaved, so a scene mixes them)."""
    groups = []
    for kind in faces:
        if kind == "cremad":
            groups.append(cremad_sources(root))
        elif kind == "fer":
            groups.append(fer_sources(root, seed=seed))
        elif kind == "builtin":
            groups.append(builtin_sources(8))
        else:
            raise ValueError(f"--faces {kind!r} is not one of cremad, fer, builtin")
    out = []
    for i in range(max(len(g) for g in groups)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


# -- backgrounds ----------------------------------------------------------------------------
def texture_background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A street-like texture ``[H, W, 3]`` uint8: multi-scale coloured noise, a few blurred
    blocks (walls, windows) and fine grain; nothing face-like."""
    import cv2

    rng = np.random.default_rng([seed, 7])
    acc = np.zeros((height, width, 3), np.float32)
    for octave, weight in ((4, 60.0), (16, 30.0), (64, 12.0), (256, 6.0)):
        small = rng.normal(0, 1, (max(2, height * octave // width + 1), octave, 3)).astype(np.float32)
        small = small[..., :1] + 0.25 * small  # mostly brightness, a little colour
        acc += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img = 120.0 + acc * np.asarray([1.0, 0.95, 0.85], np.float32)
    for _ in range(12):
        w, h = int(rng.uniform(0.05, 0.3) * width), int(rng.uniform(0.05, 0.4) * height)
        x, y = int(rng.uniform(0, width - w)), int(rng.uniform(0, height - h))
        img[y: y + h, x: x + w] = img[y: y + h, x: x + w] * 0.5 + rng.uniform(40, 200) + rng.uniform(-15, 15, 3)
    k = max(3, (width // 400) * 2 + 1)
    img = cv2.GaussianBlur(img, (k, k), 0) + rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def frame_background(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """A real frame scaled to ``[H, W, 3]`` and blurred beyond recognising any face in it."""
    import cv2

    img = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
    sigma = 0.03 * max(height, width)
    return cv2.GaussianBlur(img, (0, 0), sigma)


# -- scenes ---------------------------------------------------------------------------------
@dataclass
class Person:
    """A face on a path: keyframes ``(t seconds, cx, cy, size px)`` with the centre as a fraction
    of the frame; drawn in ``z`` order (higher in front)."""
    id: int
    source: FaceSource
    keyframes: list[tuple[float, float, float, float]]
    z: int = 0

    def state(self, t: float) -> tuple[float, float, float]:
        """``(cx, cy, size)`` at time ``t`` (linear between keyframes, held outside them)."""
        k = np.asarray(self.keyframes, np.float64)
        return tuple(float(np.interp(t, k[:, 0], k[:, j])) for j in (1, 2, 3))  # type: ignore[return-value]


@dataclass
class Scene:
    """People on a background ``[H, W, 3]``; ``kind``/``seed`` say how it was made."""
    kind: str
    background: np.ndarray
    people: list[Person]
    seconds: float
    seed: int = 0
    notes: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.background.shape[0])

    @property
    def width(self) -> int:
        return int(self.background.shape[1])

    def describe(self) -> dict:
        return {"kind": self.kind, "width": self.width, "height": self.height, "seconds": self.seconds,
                "seed": self.seed, "people": [{"id": p.id, "source": p.source.name, "z": p.z,
                                               "keyframes": [list(map(float, k)) for k in p.keyframes]}
                                              for p in self.people], **self.notes}


def _sizes(n: int, lo: float, hi: float) -> np.ndarray:
    """``n`` sizes spread evenly on a log scale over [lo, hi]."""
    return np.geomspace(lo, hi, n) if n > 1 else np.array([math.sqrt(lo * hi)])


def _place(sizes: np.ndarray, width: int, height: int, rng: np.random.Generator,
           tries: int = 400) -> list[tuple[float, float] | None]:
    """Centres (fractions) for faces of ``sizes`` (largest first), each patch inside the frame
    and no two faces overlapping; None for a face that fits nowhere."""
    taken: list[tuple[float, float, float]] = []
    out: dict[int, tuple[float, float]] = {}
    for i in np.argsort(-sizes):
        r = sizes[i] * CONTEXT / 2
        best, best_gap = (width / 2, height / 2), -np.inf
        for _ in range(tries):
            x, y = rng.uniform(r, max(r + 1, width - r)), rng.uniform(r, max(r + 1, height - r))
            # patches may touch at their feathered edges (0.8), faces never overlap
            gap = min((max(abs(x - a), abs(y - b)) - 0.8 * (r + s) for a, b, s in taken), default=np.inf)
            if gap > best_gap:
                best, best_gap = (x, y), gap
            if gap > 0:
                break
        if best_gap <= 0:
            out[int(i)] = None
            continue
        taken.append((best[0], best[1], r))
        out[int(i)] = (best[0] / width, best[1] / height)
    return [out[i] for i in range(len(sizes))]


def make_scene(kind: str, width: int, height: int, sources: Sequence[FaceSource], seed: int = 0,
               seconds: float = 3.0, n: int | None = None, min_px: float = 20.0, max_px: float | None = None,
               background: np.ndarray | None = None) -> Scene:
    """A scene of ``kind`` (:data:`SCENES`) at ``width`` x ``height``, faces from ``sources``
    (cycled), deterministic from ``seed``. ``still``: ``n`` (default 12) faces sized over
    [min_px, max_px] (max default: 400 px capped to 0.45 x the shorter side), those that do not
    fit beside the others without overlap left out; the moving kinds
    use sizes fitting the frame. ``background``: default :func:`texture_background`."""
    if kind not in SCENES:
        raise ValueError(f"scene {kind!r} is not one of {list(SCENES)}")
    if not sources:
        raise ValueError("make_scene needs at least one face source")
    rng = np.random.default_rng([seed, SCENES.index(kind), width, height])
    bg = texture_background(height, width, seed) if background is None else background
    short = min(width, height)
    max_px = max_px or min(400.0, 0.45 * short)
    order = rng.permutation(len(sources))
    src = lambda i: sources[int(order[i % len(order)])]  # noqa: E731
    T = float(seconds)
    people: list[Person] = []
    if kind == "still":
        sizes = _sizes(n or 12, min_px, max_px)
        rng.shuffle(sizes)
        # faces that do not fit without overlapping another are left out
        fits = [(s, xy) for s, xy in zip(sizes, _place(sizes, width, height, rng)) if xy is not None]
        for i, (s, (x, y)) in enumerate(fits):
            people.append(Person(i, src(i), [(0.0, x, y, float(s))]))
    elif kind == "linear":
        for i in range(n or 4):
            s = float(rng.uniform(0.08, 0.25) * short)
            y = (i + 0.5) / (n or 4)
            x0, x1 = rng.uniform(0.15, 0.4), rng.uniform(0.6, 0.85)
            if i % 2:
                x0, x1 = x1, x0
            people.append(Person(i, src(i), [(0.0, x0, y, s), (T, x1, y + rng.uniform(-0.05, 0.05), s * 1.2)]))
    elif kind == "crossing":
        # pairs at the same height cross the whole frame in opposite directions in ~T/2
        for i in range(n or 2):
            s = float(rng.uniform(0.15, 0.3) * short)
            y = 0.5 + (i // 2) * 0.25 * (-1) ** (i // 2)
            a, b = (-0.05, 1.05) if i % 2 == 0 else (1.05, -0.05)
            people.append(Person(i, src(i), [(0.0, a, y, s), (T * 0.6, b, y, s)], z=i))
    elif kind == "zigzag":
        for i in range(n or 2):
            s = float(rng.uniform(0.12, 0.22) * short)
            period = T / 4
            keys = []
            for j in range(9):
                t = j * period / 2
                keys.append((t, 0.25 + 0.5 * (j % 2) if i % 2 == 0 else 0.75 - 0.5 * (j % 2),
                             0.2 + 0.6 * t / max(T, 1e-9) if i == 0 else 0.8 - 0.6 * t / max(T, 1e-9), s))
            people.append(Person(i, src(i), keys, z=i))
    elif kind == "occlusion":
        s = 0.3 * short
        people.append(Person(0, src(0), [(0.0, 0.5, 0.5, s)], z=0))
        people.append(Person(1, src(1), [(0.0, 0.05, 0.5, s * 1.1), (T, 0.95, 0.5, s * 1.1)], z=1))
    else:  # street: ~7 faces of different sizes, a mix of the moving kinds
        sizes = _sizes(n or 7, max(min_px, 0.03 * short), min(max_px, 0.35 * short))
        places = [xy or (rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)) for xy in _place(sizes, width, height, rng)]
        for i, (s, (x, y)) in enumerate(zip(sizes, places)):
            mode = i % 3
            if mode == 0:    # walks across
                dx = rng.uniform(0.15, 0.35) * (-1) ** i
                keys = [(0.0, x, y, float(s)), (T, x + dx, y + rng.uniform(-0.03, 0.03), float(s) * 1.1)]
            elif mode == 1:  # fast crossing
                a, b = (-0.05, 1.05) if i % 2 else (1.05, -0.05)
                keys = [(0.0, a, y, float(s)), (T * 0.7, b, y, float(s))]
            else:            # zig-zag
                keys = [(T * j / 6, x + 0.08 * (-1) ** j, y + 0.02 * j, float(s)) for j in range(7)]
            people.append(Person(i, src(i), keys, z=int(s)))  # nearer (larger) faces in front
    return Scene(kind, bg, people, T, seed)


# -- drawing --------------------------------------------------------------------------------
def _feather(side: int) -> np.ndarray:
    """Alpha ``[side, side]`` in [0, 1]: an opaque rounded square (superellipse, power 4) out to
    0.43 side from the centre, fading to 0 at 0.5, so a patch's square edge never shows."""
    yy, xx = np.mgrid[0:side, 0:side] / max(side, 1)
    r = (np.abs(xx - 0.5 + 0.5 / side) ** 4 + np.abs(yy - 0.5 + 0.5 / side) ** 4) ** 0.25
    return np.clip((0.5 - r) / 0.07, 0.0, 1.0).astype(np.float32)


def compose_frame(scene: Scene, t: float = 0.0) -> tuple[np.ndarray, list[Box]]:
    """The frame at ``t`` seconds: ``(image [H, W, 3] uint8, one Box per face at least partly
    in the frame)``, boxes in person-id order."""
    import cv2

    H, W = scene.height, scene.width
    img = scene.background.astype(np.float32)
    placed = []  # (person, box [4], patch rect x, y, side, alpha)
    for p in sorted(scene.people, key=lambda q: (q.z, q.id)):
        patch, box = p.source.at(t)
        cx, cy, size = p.state(t)
        k = size / math.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-6))
        side = max(2, int(round(patch.shape[0] * k)))
        k = side / patch.shape[0]  # the scale actually drawn
        bcx, bcy = (box[0] + box[2]) / 2 * k, (box[1] + box[3]) / 2 * k
        x, y = int(round(cx * W - bcx)), int(round(cy * H - bcy))
        fbox = np.asarray(box, np.float64) * k + [x, y, x, y]
        alpha = _feather(side)
        xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + side, W), min(y + side, H)
        if xb > xa and yb > ya:
            interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
            big = cv2.resize(patch, (side, side), interpolation=interp).astype(np.float32)
            a = alpha[ya - y: yb - y, xa - x: xb - x, None]
            img[ya:yb, xa:xb] = img[ya:yb, xa:xb] * (1 - a) + big[ya - y: yb - y, xa - x: xb - x] * a
        placed.append((p, fbox, x, y, side, alpha))
    boxes = []
    for i, (p, b, *_rest) in enumerate(placed):
        x0, y0, x1, y1 = b
        bw, bh = max(int(math.ceil(x1 - x0)), 1), max(int(math.ceil(y1 - y0)), 1)
        gx, gy = np.meshgrid(x0 + (np.arange(bw) + 0.5) * (x1 - x0) / bw,
                             y0 + (np.arange(bh) + 0.5) * (y1 - y0) / bh)
        seen = (gx >= 0) & (gx < W) & (gy >= 0) & (gy < H)
        if not seen.any():
            continue
        for _q, _qb, qx, qy, qs, qa in placed[i + 1:]:  # faces drawn in front
            ix, iy = np.floor(gx - qx).astype(int), np.floor(gy - qy).astype(int)
            inside = (ix >= 0) & (ix < qs) & (iy >= 0) & (iy < qs)
            cover = np.zeros_like(seen)
            cover[inside] = qa[iy[inside], ix[inside]] > 0.5
            seen &= ~cover
        boxes.append(Box(p.id, *(float(round(v, 2)) for v in b), visible=round(float(seen.mean()), 3)))
    boxes.sort(key=lambda b: b.id)
    return np.clip(img, 0, 255).astype(np.uint8), boxes


def compose_clip(scene: Scene, fps: float, seconds: float | None = None) -> tuple[np.ndarray, list[list[Box]]]:
    """Frames ``[T, H, W, 3]`` at ``fps`` over ``seconds`` (default the scene's) and the boxes of
    each frame (frame ``i`` is time ``i / fps``)."""
    n = max(1, int(round((scene.seconds if seconds is None else seconds) * fps)))
    out = [compose_frame(scene, i / fps) for i in range(n)]
    return np.stack([f for f, _ in out]), [b for _, b in out]


# -- files ----------------------------------------------------------------------------------
def gt_path(media: str | Path) -> Path:
    """The ground-truth sidecar of a video or image: ``<file>.gt.json``."""
    media = Path(media)
    return media.with_name(media.name + ".gt.json")


def write_gt(media: str | Path, scene: Scene, fps: float | None, gt: list[list[Box]], **extra) -> Path:
    """Write ``<media>.gt.json``: the scene, fps, caveats and ``frames[i] = [{id, box, visible}]``."""
    from emomm.utils.atomic import atomic_write_json

    payload = {"scene": scene.describe(), "fps": fps, "caveats": CAVEATS, **extra,
               "frames": [[{"id": b.id, "box": [b.x0, b.y0, b.x1, b.y1], "visible": b.visible} for b in f]
                          for f in gt]}
    path = gt_path(media)
    atomic_write_json(path, payload, indent=None)
    return path


def load_gt(media: str | Path) -> tuple[dict, list[list[Box]]]:
    """Read ``<media>.gt.json`` (or the sidecar itself): ``(header without frames, boxes per frame)``."""
    path = Path(media)
    path = path if path.name.endswith(".gt.json") else gt_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ground-truth sidecar; compose the footage with python -m benchmarks.footage")
    data = json.loads(path.read_text())
    frames = [[Box(d["id"], *d["box"], visible=d.get("visible", 1.0)) for d in f] for f in data.pop("frames")]
    return data, frames


def speech_track(root: str | Path = DATA_DIR, seconds: float = 3.0, rate: int = 16000,
                 path: str | Path | None = None) -> tuple[np.ndarray, str]:
    """A mono speech track of ``seconds`` (looped): ``path``, else the first RAVDESS recording,
    else the first CREMA-D sample. Returns ``(wave [T], source name)``."""
    from emomm.media.audio import load_audio

    if path is None:
        root = Path(root)
        found = sorted((root / "ravdess").glob("Actor_*/*.*"))[:1] or sorted((root / "cremad_sample").glob("*.mp3"))[:1]
        if not found:
            raise FileNotFoundError(f"no RAVDESS or CREMA-D audio under {root}; pass --audio PATH or --audio none")
        path = found[0]
    wave, _ = load_audio(path, sample_rate=rate)
    n = int(round(seconds * rate))
    return np.resize(wave, n).astype(np.float32), Path(path).name


def write_clip(path: str | Path, scene: Scene, fps: float, seconds: float | None = None,
               audio: np.ndarray | None = None, audio_rate: int = 16000, **extra) -> tuple[Path, Path]:
    """Compose ``scene`` at ``fps`` and write it as a video (H.264 in .mp4 where available) with
    an optional mono ``audio`` track, plus its ``.gt.json``. Returns ``(video, sidecar)``."""
    from emomm.media.video import write_video

    frames, gt = compose_clip(scene, fps, seconds)
    video = write_video(path, frames, fps=fps, audio=audio, audio_rate=audio_rate)
    return video, write_gt(video, scene, fps, gt, **extra)


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame size {text!r}: write WIDTHxHEIGHT, e.g. 1920x1080") from None
    return w, h


def main(argv: list[str] | None = None) -> None:
    import cv2

    ap = argparse.ArgumentParser(prog="python -m benchmarks.footage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=CACHE / "clips")
    ap.add_argument("--scenes", default="street,crossing,zigzag,occlusion,linear")
    ap.add_argument("--sizes", default="1920x1080,640x480")
    ap.add_argument("--fps", default="5,30")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--faces", default="cremad,fer", help="cremad, fer, builtin (comma-separated)")
    ap.add_argument("--data-root", type=Path, default=DATA_DIR)
    ap.add_argument("--audio", default="auto", help="auto (first RAVDESS/CREMA-D recording), none, or a file")
    ap.add_argument("--stills", type=int, default=0, help="also write N still frames per size (PNG + .gt.json)")
    a = ap.parse_args(argv)
    sizes = [parse_size(s) for s in a.sizes.split(",")]
    sources = load_sources(a.faces.split(","), a.data_root, a.seed)
    audio, audio_name = None, None
    if a.audio != "none":
        audio, audio_name = speech_track(a.data_root, a.seconds, path=None if a.audio == "auto" else a.audio)
    a.out.mkdir(parents=True, exist_ok=True)
    for w, h in sizes:
        for k in range(a.stills):
            scene = make_scene("still", w, h, sources, seed=a.seed + k)
            img, boxes = compose_frame(scene)
            png = a.out / f"still{k}_{w}x{h}.png"
            cv2.imwrite(str(png), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            write_gt(png, scene, None, [boxes])
            print(f"{png}: {len(boxes)} faces")
        for kind in a.scenes.split(","):
            scene = make_scene(kind, w, h, sources, seed=a.seed, seconds=a.seconds)
            for fps in (float(f) for f in a.fps.split(",")):
                video, side = write_clip(a.out / f"{kind}_{w}x{h}_{fps:g}fps.mp4", scene, fps, audio=audio,
                                         audio_source=audio_name)
                print(f"{video}: {len(scene.people)} people, {fps:g} frames/s, ground truth {side.name}")
    print(json.dumps({"sources": [s.name for s in sources], "caveats": CAVEATS}, indent=1))


if __name__ == "__main__":
    main()
